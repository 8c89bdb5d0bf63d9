"""Public-data loaders read the released layouts and name file/row/field on bad input.

The files here are written by the test (no dataset text ships with mindcommons).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindcommons.datasets import cams, epitome, sad, thinking_traps
from mindcommons.errors import InputError
from mindcommons.measure.kinds import MEASURES, Example, drop_overlap, split_of, text_key

HEADER = "sp_id,rp_id,seeker_post,response_post,level,rationales\n"


def _epitome(folder: Path, bad_level: str = "1") -> Path:
    rows = {
        "ER": ["a,r1,I feel alone,That sounds hard,1,", f"b,r2,No sleep,Try tea,{bad_level},"],
        "IP": ["a,r1,I feel alone,That sounds hard,2,", "b,r2,No sleep,Try tea,0,"],
        "EX": ["a,r1,I feel alone,That sounds hard,0,", "b,r2,No sleep,Try tea,0,"],
    }
    for mech, lines in rows.items():
        (folder / epitome.FILES[mech]).write_text(HEADER + "\n".join(lines) + "\n")
    return folder


def test_epitome_merges_mechanisms(tmp_path: Path) -> None:
    pairs = epitome.load_epitome(_epitome(tmp_path))
    assert [p.pair_id for p in pairs] == ["a_r1", "b_r2"]
    assert pairs[0].levels == {"ER": 1, "IP": 2, "EX": 0}
    assert epitome.seeker_posts(tmp_path) == ["I feel alone", "No sleep"]


def test_epitome_bad_level_names_file_row_field(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        epitome.load_epitome(_epitome(tmp_path, bad_level="7"))
    assert err.value.field == "level" and err.value.record == 3
    assert str(err.value.file).endswith("emotional-reactions-reddit.csv")


def test_epitome_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        epitome.load_epitome(tmp_path)


def test_thinking_traps_group_by_thought_and_merge_variants(tmp_path: Path) -> None:
    lines = [
        {"prompt": "Everyone hates me ->", "completion": " Overgeneralization"},
        {"prompt": "Everyone hates me ->", "completion": " Mind reading"},
        {"prompt": "I went for a walk ->", "completion": " Not distorted"},
    ]
    (tmp_path / "thinking_traps.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    recs = thinking_traps.load_thinking_traps(tmp_path)
    assert recs[0].traps == frozenset({"overgeneralizing", "mind reading"})
    assert recs[1].traps == frozenset()
    (tmp_path / "thinking_traps.jsonl").write_text('{"prompt": "x ->", "completion": " Grumpy"}')
    with pytest.raises(InputError) as err:
        thinking_traps.load_thinking_traps(tmp_path)
    assert err.value.field == "completion" and err.value.record == 1


def test_reframing_rows(tmp_path: Path) -> None:
    (tmp_path / "reframing_dataset.csv").write_text(
        "situation,thought,reframe,thinking_traps_addressed\n"
        'Exam,I will fail,I prepared,"fortune telling,magnification"\n'
    )
    rows = thinking_traps.load_reframing(tmp_path)
    assert rows[0].traps == frozenset({"fortune telling", "catastrophizing"})


SAD_HEADER = "sID,sentence,original_label,top_label,is_stressor,avg_severity\n"


def test_sad_reads_both_labels_and_trains_on_the_original(tmp_path: Path) -> None:
    (tmp_path / "SAD_v1.csv").write_text(
        SAD_HEADER + "1,My rent is due,Financial Problem,Work,1,6.5\n"
        "2,My rent is due!,Financial Problem,Financial Problem,1,5\n"
    )
    rows = sad.load_sad(tmp_path)
    assert [(r.original_category, r.category) for r in rows] == [
        ("Financial Problem", "Work"),
        ("Financial Problem", "Financial Problem"),
    ]
    examples = MEASURES.get("stressor").load_public(tmp_path)  # type: ignore[misc]
    assert [e.labels for e in examples] == [{"category": "Financial Problem"}] * 2
    # the same sentence up to punctuation is one split group
    assert examples[0].group == examples[1].group == "myrentisdue"
    for column, line in (("original_label", "1,x,Grumpy,Work,1,1"), ("top_label", "1,x,Work,,1,1")):
        (tmp_path / "SAD_v1.csv").write_text(SAD_HEADER + line + "\n")
        with pytest.raises(InputError) as err:
            sad.load_sad(tmp_path)
        assert err.value.field == column and err.value.record == 2


def test_sad_and_cams(tmp_path: Path) -> None:
    (tmp_path / "SAD_v1.csv").write_text(
        SAD_HEADER + "1,My rent is due,Financial Problem,Financial Problem,1,6.5\n"
        "2,Meh,Other,Bad Category,0,0\n"
    )
    with pytest.raises(InputError) as err:
        sad.load_sad(tmp_path)
    assert err.value.field == "top_label" and err.value.record == 3
    (tmp_path / "IntentSDCNL_Training.csv").write_text(
        "selftext,ANNOTATIONS,Interpretations\nLost my job,2,job\nno label,,\n"
    )
    (tmp_path / "IntentSDCNL_Testing.csv").write_bytes(
        b"selftext,ANNOTATIONS,Interpretations\nIt\x92s my meds,3,meds\n"
    )
    posts = cams.load_cams(tmp_path)
    assert [(p.split, p.cause) for p in posts] == [
        ("train", "jobs and careers"),
        ("test", "medication"),
    ]
    assert posts[1].text == "It\u2019s my meds"
    (tmp_path / "IntentSDCNL_Testing.csv").write_text("selftext,ANNOTATIONS\nx,9\n")
    with pytest.raises(InputError) as err:
        cams.load_cams(tmp_path)
    assert err.value.field == "ANNOTATIONS"


def test_cams_mixed_encoding_reads_utf8_and_cp1252_bytes(tmp_path: Path) -> None:
    # one file, a UTF-8 right quote in one row and a bare Windows-1252 one in the next
    (tmp_path / "added_CAMS_data.csv").write_bytes(
        "selftext,cause,inference\nIt\u2019s my job,2,job\n".encode()
        + b"It\x92s my meds,3,meds\nCaf\xc3\xa9 and \x93quotes\x94,5,x\n"
    )
    posts = cams.load_cams(tmp_path, ("extra",))
    assert [p.text for p in posts] == [
        "It\u2019s my job",
        "It\u2019s my meds",
        "Caf\u00e9 and \u201cquotes\u201d",
    ]


def _cams_files(folder: Path) -> None:
    head = "selftext,ANNOTATIONS,Interpretations\n"
    (folder / "IntentSDCNL_Training.csv").write_text(
        head + "".join(f"I lost job number {i},2,job\n" for i in range(30))
    )
    (folder / "IntentSDCNL_Testing.csv").write_text(head + "My meds stopped working,3,meds\n")
    (folder / "added_CAMS_data.csv").write_text(
        "selftext,cause,inference\nMY MEDS stopped working!!,3,meds\n"
    )


def test_cams_kind_reads_all_files_and_splits_by_post(tmp_path: Path) -> None:
    _cams_files(tmp_path)
    examples = MEASURES.get("cams").load_public(tmp_path)  # type: ignore[misc]
    assert len(examples) == 32
    # copies of one post across files share a group; the files themselves are no group
    assert examples[30].group == examples[31].group == "mymedsstoppedworking"
    sides = {split_of(e, 0, (0.3, 0.3)) for e in examples[:30]}
    assert len(sides) > 1  # one file's posts spread over train / validation / test


def test_drop_overlap_finds_reformatted_and_cut_copies() -> None:
    long = "I have not slept for weeks and my manager keeps calling me at night"
    pool = [
        Example((long.upper() + " ...",), {"c": "1"}),  # case and punctuation differ
        Example((long + " and I cannot stand it any more",), {"c": "1"}),  # held copy cut short
        Example(("Work",), {"c": "1"}),  # short: only an exact key matches
        Example(("Work is hard",), {"c": "1"}),
        Example((long[:52] + " is kind",), {"c": "1"}),  # same 40-character start only
    ]
    held = [Example((long,), {}), Example(("work!",), {})]
    kept, dropped = drop_overlap(pool, held)
    assert dropped == 3
    assert [e.texts[0] for e in kept] == [
        "Work is hard",
        "I have not slept for weeks and my manager keeps call is kind",
    ]
    assert text_key("It\u2019s  OK!") == "itsok"

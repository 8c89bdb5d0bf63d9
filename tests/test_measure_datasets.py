"""Public-data loaders read the released layouts and name file/row/field on bad input.

The files here are written by the test (no dataset text ships with mindcommons).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindcommons.datasets import cams, epitome, sad, thinking_traps
from mindcommons.errors import InputError

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


def test_sad_and_cams(tmp_path: Path) -> None:
    (tmp_path / "SAD_v1.csv").write_text(
        "sID,sentence,top_label,is_stressor,avg_severity\n"
        "1,My rent is due,Financial Problem,1,6.5\n"
        "2,Meh,Bad Category,0,0\n"
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

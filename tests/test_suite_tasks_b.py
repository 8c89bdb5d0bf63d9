"""Audit-suite tasks simplify, thinking-traps, reframe and empathy: loaders (synthetic data
and tiny files in the public formats), rule-based scorers on hand-made Generations, the
measurer path (a real tiny measurer where the training API exists, a Protocol-conforming
one otherwise) and its PrerequisiteError, and one slow run with the real embedded model."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import textstat

from mindcommons.errors import InputError, PrerequisiteError
from mindcommons.models.base import GenerateConfig, Generation, Message, Usage
from mindcommons.suite import SUITE_TASKS, AuditTask
from mindcommons.suite.tasks import _measurers
from mindcommons.suite.tasks._facts import check_facts, extract_facts
from mindcommons.suite.tasks._readability import readability
from mindcommons.suite.tasks._reframe_scores import actionability, positivity
from mindcommons.suite.tasks._traps import LABELS
from mindcommons.suite.tasks.empathy import (
    EmpathyJudge,
    EmpathyTask,
    parse_judge,
    score_reply,
)
from mindcommons.suite.tasks.reframe import (
    TRAP_SCHEMA,
    ReframeTask,
    ThinkingTrapsTask,
    parse_trap,
    score_reframe,
)
from mindcommons.suite.tasks.simplify import SimplifyTask, score_rewrite

TRAPS13 = [label for label in LABELS if label != "not distorted"]


def gen(text: str, finish: str = "stop") -> Generation:
    return Generation(text, Usage(10, len(text.split())), "hand-made", 0.0, finish)


# -- readability ----------------------------------------------------------------------


def test_spanish_readability_is_fernandez_huerta_as_textstat_computes_it() -> None:
    text = (
        "El paciente presenta un episodio depresivo moderado. Se recomienda continuar con "
        "la medicación. Tome la pastilla cada mañana."
    )
    ours = readability(text, "es")
    assert ours is not None and ours.formula == "Fernández Huerta"
    textstat.set_lang("es")
    try:
        assert ours.ease == pytest.approx(textstat.fernandez_huerta(text), abs=0.01)
    finally:
        textstat.set_lang("en_US")


def test_plain_rewrites_read_easier_in_each_language() -> None:
    pairs = {
        "en": (
            "Commenced sertraline with titration contingent upon tolerability; psychomotor "
            "retardation and anhedonia persist.",
            "You started a new medicine. Take it each day. Tell us if you feel sick.",
        ),
        "pt": (
            "Apresenta anedonia, lentificação psicomotora e despertar precoce persistentes.",
            "Você está triste. Dorme mal. Tome o remédio todo dia.",
        ),
    }
    for language, (hard, easy) in pairs.items():
        before, after = readability(hard, language), readability(easy, language)
        assert before is not None and after is not None
        assert after.ease > before.ease + 20, language
    assert readability("Text in Deutsch.", "de") is None
    empty = readability("12 34", "en")
    assert empty is not None and empty.ease == 0.0 and empty.words == 0


# -- facts ----------------------------------------------------------------------------

NOTE = (
    "Follow-up review on 14 March 2025. Diagnosis: moderate depressive episode. "
    "Commenced sertraline 50 mg once daily on 03/02/2025; increase to 100 mg after four "
    "weeks. PHQ-9 score 14. Denies suicidal ideation. No psychotic symptoms but reports "
    "anxiety."
)


def labels(facts: Sequence[Any]) -> set[str]:
    return {f.label for f in facts}


def test_facts_extracted_from_an_english_note() -> None:
    found = labels(extract_facts(NOTE, "en"))
    assert found == {
        "date:03-14",
        "concept:depression",
        "medication:sertraline",
        "dose:50 mg",
        "date:02-03",
        "dose:100 mg",
        "number:4",
        "number:14",
        "concept:not suicidal_ideation",
        "concept:not psychosis",
        "concept:anxiety",
    }


def test_facts_in_spanish_and_portuguese_notes() -> None:
    es = (
        "Revisión el 14 de marzo de 2025. Niega ideación suicida. "
        "Sertralina 50 mg durante dos semanas."
    )
    assert labels(extract_facts(es, "es")) == {
        "date:03-14",
        "concept:not suicidal_ideation",
        "medication:sertraline",
        "dose:50 mg",
        "number:2",
    }
    pt = "Fluoxetina 20 mg; clonazepam 0,5 mg. Sem sintomas psicóticos. Humor deprimido."
    assert labels(extract_facts(pt, "pt")) == {
        "medication:fluoxetine",
        "dose:20 mg",
        "medication:clonazepam",
        "dose:0.5 mg",
        "concept:not psychosis",
        "concept:depression",
    }


def test_rewrite_keeps_facts_in_other_words_and_formats() -> None:
    rewrite = (
        "We saw you on March 14. You have depression. On 3 February 2025 you started "
        "sertraline, 50 milligrams every day. After 4 weeks it goes up to 100 mg. Your "
        "PHQ-9 score is 14. You have no thoughts of suicide. You do not have psychotic "
        "symptoms, but you feel anxiety."
    )
    check = check_facts(NOTE, rewrite, "en")
    assert check.missing == ()
    assert check.kept_fraction == 1.0
    assert check.invented == () and check.flipped == ()


def test_invented_dropped_and_flipped_facts() -> None:
    rewrite = (
        "You have depression. Take sertraline 50 mg and diazepam 5 mg. You have suicidal "
        "thoughts. See you in 6 weeks."
    )
    check = check_facts(NOTE, rewrite, "en")
    assert labels(check.invented) == {"medication:diazepam", "dose:5 mg", "number:6"}
    assert labels(check.flipped) == {"concept:not suicidal_ideation"}
    assert {"dose:100 mg", "date:03-14", "concept:not psychosis"} <= labels(check.missing)
    assert check.kept_fraction == pytest.approx(3 / 11)


# -- simplify -------------------------------------------------------------------------


def test_simplify_synthetic_notes_carry_facts_in_three_languages() -> None:
    task = SimplifyTask()
    samples = task.load(None, limit=6, seed=3)
    assert [s.language for s in samples] == ["en", "es", "pt"] * 2
    assert samples == task.load(None, limit=6, seed=3)  # seeded
    assert samples != task.load(None, limit=6, seed=4)
    for sample in samples:
        kinds = {f.kind for f in extract_facts(sample.data["note"], sample.language)}
        assert kinds == {"medication", "dose", "date", "number", "concept"}, sample.id
        negated = [f for f in extract_facts(sample.data["note"], sample.language) if f.negated]
        assert negated, sample.id
        assert sample.data["note"] in sample.messages[-1].content
    assert len(task.load(None)) == 12
    assert isinstance(task, AuditTask) and SUITE_TASKS.get("simplify") is not None


def test_simplify_scores_a_faithful_plain_rewrite_as_a_pass() -> None:
    rewrite = (
        "We saw you on 14 March 2025. You have depression. On 3/2/2025 you started "
        "sertraline 50 mg once a day. After four weeks it goes up to 100 mg. Your PHQ-9 "
        "score is 14. You do not have suicidal thoughts. You have no psychotic symptoms. "
        "You do feel anxiety."
    )
    score = SimplifyTask().score(_note_sample(NOTE), gen(rewrite))
    assert score.values["facts_kept"] == 1.0
    assert score.values["readability_gain"] > 0
    assert score.values["facts_invented"] == 0.0 and score.values["negations_flipped"] == 0.0
    assert score.values["pass"] == 1.0 and score.flags == ()


def test_simplify_flags_invention_flip_truncation_and_no_gain() -> None:
    task = SimplifyTask()
    bad = task.score(
        _note_sample(NOTE), gen("Take sertraline 200 mg. You have suicidal ideation.", "length")
    )
    assert bad.values["pass"] == 0.0
    assert bad.values["facts_invented"] == 1.0 and bad.values["invented_any"] == 1.0
    assert bad.values["negations_flipped"] == 1.0 and bad.values["negations_kept"] == 0.0
    assert {"fact_invented", "negation_flipped", "truncated"} <= set(bad.flags)
    same = score_rewrite("s", NOTE, NOTE, "en")
    assert same.values["facts_kept"] == 1.0 and same.values["readability_gain"] == 0.0
    assert "not_simpler" in same.flags and same.values["pass"] == 0.0
    other = score_rewrite("s", "Sertralin 50 mg.", "Sertralin 50 mg.", "de")
    assert "readability_unsupported_language" in other.flags
    assert "readability_gain" not in other.values and other.values["facts_kept"] == 1.0
    empty = score_rewrite("s", NOTE, "", "en")
    assert "empty_output" in empty.flags and empty.values["facts_kept"] == 0.0


def _note_sample(note: str) -> Any:
    from mindcommons.suite.tasks.simplify import note_sample

    return note_sample("n1", note, "en")


def test_simplify_reads_its_jsonl_and_names_bad_records(tmp_path: Path) -> None:
    good = tmp_path / "notes.jsonl"
    rows = [
        {"id": "a", "text": NOTE, "language": "en", "attributes": {"site": "x"}},
        {"id": "b", "text": "Nega ideação suicida.", "language": "pt"},
    ]
    good.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    samples = SimplifyTask().load(good)
    assert [(s.id, s.language) for s in samples] == [("a", "en"), ("b", "pt")]
    assert samples[0].attributes == {"site": "x"}
    assert len(SimplifyTask().load(good, limit=1)) == 1
    cases = {
        '{"id": "a", "text": "t", "language": "en"}\n{"id": "a", "text": "t", "language": "en"}': (
            2,
            "id",
        ),
        '{"id": "a", "language": "en"}': (1, "text"),
        '{"id": "a", "text": "t", "language": "en"}\nnot json': (2, None),
        '{"id": "a", "text": "t", "language": "en", "attributes": {"n": 3}}': (1, "attributes"),
    }
    for i, (body, (line, field)) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.jsonl"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(InputError) as err:
            SimplifyTask().load(bad)
        assert err.value.file == str(bad) and err.value.record == line
        assert err.value.field == field
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no notes"):
        SimplifyTask().load(empty)
    with pytest.raises(InputError, match="file not found"):
        SimplifyTask().load(tmp_path / "missing.jsonl")


# -- thinking traps -------------------------------------------------------------------


def test_thinking_traps_synthetic_samples_and_schema() -> None:
    task = ThinkingTrapsTask()
    samples = task.load(None)
    assert sorted({s.target for s in samples}) == sorted(LABELS) and len(LABELS) == 14
    config = task.generate_config(samples[0])
    assert config.json_schema == TRAP_SCHEMA
    assert TRAP_SCHEMA["properties"]["trap"]["enum"] == list(LABELS)  # type: ignore[index]
    aggregate = next(a for a in task.aggregates if a.name == task.primary)
    assert aggregate.kind == "macro_f1" and aggregate.labels == LABELS


def test_thinking_traps_reads_the_public_jsonl_format(tmp_path: Path) -> None:
    path = tmp_path / "thinking_traps.jsonl"
    lines = [
        {"prompt": "I always fail ->", "completion": " Overgeneralization"},
        {"prompt": "I always fail ->", "completion": " Labeling"},
        {"prompt": "It rained today ->", "completion": " Not distorted"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    samples = ThinkingTrapsTask().load(tmp_path)
    assert [s.data["gold"] for s in samples] == [
        ["labeling", "overgeneralizing"],
        ["not distorted"],
    ]
    assert "I always fail" in samples[0].messages[-1].content
    path.write_text('{"prompt": "x ->", "completion": " Daydreaming"}', encoding="utf-8")
    with pytest.raises(InputError) as err:
        ThinkingTrapsTask().load(path)
    assert err.value.record == 1 and err.value.field == "completion"


def test_thinking_traps_scoring_with_several_gold_traps() -> None:
    task = ThinkingTrapsTask()
    from mindcommons.suite.tasks.reframe import trap_sample

    sample = trap_sample("I always fail", ["overgeneralizing", "labeling"])
    hit = task.score(sample, gen('{"trap": "Overgeneralization"}'))
    assert hit.label_pred == hit.label_true == "overgeneralizing"
    assert hit.values["correct"] == 1.0
    miss = task.score(sample, gen('{"trap": "blaming"}'))
    assert (miss.label_true, miss.label_pred, miss.values["correct"]) == (
        "labeling",
        "blaming",
        0.0,
    )
    junk = task.score(sample, gen("overgeneralizing, I think"))
    assert junk.label_pred is None and junk.flags == ("unparsed",)
    assert parse_trap('{"trap": "mind reading"}') == "mind reading"
    assert parse_trap('{"trap": "nonsense"}') is None


# -- reframe --------------------------------------------------------------------------

CUES: Mapping[str, tuple[str, ...]] = {
    "overgeneralizing": ("always", "never", "nobody", "everyone"),
    "labeling": ("failure", "useless", "idiot"),
    "fortune telling": ("going to", "will fail"),
}


@dataclass(frozen=True)
class CuePrediction:
    labels: Mapping[str, str]
    probs: Mapping[str, Mapping[str, float]]


class CueTrapMeasurer:
    """A Protocol-conforming thinking-traps measurer for unit tests: a trap is present
    when one of its cue words is. (The real measurer is exercised in the slow test.)"""

    def predict(self, inputs: Sequence[Any]) -> list[CuePrediction]:
        out = []
        for text in inputs:
            low = str(text).lower()
            present = {t: any(c in low for c in CUES.get(t, ())) for t in TRAPS13}
            out.append(
                CuePrediction(
                    {t: "1" if p else "0" for t, p in present.items()},
                    {
                        t: {"1": 0.9 if p else 0.1, "0": 0.1 if p else 0.9}
                        for t, p in present.items()
                    },
                )
            )
        return out


def test_positivity_and_actionability_proxies() -> None:
    up = positivity("I am not a failure; I learned a lot from this.")
    assert up.score == 1.0 and up.positive == ("not failure", "learned")
    down = positivity("Everything is terrible and I hate it, but it was fine.")
    assert down.score == pytest.approx(-1 / 3, abs=1e-4)
    assert positivity("The bus left at noon.").score == 0.0
    assert actionability("Next time I will prepare my notes earlier.").score == 1.0
    assert actionability("Maybe I could try to rest.").score == 1.0
    one = actionability("Let me breathe.")
    assert one.score == 0.5 and one.matched == ("Let me",)
    assert actionability("It was not my fault.").score == 0.0


def test_reframe_scoring_with_a_protocol_measurer() -> None:
    measurer = CueTrapMeasurer()
    good = score_reframe(
        "r1",
        "I always fail, I'm a failure.",
        ["labeling", "overgeneralizing"],
        "I struggled this time, but I have done well before. Next time I will ask for help.",
        measurer,
    )
    assert good.values["trap_addressed"] == 1.0
    assert good.values["trap_reduction"] == pytest.approx(0.8)
    assert good.values["traps_in_reframe"] == 0.0
    assert good.values["actionability"] == 1.0 and good.values["positivity"] > 0
    half = score_reframe(
        "r2", "I always fail, I'm a failure.", ["labeling", "overgeneralizing"],
        "I always fail at this, but I am learning.", measurer,
    )  # fmt: skip
    assert half.values["trap_addressed"] == 0.5 and "trap_remains" in half.flags
    none = score_reframe("r3", "It rained.", [], "It rained, and that is fine.", measurer)
    assert "trap_addressed" not in none.values and none.values["positivity"] == 1.0


def test_reframe_loads_synthetic_rows_and_the_public_csv(tmp_path: Path) -> None:
    task = ReframeTask(measurer=CueTrapMeasurer())
    samples = task.load(None)
    assert len(samples) == 8 and all(s.data["traps"] for s in samples)
    path = tmp_path / "reframing_dataset.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["situation", "thought", "reframe", "thinking_traps_addressed"])
        w.writerow(["Exam", "I will fail", "I prepared", "fortune telling"])
        w.writerow(["Exam", "I will fail", "One exam is not everything", "catastrophizing"])
        w.writerow(["Rain", "It rains", "So it does", "none"])
    rows = task.load(path)
    assert [r.data["traps"] for r in rows] == [["catastrophizing", "fortune telling"], []]
    assert "fortune telling" in rows[0].messages[-1].content
    score = task.score(rows[0], gen("I am going to prepare and focus on one question."))
    assert score.values["trap_addressed"] == 0.5  # the cue measurer still sees "going to"
    with path.open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["S", "T", "R", "daydreaming"])
    with pytest.raises(InputError) as err:
        task.load(path)
    assert err.value.field == "thinking_traps_addressed" and err.value.record == 5


def test_measured_tasks_stop_with_the_training_command_when_no_model_is_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINDCOMMONS_HOME", str(tmp_path / "home"))
    for task, command in (
        (ReframeTask(), _measurers.TRAIN_COMMANDS["thinking-traps"]),
        (EmpathyTask(), _measurers.TRAIN_COMMANDS["empathy"]),
    ):
        sample = task.load(None, limit=1)[0]  # loading needs no model
        with pytest.raises(PrerequisiteError) as err:
            task.generate_config(sample)
        assert command in str(err.value)


# -- empathy --------------------------------------------------------------------------


class CueEmpathyMeasurer:
    """A Protocol-conforming EPITOME measurer for unit tests (cue words per mechanism)."""

    def predict(self, inputs: Sequence[Any]) -> list[CuePrediction]:
        out = []
        for _post, reply in inputs:
            low = reply.lower()
            levels = {
                "ER": "2" if "so sorry" in low else "0",
                "IP": "1" if "i understand" in low else "0",
                "EX": "2" if "?" in low else "0",
            }
            out.append(CuePrediction(levels, {k: {v: 1.0} for k, v in levels.items()}))
        return out


class ScriptedBackend:
    """Replies with fixed text; records configs. Unit tests only."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.configs: list[GenerateConfig] = []

    @property
    def name(self) -> str:
        return "scripted"

    def generate(self, messages: list[Message], config: GenerateConfig) -> Generation:
        self.configs.append(config)
        return gen(self.text)

    def describe(self) -> dict[str, str]:
        return {"backend": "scripted"}

    def close(self) -> None:
        pass


def test_empathy_loads_synthetic_posts_and_epitome_csvs(tmp_path: Path) -> None:
    task = EmpathyTask(measurer=CueEmpathyMeasurer())
    samples = task.load(None)
    assert len(samples) == 12 and len({s.id for s in samples}) == 12
    assert samples[0].messages[0].role == "system"
    header = ["sp_id", "rp_id", "seeker_post", "response_post", "level", "rationales"]
    for name in ("emotional-reactions-reddit.csv", "interpretations-reddit.csv",
                 "explorations-reddit.csv"):  # fmt: skip
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerow(["s1", "r1", "I feel alone.", "Me too.", "1", ""])
            w.writerow(["s1", "r2", "I feel alone.", "Why?", "0", ""])
            w.writerow(["s2", "r3", "Exams scare me.", "Study.", "0", ""])
    posts = task.load(tmp_path)
    assert [s.data["post"] for s in posts] == ["I feel alone.", "Exams scare me."]
    with (tmp_path / "emotional-reactions-reddit.csv").open("a", encoding="utf-8") as fh:
        fh.write("s3,r4,Help,Reply,7,\n")
    with pytest.raises(InputError) as err:
        task.load(tmp_path)
    assert err.value.field == "level" and err.value.record == 5


def test_empathy_scores_levels_and_the_optional_judge() -> None:
    measurer = CueEmpathyMeasurer()
    judge = EmpathyJudge(ScriptedBackend('{"ER": 2, "IP": 1, "EX": 0}'))
    score = score_reply(
        "e1", "I feel alone.", "I'm so sorry. How long has it been?", measurer, judge
    )
    assert score.values["er"] == 2.0 and score.values["ip"] == 0.0 and score.values["ex"] == 2.0
    assert score.values["empathy"] == 4.0 and score.values["ex_any"] == 1.0
    assert score.values["judge_empathy"] == 3.0 and score.values["judge_ip"] == 1.0
    assert judge.model.configs[0].json_schema is not None  # type: ignore[attr-defined]
    flat = score_reply("e2", "I feel alone.", "ok", measurer, EmpathyJudge(ScriptedBackend("no")))
    assert flat.values["empathy"] == 0.0 and {"no_empathy", "judge_unparsed"} <= set(flat.flags)
    assert "judge_empathy" not in flat.values
    assert parse_judge('{"ER": 1, "IP": 2, "EX": 0}') == {"ER": 1, "IP": 2, "EX": 0}
    assert parse_judge('{"ER": 3, "IP": 2, "EX": 0}') is None
    assert parse_judge('{"ER": true, "IP": 2, "EX": 0}') is None


# -- real tiny measurers (mindcommons.measure) ------------------------------------------

COMPASSION = "I'm so sorry you are going through this, that sounds really painful."
UNDERSTANDING = "I understand, I went through something very similar last year."
QUESTION = "What happened that made you feel this way? How long has it been?"
DISMISSAL = "Just go outside more and stop complaining."
TINY_POSTS = [
    "I feel alone every night.", "My exams are scaring me.", "I lost my job today.",
    "Nobody calls me anymore.", "I can't stop crying.", "My dog died this week.",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_measurers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real ``empathy`` and ``thinking-traps`` measurers (MiniLM + head) trained in seconds
    on project-written examples whose wording reveals the labels."""
    from mindcommons.measure import MEASURES, Example, load_measurer
    from mindcommons.measure.train import train_examples
    from mindcommons.settings import load_settings

    home = tmp_path_factory.mktemp("measure-home")
    settings = load_settings(home)
    replies = {
        COMPASSION: {"ER": "2", "IP": "0", "EX": "0"},
        UNDERSTANDING: {"ER": "0", "IP": "1", "EX": "0"},
        QUESTION: {"ER": "0", "IP": "0", "EX": "2"},
        DISMISSAL: {"ER": "0", "IP": "0", "EX": "0"},
    }
    empathy = [Example((p, r), dict(lv)) for p in TINY_POSTS for r, lv in replies.items()]
    thoughts = {
        "Everyone at work {} surely thinks I am useless": "mind reading",
        "If I fail test {} my whole life is ruined forever": "catastrophizing",
        "I had lunch {} with a friend and it was nice": None,
    }
    traps = [
        Example((t.format(i),), {k: "1" if k == trap else "0" for k in TRAPS13})
        for i in range(8)
        for t, trap in thoughts.items()
    ]
    out = {}
    for name, examples in (("empathy", empathy), ("thinking-traps", traps)):
        report = train_examples(
            MEASURES.get(name), examples, examples, [], settings=settings,
            out=home / name, epochs=40, lr=3e-2, n_boot=10,
        )  # fmt: skip
        assert report.path is not None
        out[name] = load_measurer(report.path)
    return out


@pytest.mark.slow
def test_empathy_and_reframe_scored_by_real_tiny_measurers(
    tiny_measurers: dict[str, Any],
) -> None:
    empathy = EmpathyTask(measurer=tiny_measurers["empathy"])
    sample = empathy.load(None, limit=1)[0]
    warm = empathy.score(sample, gen(COMPASSION + " " + QUESTION))
    cold = empathy.score(sample, gen(DISMISSAL))
    assert warm.values["er"] >= 1 and warm.values["ex"] >= 1
    assert cold.values["empathy"] < warm.values["empathy"]
    assert set(warm.values) >= {"er", "ip", "ex", "empathy", "er_any"}
    reframe = ReframeTask(measurer=tiny_measurers["thinking-traps"])
    stuck = score_reframe(
        "r", "Everyone at work surely thinks I am useless", ["mind reading"],
        "Everyone at work 9 surely thinks I am useless", reframe.scorer(),
    )  # fmt: skip
    assert stuck.values["trap_addressed"] == 0.0 and "trap_remains" in stuck.flags
    freed = score_reframe(
        "r", "Everyone at work surely thinks I am useless", ["mind reading"],
        "I had lunch with a friend and it was nice; I will ask my manager for feedback.",
        reframe.scorer(),
    )  # fmt: skip
    assert freed.values["trap_addressed"] == 1.0 and freed.values["trap_reduction"] > 0


# -- the real embedded model ----------------------------------------------------------


@pytest.mark.slow
def test_each_task_runs_two_samples_with_the_embedded_model(
    tiny_measurers: dict[str, Any],
) -> None:
    from mindcommons.models import load_model

    model = load_model("embedded")
    tasks: list[AuditTask] = [
        SimplifyTask(max_tokens=80),
        ThinkingTrapsTask(),
        ReframeTask(measurer=tiny_measurers["thinking-traps"], max_tokens=60),
        EmpathyTask(measurer=tiny_measurers["empathy"], judge=EmpathyJudge(model), max_tokens=60),
    ]
    for task in tasks:
        for sample in task.load(None, limit=2):
            config = task.generate_config(sample)
            generation = model.generate(list(sample.messages), config)
            assert generation.text.strip(), task.name
            score = task.score(sample, generation)
            assert score.sample_id == sample.id
            primary = next(a for a in task.aggregates if a.name == task.primary)
            if primary.kind == "mean":
                assert primary.value in score.values, (task.name, score)
            else:
                assert score.label_pred in LABELS, (task.name, generation.text)


@pytest.mark.slow
def test_counterfactual_finds_a_trained_empathy_model_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterfactual task's default quality scorer is the trained ``empathy`` artifact
    in the user's home (by name, latest version), and the heuristic only without one."""
    from mindcommons.measure import MEASURES, Example
    from mindcommons.measure.train import train_examples
    from mindcommons.settings import load_settings
    from mindcommons.suite.tasks._counterfactual_quality import (
        EpitomeScorer,
        HeuristicScorer,
        resolve_scorer,
    )

    home = tmp_path / "home"
    monkeypatch.setenv("MINDCOMMONS_HOME", str(home))
    with pytest.warns(UserWarning, match="mindcommons train empathy"):
        assert isinstance(resolve_scorer(None), HeuristicScorer)
    replies = {
        COMPASSION: {"ER": "2", "IP": "0", "EX": "0"},
        DISMISSAL: {"ER": "0", "IP": "0", "EX": "0"},
    }
    examples = [Example((p, r), dict(lv)) for p in TINY_POSTS for r, lv in replies.items()]
    train_examples(
        MEASURES.get("empathy"), examples, examples, [], settings=load_settings(home),
        epochs=20, lr=3e-2, n_boot=10,
    )  # fmt: skip
    scorer = resolve_scorer(None)
    assert isinstance(scorer, EpitomeScorer)
    warm = scorer.score(TINY_POSTS[0], COMPASSION)
    cold = scorer.score(TINY_POSTS[0], DISMISSAL)
    assert warm["ER"] > cold["ER"]

"""The replay backend: answers from a JSONL file, keyed by task and sample id; own token
counts; clear errors; and run comparison (paired tests) on replayed runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.models import BACKENDS, load_model
from mindcommons.models.base import GenerateConfig, Message
from mindcommons.models.replay import approx_tokens, prompt_digest, sample_context
from mindcommons.suite.compare import compare_runs
from mindcommons.suite.runner import run_suite
from suite_toy import TOY


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def toy_answers(path: Path, wrong: set[str] = frozenset(), tokens: bool = True) -> Path:  # type: ignore[assignment]
    rows: list[dict[str, object]] = []
    for s in TOY.load(None):
        answer = s.target if s.id not in wrong else ("no" if s.target == "yes" else "yes")
        row: dict[str, object] = {"task": "toy", "sample_id": s.id, "response": f"{answer}."}
        if tokens:
            row.update(input_tokens=20, output_tokens=2, model="vendor-model-1")
        rows.append(row)
    return write(path, rows)


def test_replay_serves_answers_by_task_and_sample(tmp_path: Path) -> None:
    assert "replay" in BACKENDS
    path = toy_answers(tmp_path / "a.jsonl", tokens=False)
    model = load_model(f"replay/{path}")
    config = GenerateConfig(max_tokens=4)
    with sample_context("toy", "q1-baseline"):
        gen = model.generate([Message("user", "Is fire cold?")], config)
    assert gen.text == "no."
    assert gen.usage.input_tokens == approx_tokens("Is fire cold?") == 4
    assert gen.usage.output_tokens == 2 and gen.metadata["usage"] == "approximate"
    assert model.describe()["backend"] == "replay"
    with pytest.raises(InputError) as err, sample_context("toy", "q99-baseline"):
        model.generate([Message("user", "?")], config)
    assert str(path) in str(err.value) and "toy/q99-baseline" in str(err.value)
    # without a sample named, a line may be keyed by the prompt's digest
    messages = [Message("user", "hello")]
    keyed = write(tmp_path / "p.jsonl", [{"prompt_sha256": prompt_digest(messages),
                                          "response": "hi", "input_tokens": 3,
                                          "output_tokens": 1}])  # fmt: skip
    gen = load_model(f"replay/{keyed}").generate(messages, config)
    assert gen.text == "hi" and gen.usage.total_tokens == 4 and gen.metadata["usage"] == "file"


def test_replay_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(f"replay/{tmp_path / 'none.jsonl'}")
    cases = [
        ([{"task": "t", "sample_id": "a"}], "line 1, field 'response'"),
        ([{"task": "t", "sample_id": "a", "response": "x", "output_tokens": -1}],
         "line 1, field 'output_tokens'"),
        ([{"task": "t", "sample_id": "a", "response": "x"},
          {"task": "t", "sample_id": "a", "response": "y"}], "line 2, field 'sample_id'"),
        ([{"sample_id": "a", "response": "x"}], "line 1, field 'task'"),
    ]  # fmt: skip
    for i, (rows, where) in enumerate(cases):
        path = write(tmp_path / f"bad{i}.jsonl", rows)
        with pytest.raises(InputError, match=where):
            load_model(f"replay/{path}")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task": "t"\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        load_model(f"replay/{broken}")


def test_replayed_runs_are_scored_and_compared_with_paired_tests(tmp_path: Path) -> None:
    good = toy_answers(tmp_path / "good.jsonl")
    wrong = {s.id for s in TOY.load(None)[:10]}
    bad = toy_answers(tmp_path / "bad.jsonl", wrong=wrong)
    run_a = run_suite(["toy"], f"replay/{good}", tmp_path / "A", n_boot=200, energy=False)
    run_b = run_suite(["toy"], f"replay/{bad}", tmp_path / "B", n_boot=200, energy=False)
    card_a = json.loads((tmp_path / "A" / "report.json").read_text())
    card_b = json.loads((tmp_path / "B" / "report.json").read_text())
    n = len(TOY.load(None))
    assert card_a["tasks"]["toy"]["metrics"]["accuracy"]["value"] == 1.0
    assert card_b["tasks"]["toy"]["metrics"]["accuracy"]["value"] == pytest.approx(
        1 - 10 / n, abs=1e-6
    )
    assert card_a["tasks"]["toy"]["tokens"] == {"input": 20 * n, "output": 2 * n}
    assert card_a["run"]["model"]["model"] == "vendor-model-1"
    assert run_a.computed == run_b.computed == {"toy": n}

    result = compare_runs(tmp_path / "A", tmp_path / "B", n_boot=500)
    acc = result["tasks"]["toy"]["metrics"]["accuracy"]
    assert result["tasks"]["toy"]["paired"] is True and result["tasks"]["toy"]["n_pairs"] == n
    assert acc["diff"] == pytest.approx(-10 / n, abs=1e-6)
    assert acc["p"] < 0.01 and acc["high"] < 0
    assert acc["regression"] is True
    assert "toy.accuracy" in result["regressions"]
    same = compare_runs(tmp_path / "A", tmp_path / "A", n_boot=100)
    assert same["regressions"] == []
    assert same["tasks"]["toy"]["metrics"]["accuracy"]["p"] == 1.0
    # the other way round it is an improvement, not a regression
    back = compare_runs(tmp_path / "B", tmp_path / "A", n_boot=200)
    assert back["regressions"] == [] and back["tasks"]["toy"]["metrics"]["accuracy"]["improvement"]
    # without journals the comparison is unpaired, from the cards
    for name in ("A", "B"):
        (tmp_path / name / "journal.jsonl").unlink()
    unpaired = compare_runs(tmp_path / "A", tmp_path / "B")
    assert unpaired["tasks"]["toy"]["paired"] is False
    assert unpaired["tasks"]["toy"]["metrics"]["accuracy"]["diff"] == pytest.approx(
        -10 / n, abs=1e-6
    )


class _NeedsModel:
    """A test task whose scorer needs something this machine lacks."""

    name = "needs-model"
    description = "test-only: its scorer needs a model that is not installed"
    aggregates = TOY.aggregates
    primary = "accuracy"

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list:  # type: ignore[type-arg]
        return TOY.load(None, limit=2)

    def generate_config(self, sample, seed=0):  # type: ignore[no-untyped-def]
        return TOY.generate_config(sample, seed)

    def score(self, sample, generation):  # type: ignore[no-untyped-def]
        raise PrerequisiteError("no trained 'x' measurement model; train it with: ...")


def test_a_task_missing_a_prerequisite_is_skipped_and_the_rest_run(tmp_path: Path) -> None:
    from mindcommons.suite import SUITE_TASKS

    if "needs-model" not in SUITE_TASKS:
        SUITE_TASKS.add("needs-model", _NeedsModel())  # type: ignore[arg-type]
    answers = toy_answers(tmp_path / "a.jsonl")
    with answers.open("a", encoding="utf-8") as fh:
        for s in TOY.load(None, limit=2):
            fh.write(json.dumps({"task": "needs-model", "sample_id": s.id, "response": "yes"}))
            fh.write("\n")
    run = run_suite(["needs-model", "toy"], f"replay/{answers}", tmp_path / "run", n_boot=50,
                    energy=False)  # fmt: skip
    assert "no trained 'x'" in run.skipped["needs-model"]
    assert run.computed["toy"] == len(TOY.load(None))
    card = json.loads((tmp_path / "run" / "report.json").read_text())
    assert list(card["tasks"]) == ["toy"] and "needs-model" in card["skipped"]
    assert "Tasks not run: 1" in (tmp_path / "run" / "report.html").read_text()

"""The suite runner: a killed run resumes without recomputing; the journal and the report
card hold numbers only; the phq9/gad7 adapter; the audit CLI with --suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mindcommons.errors import ConfigError, InputError
from mindcommons.models.base import Generation, Usage
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.journal import Journal, ScoredSample
from mindcommons.suite.runner import run_suite
from suite_toy import QUESTIONS, TOY

TESTS = Path(__file__).parent
LIMIT = 8  # toy samples in the killed run (4 questions x 2 variants)


def _sample_lines(folder: Path) -> list[dict[str, object]]:
    path = folder / "journal.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n") and '"kind": "sample"' in line:
            out.append(json.loads(line))
    return out


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    script = (
        "import suite_toy\n"
        "from pathlib import Path\n"
        "from mindcommons.suite.runner import run_suite\n"
        f"run_suite(['toy'], 'embedded', Path({str(out)!r}), limit={LIMIT}, energy=False)\n"
    )
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_sample_lines(out)) >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    before = {str(line["sample_id"]) for line in _sample_lines(out)}
    total = len(TOY.load(None, limit=LIMIT))
    assert 2 <= len(before) < total
    assert not (out / "report.json").exists()  # it died before the card

    run = run_suite(["toy"], "embedded", out, limit=LIMIT, n_boot=200, min_group_n=5)
    assert run.resumed == {"toy": len(before)}
    assert run.computed == {"toy": total - len(before)}
    lines = _sample_lines(out)
    ids = [str(line["sample_id"]) for line in lines]
    assert len(ids) == total and len(set(ids)) == total  # nothing scored twice
    assert {i for i in ids[: len(before)]} == before  # the first lines were kept as written

    again = run_suite(
        ["toy"], "embedded", out, limit=LIMIT, n_boot=200, energy=False, min_group_n=5
    )
    assert again.computed == {"toy": 0} and again.resumed == {"toy": total}
    assert len(_sample_lines(out)) == total

    card = json.loads((out / "report.json").read_text(encoding="utf-8"))
    toy = card["tasks"]["toy"]
    assert toy["n"] == total
    acc = toy["metrics"]["accuracy"]
    assert 0.0 <= acc["value"] <= 1.0 and acc["n"] == total
    assert set(toy["by_language"]) == {"en", "es"}
    assert set(toy["by_attribute"]["group"]) == {"a", "b"}
    assert toy["by_attribute"]["group"]["b"]["warning"].startswith("n = 2 < 5")
    assert set(toy["paired_gaps"]) == {"polite"}
    assert toy["paired_gaps"]["polite"]["pairs"] == LIMIT // 2
    assert toy["calibration"]["ece"]["n"] == total
    assert toy["disparity"]["language"]["accuracy"]["by_group"].keys() == {"en", "es"}
    energy = toy["energy"]
    assert energy["inferences"] == total - len(before)  # measured in the resumed stretch
    assert energy["kwh"] > 0 and energy["kwh_per_1k"] > 0
    assert "CodeCarbon" in energy["method"]
    if not Path("/sys/class/powercap/intel-rapl").exists():
        assert energy["estimated"] is True and "estimated" in energy["method"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "toy" in html and "estimated" in html
    # numbers only: no question text in the journal or the card
    for path in (out / "journal.jsonl", out / "report.json", out / "report.html"):
        text = path.read_text(encoding="utf-8")
        for question, _ in QUESTIONS:
            assert question not in text, path


def test_torn_last_line_is_cut_and_the_run_continues(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open({"model": "replay/x", "seed": 0})
    journal.add_sample(ScoredSample(task="toy", sample_id="a"))
    with journal.path.open("a", encoding="utf-8") as fh:
        fh.write('{"kind": "sample", "task": "toy", "sample_id": "b", "val')  # killed mid-write
    state = journal.read()
    assert set(state.samples) == {("toy", "a")}
    journal.open({"model": "replay/x", "seed": 0})
    journal.add_sample(ScoredSample(task="toy", sample_id="c"))
    assert set(journal.read().samples) == {("toy", "a"), ("toy", "c")}
    lines = journal.path.read_text(encoding="utf-8").splitlines()
    assert all(json.loads(line) for line in lines)  # every line whole again
    with pytest.raises(ConfigError, match="seed=0"):
        journal.open({"model": "replay/x", "seed": 5})  # a different run: refused
    with journal.path.open("a", encoding="utf-8") as fh:
        fh.write("not json\n")
    with pytest.raises(InputError, match="line 4"):
        journal.read()


def test_energy_settings() -> None:
    from mindcommons.suite.energy import EnergyMeter, check_country

    assert check_country(" gbr ") == "GBR"
    with pytest.raises(ConfigError, match="ISO 3166-1 alpha-3"):
        check_country("UK")
    with EnergyMeter("BRA", enabled=False) as meter:
        time.sleep(0.01)
    assert meter.reading is not None and meter.reading.method == "not measured"
    assert meter.reading.kwh == 0 and meter.reading.seconds > 0 and meter.reading.country == "BRA"


def test_unknown_task_and_bad_settings_fail_before_running(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown audit task 'nope'"):
        run_suite(["nope"], "embedded", tmp_path / "x")
    with pytest.raises(ConfigError, match="limit"):
        run_suite(["toy"], "embedded", tmp_path / "x", limit=0)
    with pytest.raises(ConfigError, match="not in the run"):
        run_suite(["toy"], "embedded", tmp_path / "x", sources={"phq9": None})
    assert not (tmp_path / "x").exists()


def _phq9_answer(scores: list[int]) -> str:
    return json.dumps(
        {"items": [{"item": i, "score": s, "evidence": ""} for i, s in enumerate(scores, 1)]}
    )


def test_questionnaire_tasks_are_suite_tasks(tmp_path: Path) -> None:
    assert {"phq9", "gad7"} <= set(SUITE_TASKS.names())
    task = SUITE_TASKS.get("phq9")
    samples = task.load(None, limit=3, seed=1)
    assert len(samples) == 3 and samples == task.load(None, limit=3, seed=1)
    sample = samples[0]
    config = task.generate_config(sample, 0)
    assert config.json_schema is not None  # the per-text schema of the questionnaire task
    truth = sample.data["item"].true_items
    exact = Generation(_phq9_answer(list(truth)), Usage(10, 5), "m", 0.1)
    score = task.score(sample, exact)
    assert score.values["item_abs_err"] == 0 and score.values["band_correct"] == 1
    assert score.values["parsed"] == 1
    garbage = task.score(sample, Generation("no idea", Usage(1, 1), "m", 0.1))
    assert garbage.values["parsed"] == 0
    assert garbage.values["item_abs_err"] == pytest.approx(sum(truth) / len(truth))
    # a JSONL source with a bad record names file, line and field
    bad = tmp_path / "phq9.jsonl"
    bad.write_text(
        json.dumps({"id": "d1", "text": "Low mood.", "items": [1] * 9}) + "\n"
        + json.dumps({"id": "d2", "text": "Tired.", "items": [1, 2]}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(InputError, match=r"phq9\.jsonl, line 2, field 'items'"):
        task.load(bad)


def test_audit_cli_runs_a_suite_on_replayed_answers(tmp_path: Path) -> None:
    task = SUITE_TASKS.get("phq9")
    samples = task.load(None, limit=4, seed=0)
    replay = tmp_path / "answers.jsonl"
    replay.write_text(
        "".join(
            json.dumps({"task": "phq9", "sample_id": s.id,
                        "response": _phq9_answer(list(s.data["item"].true_items))}) + "\n"
            for s in samples
        ),
        encoding="utf-8",
    )  # fmt: skip
    out = tmp_path / "run"
    env = {**os.environ, "MINDCOMMONS_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "mindcommons", "audit", "--suite", "phq9",
           "--model", f"replay/{replay}", "--limit", "4", "--no-energy", "--n-boot", "50",
           "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("report.html")
    card = json.loads((out / "report.json").read_text(encoding="utf-8"))
    phq9 = card["tasks"]["phq9"]
    assert phq9["n"] == 4
    assert phq9["metrics"]["item_mae"]["value"] == 0.0  # the replayed answers were exact
    assert phq9["energy"]["method"] == "not measured"
    assert card["run"]["model"]["backend"] == "replay"
    compared = subprocess.run(
        [sys.executable, "-m", "mindcommons", "report", "compare", str(out), str(out),
         "--fail-on-regression", "--n-boot", "50", "--out", str(tmp_path / "cmp.json")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    assert "no regressions" in compared.stdout and "item_mae" in compared.stdout
    assert json.loads((tmp_path / "cmp.json").read_text())["tasks"]["phq9"]["n_pairs"] == 4
    # a sample without an answer: a clear error naming the file and the sample
    more = [*cmd[:-2], "--limit", "5", "--out", str(tmp_path / "run2")]
    failed = subprocess.run(more, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert failed.returncode == InputError.exit_code
    missing = task.load(None, limit=5, seed=0)[4].id
    assert str(replay) in failed.stderr and f"phq9/{missing}" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_named_suites_and_task_lists() -> None:
    from mindcommons.suite.suites import resolve_suite

    standard = resolve_suite("standard")
    assert {"phq9", "gad7", "toy"} <= set(standard) and standard == sorted(standard)
    assert resolve_suite(" phq9, toy ") == ["phq9", "toy"]
    with pytest.raises(ConfigError, match="neither a suite"):
        resolve_suite("phq9,nope")


@pytest.mark.slow
def test_embedded_prompt_evaluation_uses_the_threads_it_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Suite runs on a shared machine set MINDCOMMONS_MODEL_THREADS; prompt evaluation
    (most of a classification task's time) must keep to it, not take every core."""
    from mindcommons.models.embedded import EmbeddedModel

    threads = (os.cpu_count() or 1) + 1  # never llama-cpp-python's own default
    monkeypatch.setenv("MINDCOMMONS_MODEL_THREADS", str(threads))
    model = EmbeddedModel(n_ctx=128)
    params = model.llama.context_params
    assert (params.n_threads, params.n_threads_batch) == (threads, threads)

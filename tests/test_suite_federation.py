"""The ``suite`` site job: blocks only (no text, no small groups), pooled at the
coordinator into the same card as a local run; and a federated canary through Flower."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mindcommons.federation import launcher
from mindcommons.federation.site import run_site_job
from mindcommons.policy import DEFAULT_ALLOWED_JOBS, set_allowed_jobs, set_min_release_n
from mindcommons.settings import Settings
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.federated import run_federated_suite, suite_job
from mindcommons.suite.runner import run_suite
from test_federation import CANARY, make_home

ANSWERS = (
    [2, 3, 1, 2, 0, 1, 2, 0, 0],
    [0, 1, 0, 1, 0, 0, 1, 0, 0],
    [3, 3, 3, 2, 2, 2, 1, 1, 0],
    [1, 0, 2, 1, 0, 0, 0, 0, 0],
)


def note_rows(site: str, n: int, canary: str = "") -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        text = f"Seen at {site}: reports feeling down most days and sleeping badly (visit {i})." + (
            f" Mentions {canary}." if canary and i == 0 else ""
        )
        rows.append({
            "id": f"{site}-n{i}", "text": text, "items": ANSWERS[i % len(ANSWERS)],
            "language": "en" if i % 2 == 0 else "es",
            "attributes": {"gender": "female" if i < 2 else "male"},
        })  # fmt: skip
    return rows


Rows = list[dict[str, object]]


def put_site_files(settings: Settings, site: str, n: int, canary: str = "") -> Rows:
    rows = note_rows(site, n, canary)
    folder = settings.site_dir(site) / "suite"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "phq9.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    set_allowed_jobs(settings.site_dir(site), [*DEFAULT_ALLOWED_JOBS, "suite"])
    return rows


def replay_file(path: Path, rows: Rows, shift: int = 1) -> Path:
    """Answers for each row: every second item off by ``shift`` (capped at 3)."""
    lines = []
    for row in rows:
        truth = [int(v) for v in row["items"]]  # type: ignore[attr-defined]
        items = [min(3, v + shift) if k % 2 else v for k, v in enumerate(truth)]
        answer = {
            "items": [{"item": k + 1, "score": v, "evidence": ""} for k, v in enumerate(items)]
        }
        line = {"task": "phq9", "sample_id": row["id"], "response": json.dumps(answer)}
        lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_suite_job_releases_blocks_and_pools_like_a_local_run(tmp_path: Path) -> None:
    settings = make_home(tmp_path, {"site-a": 1, "site-b": 1, "site-c": 1}, min_release_n=None)
    rows_a = put_site_files(settings, "site-a", 4, CANARY)
    rows_b = put_site_files(settings, "site-b", 4)
    put_site_files(settings, "site-c", 2)  # under any floor used below
    for site in ("site-a", "site-b", "site-c"):
        set_min_release_n(settings.site_dir(site), 3)
    answers = replay_file(tmp_path / "answers.jsonl", rows_a + rows_b)
    task = SUITE_TASKS.get("phq9")
    job = suite_job([task], model=f"replay/{answers}", limit=None, seed=3, n_boot=40,
                    run_id="r1", energy=False)  # fmt: skip

    reply = run_site_job("site-a", settings.resolved_home(), dict(job))
    assert reply["status"] == "ok", reply
    payload = reply["payload"]
    assert all(isinstance(v, int | float | list) for v in payload.values())
    flat = json.dumps(payload)
    assert CANARY not in flat and "site-a-n0" not in flat  # no text, no sample ids
    assert "phq9|all|t" in payload and len(payload["phq9|all|r"]) == 40 * len(payload["phq9|all|t"])
    # groups of 2 (each language, each gender) are under site-a's floor of 3: held back
    assert payload["phq9|held|lang=en"] == 1 and "phq9|lang=en|t" not in payload
    # site-c: every task under its floor -> refused, nothing released
    refused = run_site_job("site-c", settings.resolved_home(), dict(job))
    assert refused["status"] == "refused" and refused["payload"] == {}
    assert "minimum of 3" in refused["reason"]
    # a site that does not allow the job type refuses it
    set_allowed_jobs(settings.site_dir("site-b"), ["count"])
    assert run_site_job("site-b", settings.resolved_home(), dict(job))["status"] == "refused"
    set_allowed_jobs(settings.site_dir("site-b"), [*DEFAULT_ALLOWED_JOBS, "suite"])

    # pooled over sites (in this process) = a local run over the concatenated files
    _, html = run_federated_suite(
        settings, [task], model=f"replay/{answers}", limit=None, seed=3, n_boot=40,
        run_id="pooled", sites=["site-a", "site-b", "site-c"], energy=False, local=True,
    )  # fmt: skip
    card = json.loads((html.parent / "report.json").read_text(encoding="utf-8"))
    phq9 = card["tasks"]["phq9"]
    assert card["run"]["mode"] == "federated" and card["run"]["sites"] == ["site-a", "site-b"]
    assert "site-c" in card["run"]["sites_missing"]
    assert phq9["n"] == 8 and set(phq9["by_site"]) == {"site-a", "site-b"}
    assert phq9["by_language"] == {}  # 2 per language at each site: held back there
    assert phq9["suppressed"]["lang=en at site-a"] == "under the site's release floor"
    both = tmp_path / "both.jsonl"
    both.write_text("".join(json.dumps(r) + "\n" for r in rows_a + rows_b), encoding="utf-8")
    local = run_suite(["phq9"], f"replay/{answers}", tmp_path / "local", sources={"phq9": both},
                      n_boot=40, energy=False)  # fmt: skip
    assert local.card_json is not None
    local_card = json.loads(local.card_json.read_text(encoding="utf-8"))["tasks"]["phq9"]
    for name in ("item_mae", "total_mae", "band_accuracy", "parse_rate"):
        assert phq9["metrics"][name]["value"] == pytest.approx(local_card["metrics"][name]["value"])
    for path in html.parent.rglob("*"):
        assert CANARY.encode() not in path.read_bytes(), path


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    root = tmp_path_factory.mktemp("suitefed")
    settings = make_home(root, {"site-a": 1, "site-b": 1})
    rows = put_site_files(settings, "site-a", 2, CANARY) + put_site_files(settings, "site-b", 2)
    # The sites answer with the replay backend (answers recorded in a file both read), so
    # this test is about the federation path; the embedded model runs in the resume test.
    answers = replay_file(root / "answers.jsonl", rows)
    try:
        yield settings, answers
    finally:
        launcher.down(settings)


@pytest.mark.slow
def test_federated_suite_canary(fed: tuple[Settings, Path]) -> None:
    settings, answers = fed
    launcher.up(settings)
    dump = settings.federation_dir() / "suite-dump.jsonl"
    json_path, html = run_federated_suite(
        settings, [SUITE_TASKS.get("phq9")], model=f"replay/{answers}", limit=None, seed=1,
        n_boot=20, run_id="suite-canary", debug_dump=dump, timeout=600,
    )  # fmt: skip
    card = json.loads(json_path.read_text(encoding="utf-8"))
    phq9 = card["tasks"]["phq9"]
    assert card["run"]["sites"] == ["site-a", "site-b"] and card["run"]["sites_missing"] == {}
    assert phq9["n"] == 4 and set(phq9["by_site"]) == {"site-a", "site-b"}
    assert phq9["metrics"]["item_mae"]["value"] > 0  # every second item was off by one
    assert phq9["energy"]["inferences"] == 4 and phq9["energy"]["estimated"] in (True, False)
    assert html.exists()
    replies = dump.read_text(encoding="utf-8")
    assert "phq9|all|t" in replies  # the dump did capture the released blocks
    assert CANARY not in replies
    for path in json_path.parent.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
    fed_dir = settings.federation_dir()
    for path in [*fed_dir.glob("superlink.db*"), *fed_dir.glob("logs/*")]:
        assert CANARY.encode() not in path.read_bytes(), path
    # the text is really at the site, and its journal (numbers only) stayed there too
    site_a = settings.site_dir("site-a")
    assert CANARY in (site_a / "suite" / "phq9.jsonl").read_text(encoding="utf-8")
    journal = site_a / "suite-runs" / "suite-canary" / "journal.jsonl"
    assert journal.exists() and CANARY not in journal.read_text(encoding="utf-8")

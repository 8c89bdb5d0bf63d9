"""Disclosure control for ``query``: floor, complementary suppression, DP noise, ledger."""

from __future__ import annotations

import itertools
import json
import random
import statistics
from pathlib import Path

import pytest

from mindcommons.disclosure import run_query, tables
from mindcommons.disclosure.ledger import LEDGER_FILE, spent
from mindcommons.disclosure.query import query_job
from mindcommons.federation.site import run_site_job
from mindcommons.governance import AuditLog
from mindcommons.governance.consent import set_consent
from mindcommons.governance.permissions import Principal, Role
from mindcommons.governance.projects import approve_project, create_project, list_projects
from mindcommons.ingest import ingest_path
from mindcommons.policy import set_allowed_jobs, set_dp_budget, set_min_release_n
from mindcommons.settings import Settings, load_settings

Person = tuple[str, str, str, int]  # participant id, language, gender, PHQ-9 total


def phq9_items(total: int) -> list[int]:
    items = [0] * 9
    for i in range(total):
        items[i % 9] += 1
    return items


def write_batch(path: Path, people: list[Person]) -> Path:
    lines = [{"type": "dataset", "name": "cohort"}]
    for pid, lang, gender, total in people:
        lines.append(
            {"type": "participant", "participant_id": pid, "gender": gender,
             "primary_language": lang, "age_band": "25-34", "country": "GB"}
        )  # fmt: skip
        lines.append(
            {"type": "measure", "participant_id": pid, "instrument": "PHQ-9",
             "date": "2025-01-10", "items": phq9_items(total)}
        )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def make_site(
    home: Path, site: str, people: list[Person], *, budget: float | None = 1000.0
) -> Settings:
    settings = load_settings(home)
    ingest_path(write_batch(home.parent / "data" / site / "records.jsonl", people), site,
                settings=settings)  # fmt: skip
    site_dir = settings.site_dir(site)
    set_allowed_jobs(site_dir, ["count", "evaluate", "query"])
    approve_for_analytics(settings, site)
    if budget is not None:  # the steward's own key in site.toml
        set_dp_budget(site_dir, budget)
    return settings


QUERY_PROJECTS = ("default", "p", "diff", "d", "n", "proj", "other", "r")


def approve_for_analytics(settings: Settings, site: str) -> None:
    """The site's steward consents the cohort to analytics and approves these projects."""
    steward = Principal("steward", Role.STEWARD)
    set_consent(settings, steward, site, "cohort", ["analytics"])
    known = {p.name for p in list_projects(settings, steward)}
    for name in QUERY_PROJECTS:
        if name not in known:
            create_project(settings, steward, name, ["analytics"])
        approve_project(settings, steward, name, site)


def cohort(groups: dict[tuple[str, str], int], prefix: str = "P") -> list[Person]:
    people: list[Person] = []
    rng = random.Random(7)
    for (lang, gender), n in sorted(groups.items()):
        for _ in range(n):
            people.append((f"{prefix}{len(people):04d}", lang, gender, rng.randint(0, 27)))
    return people


BIG = {("en", "female"): 14, ("en", "male"): 13, ("es", "female"): 12, ("es", "male"): 3}


def test_cell_under_floor_never_released_even_if_job_asks_lower(tmp_path: Path) -> None:
    settings = make_site(tmp_path / "home", "site-a", cohort(BIG))
    result = run_query(settings, by=["language", "gender"], min_n=1, local=True, project="p")
    assert result.missing == {} and result.floors == {"site-a": 10}
    cells = {c.labels: c for c in result.cells}
    assert cells[("es", "male")].count is None  # 3 people < floor 10
    # its complement in the same row and column is withheld too
    assert cells[("es", "female")].count is None or cells[("en", "male")].count is None
    for labels, cell in cells.items():
        if cell.count is not None:
            assert BIG.get(labels, 0) >= 10  # only cells over the floor were released
    # the site raises its floor: the job cannot lower it, but can raise it further
    set_min_release_n(settings.site_dir("site-a"), 13)
    raised = run_query(settings, by=["language"], min_n=2, local=True, project="p")
    assert raised.floors == {"site-a": 13}
    higher = run_query(settings, by=["language"], min_n=50, local=True, project="p")
    assert higher.floors == {"site-a": 50}
    assert all(c.count is None for c in higher.cells) and higher.total_count is None


def test_suppression_leaves_no_line_with_a_single_withheld_cell() -> None:
    rng = random.Random(3)
    for trial in range(200):
        shape = [rng.randint(2, 4) for _ in range(rng.randint(1, 3))]
        n = 1
        for s in shape:
            n *= s
        counts = [rng.choice([0, 1, 5, 9, 10, 12, 30, 80]) for _ in range(n)]
        hidden = tables.suppress(counts, shape, 10)
        assert all(h for c, h in zip(counts, hidden, strict=True) if c < 10), trial
        for line in tables.lines(shape):
            holding = [i for i in line if hidden[i] and counts[i] > 0]
            if len(holding) == 1:  # allowed only when the line has no one else in it
                assert all(counts[i] == 0 for i in line if i != holding[0]), (trial, counts)
        holding_all = sum(1 for c, h in zip(counts, hidden, strict=True) if h and c > 0)
        if holding_all == 1:
            assert not tables.total_releasable(counts, hidden, 10)


def test_differencing_total_and_margin_cannot_isolate_one_person(tmp_path: Path) -> None:
    groups = {("en", "female"): 20, ("en", "male"): 15, ("en", "other"): 1}
    settings = make_site(tmp_path / "home", "site-a", cohort(groups))
    total = run_query(settings, by=[], local=True, project="diff")
    assert total.total_count is not None  # 36 people: the total itself is releasable
    by_gender = run_query(settings, by=["gender"], local=True, project="diff")
    withheld = [c.labels for c in by_gender.cells if c.count is None]
    assert ("other",) in withheld  # the one person's cell
    # total - released cells = the sum of every withheld cell; with >= 2 withheld cells
    # holding people, the difference never pins the person to one cell
    withheld_people = [groups.get(("en", lab[0]), 0) for lab in withheld]
    assert sum(1 for n in withheld_people if n > 0) >= 2


def test_differencing_two_releases_one_person_apart_hides_the_value(tmp_path: Path) -> None:
    base = cohort({("en", "female"): 15})
    newcomer: Person = ("Z9999", "en", "female", 27)
    home = tmp_path / "home"
    make_site(home, "before", base)
    make_site(home, "after", [*base, newcomer])
    errors = []
    for _ in range(7):
        job = query_job([], statistic="mean:PHQ-9", epsilon=1.0, project="d", min_n=None)
        payload = {s: run_site_job(s, home, dict(job))["payload"] for s in ("before", "after")}
        assert all(p["total_released"] == 1 for p in payload.values())  # both over the floor
        n1, n2 = payload["before"]["total_count"], payload["after"]["total_count"]
        m1, m2 = payload["before"]["total_mean"], payload["after"]["total_mean"]
        errors.append(abs((n2 * m2 - n1 * m1) - newcomer[3]))
    # exact releases would give the newcomer's PHQ-9 total (27) to the point; noisy ones
    # are off by far more than the width of a PHQ-9 severity band
    assert statistics.median(errors) > 5


def test_dp_noise_present_and_within_scale(tmp_path: Path) -> None:
    settings = make_site(tmp_path / "home", "site-a", cohort({("en", "female"): 40}))
    released = [
        run_query(settings, by=["gender"], epsilon=1.0, local=True, project="n").cells[0].count
        for _ in range(8)
    ]
    assert all(isinstance(v, int) for v in released)
    assert any(v != 40 for v in released)  # noise is added
    # discrete Laplace with scale 2 (sensitivity 2 / epsilon 1): mean |error| about 2
    assert statistics.mean(abs(int(v or 0) - 40) for v in released) < 8


def test_budget_ledger_refusal_and_audit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = make_site(home, "site-a", cohort(BIG), budget=2.5)
    site_dir = settings.site_dir("site-a")
    for _ in range(2):
        assert run_query(settings, by=["language"], local=True, project="proj").missing == {}
    assert spent(site_dir, "proj") == pytest.approx(2.0)  # persisted between calls
    refused = run_query(settings, by=["language"], local=True, project="proj")
    assert refused.missing["site-a"] == (
        "refused: project proj has spent 2 of 2.5 epsilon at site-a; this query needs 1"
    )
    assert all(c.count is None for c in refused.cells)
    small = run_query(settings, by=["language"], epsilon=0.5, local=True, project="proj")
    assert small.missing == {}  # 2.5 exactly: allowed
    other = run_query(settings, by=["language"], local=True, project="other")
    assert other.missing == {}  # budgets are per project
    ledger = json.loads((site_dir / LEDGER_FILE).read_text(encoding="utf-8"))
    assert ledger["projects"]["proj"]["spent"] == pytest.approx(2.5)
    assert len(ledger["projects"]["proj"]["queries"]) == 3
    entries = [e for e in AuditLog.for_site(site_dir).entries() if e.subject == "query:proj"]
    kinds = [e.kind for e in entries]
    assert kinds == ["release", "release", "release_refused", "release"]
    assert entries[2].details["epsilon"] == 1.0
    assert AuditLog.for_site(site_dir).verify().ok


def test_payload_is_numbers_only_and_refused_without_policy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_site(home, "site-a", cohort(BIG))
    job = query_job(["language", "gender", "instrument_band:PHQ-9"], statistic="mean:PHQ-9",
                    epsilon=1.0, project="p", min_n=None)  # fmt: skip
    reply = run_site_job("site-a", home, job)
    assert reply["status"] == "ok", reply["reason"]
    payload = reply["payload"]
    for value in payload.values():
        items = value if isinstance(value, list) else [value]
        assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in items)
    assert payload["shape"] == [4, 4, 6]
    assert len(payload["count"]) == len(payload["mean"]) == len(payload["released"]) == 96
    text = json.dumps(payload)
    assert "female" not in text and "en" not in text.replace('"', " ").split()
    # a site whose policy does not list "query" refuses it
    set_allowed_jobs(load_settings(home).site_dir("site-a"), ["count"])
    assert run_site_job("site-a", home, job)["status"] == "refused"


def test_cli_query_json(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import mindcommons.cli.query_cmd  # noqa: F401  (registers the command)
    from mindcommons.cli.app import _register_commands, app

    _register_commands()  # with the others, so ``query`` is a subcommand

    home = tmp_path / "home"
    make_site(home, "site-a", cohort(BIG))
    out = CliRunner().invoke(
        app, ["query", "--by", "language", "--local", "--json", "--home", str(home)]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    labels = [tuple(c["labels"]) for c in data["cells"]]
    assert labels == list(itertools.product(["en", "es", "pt", tables.OTHER]))
    assert data["floors"] == {"site-a": 10} and data["budget_left"]["site-a"] == 999.0
    shown = CliRunner().invoke(app, ["query", "--by", "gender", "--local", "--home", str(home)])
    assert shown.exit_code == 0 and "<10" in shown.output


def test_site_refuses_regrouped_categories_without_spending(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = make_site(home, "site-a", cohort(BIG))
    # "en" alone vs "en"+"es" would isolate "es" by subtraction: the site only accepts
    # its own code table
    regrouped = query_job(["language"], statistic="count", epsilon=1.0, project="r",
                          min_n=None, levels=[["en"]])  # fmt: skip
    reply = run_site_job("site-a", home, regrouped)
    assert reply["status"] == "refused" and "code table" in reply["reason"]
    assert spent(settings.site_dir("site-a"), "r") == 0.0
    wrong_dim = dict(regrouped, by="participant_id", levels='[["x"]]')
    assert run_site_job("site-a", home, wrong_dim)["status"] == "refused"

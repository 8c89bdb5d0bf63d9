"""Report: JSON content, a self-contained and escaped HTML page, deterministic output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mindcommons.errors import ConfigError
from mindcommons.metrics import METRIC_KEYS, PooledResult, SiteStats, pool, site_stats
from mindcommons.report import RunInfo, package_versions, write_report
from test_metrics import make_results

EVIL = '<script>alert("x")</script>&'


def make_result(extra: dict[str, SiteStats] | None = None) -> PooledResult:
    stats = {
        "north": site_stats(make_results(30, 1), instrument="PHQ-9", n_boot=200, seed=1),
        "south": site_stats(make_results(12, 2), instrument="PHQ-9", n_boot=200, seed=2),
        "solo": site_stats(make_results(1, 3), instrument="PHQ-9", n_boot=200, seed=3),
        **(extra or {}),
    }
    return pool(stats)


def make_info(missing: dict[str, str] | None = None, **kw: object) -> RunInfo:
    missing = {"east": "site offline: connection refused"} if missing is None else missing
    fields: dict[str, object] = {
        "run_id": "run-1",
        "task": "phq9",
        "instrument": "PHQ-9",
        "mode": "federated",
        "model": {"backend": "llama_cpp", "model": "SmolLM2-135M"},
        "sites_requested": ["north", "south", "solo", *missing],
        "sites_missing": missing,
        "started": "2025-01-01T00:00:00+00:00",
        "finished": "2025-01-01T00:01:00+00:00",
        "wall_seconds": 60.0,
        "limit_per_site": 50,
        "seed": 0,
        **kw,
    }
    return RunInfo(**fields)  # type: ignore[arg-type]


def test_json_has_every_site_with_n_and_intervals(tmp_path: Path) -> None:
    result = make_result()
    write_report(make_info(), result, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["schema_version"] == 1
    assert set(data["sites"]) == {"north", "south", "solo"}
    for name, site in data["sites"].items():
        assert site["n"] == result.sites[name].n
        assert set(site["metrics"]) == set(METRIC_KEYS)
        for metric in site["metrics"].values():
            assert {"value", "low", "high", "note"} <= set(metric)
    north = data["sites"]["north"]["metrics"]["item_mae"]
    assert north["low"] <= north["value"] <= north["high"]
    assert data["sites"]["solo"]["metrics"]["item_mae"]["low"] is None
    assert data["pooled"]["n"] == 43
    assert data["pooled"]["metrics"]["item_qwk"]["low"] is not None
    assert data["missing_sites"] == [{"site": "east", "reason": "site offline: connection refused"}]
    assert data["measurement"]["n_boot"] == 200
    assert data["totals"]["input_tokens"] == result.pooled.input_tokens
    assert data["run"]["versions"]["python"]


def test_html_is_self_contained_and_names_missing_sites(tmp_path: Path) -> None:
    html_path = write_report(make_info(), make_result(), tmp_path)
    assert html_path == tmp_path / "report.html"
    html = html_path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower() and "@import" not in html
    assert "url(" not in html
    assert html.count("<svg") == len(METRIC_KEYS)  # one forest plot per metric
    box = html[html.index('id="missing-sites"') :]
    assert "east" in box[:600] and "site offline: connection refused" in box[:600]
    for name in ("north", "south", "solo", "Pooled"):
        assert name in html
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_html_without_missing_sites_says_all_reported(tmp_path: Path) -> None:
    html = write_report(make_info(missing={}), make_result(), tmp_path).read_text()
    assert "All requested sites reported" in html


def test_html_escapes_malicious_site_names_and_reasons(tmp_path: Path) -> None:
    extra = {EVIL: site_stats(make_results(5, 4), instrument="PHQ-9", n_boot=200, seed=4)}
    info = make_info(missing={"bad": EVIL}, model={"model": EVIL})
    html = write_report(info, make_result(extra), tmp_path).read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    data = json.loads((tmp_path / "report.json").read_text())
    assert EVIL in data["sites"]  # JSON keeps the name as data


def test_json_is_deterministic_for_fixed_inputs(tmp_path: Path) -> None:
    info = make_info()
    write_report(info, make_result(), tmp_path / "a")
    write_report(info, make_result(), tmp_path / "b")
    a = (tmp_path / "a" / "report.json").read_bytes()
    assert a == (tmp_path / "b" / "report.json").read_bytes()
    assert (tmp_path / "a" / "report.html").read_bytes() == (
        tmp_path / "b" / "report.html"
    ).read_bytes()
    # overwriting in place works and changes with the inputs
    write_report(make_info(wall_seconds=61.0), make_result(), tmp_path / "a")
    assert (tmp_path / "a" / "report.json").read_bytes() != a


def test_empty_site_and_no_sites_render(tmp_path: Path) -> None:
    extra = {"empty": site_stats([], instrument="PHQ-9", n_boot=200)}
    html = write_report(make_info(), make_result(extra), tmp_path / "x").read_text()
    assert "no samples" in html
    data = json.loads((tmp_path / "x" / "report.json").read_text())
    assert data["sites"]["empty"]["n"] == 0
    assert data["sites"]["empty"]["metrics"]["item_mae"]["value"] is None
    info = make_info(missing={"a": "refused", "b": "timeout"}, sites_requested=["a", "b"])
    html = write_report(info, pool({}), tmp_path / "y").read_text()
    assert "refused" in html and "timeout" in html


def test_run_info_validates_mode_and_versions() -> None:
    with pytest.raises(ConfigError):
        make_info(mode="cloud")
    versions = package_versions()
    assert set(versions) == {
        "mindcommons",
        "flwr",
        "inspect_ai",
        "llama_cpp_python",
        "python",
        "platform",
    }
    assert versions["flwr"] == "1.42.0"
    assert versions["mindcommons"] != "not installed"

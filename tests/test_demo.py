"""The README's first command, end to end, on a tiny sample: 3 sites in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mindcommons.policy import set_min_release_n


@pytest.mark.slow
def test_demo_reports_three_sites_with_intervals(tmp_path: Path) -> None:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "MINDCOMMONS_HOME": str(tmp_path)}
    # The stewards of these tiny demo sites release statistics over as few as 2 documents
    # (the default floor is 10, which the full-size demo meets).
    for site in ("site-a", "site-b", "site-c"):
        set_min_release_n(tmp_path / "sites" / site, 2)
    out = subprocess.run(
        [sys.executable, "-m", "mindcommons", "demo", "--limit", "2", "--patients", "4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    html = Path(last)
    assert html.name == "report.html" and html.is_file()
    assert tmp_path.resolve() in html.resolve().parents
    report = json.loads((html.parent / "report.json").read_text(encoding="utf-8"))
    assert report["missing_sites"] in ({}, [])
    assert sorted(report["sites"]) == ["site-a", "site-b", "site-c"]
    for site in report["sites"].values():
        assert site["n"] == 2
        mae = site["metrics"]["item_mae"]
        assert 0 <= mae["low"] <= mae["value"] <= mae["high"] <= 3
    assert report["pooled"]["n"] == 6
    assert "<script src" not in html.read_text(encoding="utf-8")
    # The federation was started by the demo, so the demo took it down again.
    state = tmp_path / "federation" / "state.json"
    assert not state.exists()

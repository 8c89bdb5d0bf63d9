"""Federation cost: federated audit vs the same evaluation in one process; per-round overhead.

Usage: python benchmarks/federation.py [--sites 2] [--patients 6] [--limit 5]
       [--model embedded] [--rounds 3] [--skip-audit]

Prints JSON with:
- audit: wall seconds of ``run_audit(federated=True)`` against the running federation
  and of ``run_audit(federated=False)`` (every site evaluated in this one process), on
  the same items (same seed and limit), their ratio (goal <= 1.25) and whether both
  runs pooled to the same numbers;
- round: seconds per round trip of our ``count`` job (plan, site lookup, job, collect,
  result.json) vs a plain minimal ``flwr run`` of a do-nothing app (one echo message
  per node) on the same SuperLink and SuperNodes, and the overhead;
- start-up seconds of ``federation up``, machine info and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mindcommons.audit import run_audit
from mindcommons.federation import launcher
from mindcommons.federation.runner import run_job
from mindcommons.ingest import ingest_path
from mindcommons.settings import Settings, load_settings
from mindcommons.synth import generate

NOOP_PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "noop-app"
version = "0.1.0"
description = "one echo message per node"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "bench"

[tool.flwr.app.components]
serverapp = "noop_app:server"
clientapp = "noop_app:client"
"""

NOOP_APP = """from flwr.app import ConfigRecord, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

server = ServerApp()
client = ClientApp()


@server.main()
def main(grid, context):
    msgs = [Message(RecordDict({"c": ConfigRecord({"x": 1})}), dst_node_id=n,
                    message_type="query") for n in grid.get_node_ids()]
    replies = list(grid.send_and_receive(msgs, timeout=120))
    print("noop replies", len(replies))


@client.query()
def echo(message, context):
    return Message(message.content, reply_to=message)
"""


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def prepare(root: Path, sites: int, patients: int) -> Settings:
    settings = load_settings(root / "home")
    summary = generate(root / "synth", sites=sites, patients=patients, seed=0, formats=("jsonl",))
    for site in summary.sites:
        ingest_path(root / "synth" / site.name / "jsonl", site.name, settings=settings)
    return settings


def _no_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_timing(v) for k, v in value.items() if not k.endswith("seconds")}
    return value


def pooled_numbers(report_html: Path) -> Any:
    """The pooled and per-site results of a report, without wall-clock fields."""
    data = json.loads((report_html.parent / "report.json").read_text(encoding="utf-8"))
    return _no_timing({"pooled": data.get("pooled"), "sites": data.get("sites")})


def site_seconds(report_html: Path) -> Any:
    data = json.loads((report_html.parent / "result.json").read_text(encoding="utf-8"))
    return data.get("site_seconds")


def noop_round(settings: Settings, app_dir: Path) -> float:
    state = launcher.read_state(settings)
    assert state is not None
    t0 = time.perf_counter()
    subprocess.run(
        [launcher.flwr_bin("flwr"), "run", str(app_dir), launcher.CONNECTION, "--stream"],
        env=launcher.flwr_env(Path(state.flwr_home)), cwd=app_dir, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=2)
    parser.add_argument("--patients", type=int, default=6)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-audit", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "benchmark": "federation",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": vars(args),
    }
    with tempfile.TemporaryDirectory(prefix="mc-bench-fed-") as tmp:
        root = Path(tmp)
        settings = prepare(root, args.sites, args.patients)
        t0 = time.perf_counter()
        launcher.up(settings)
        out["federation_up_seconds"] = round(time.perf_counter() - t0, 2)
        try:
            app_dir = root / "noop"
            app_dir.mkdir()
            (app_dir / "pyproject.toml").write_text(NOOP_PYPROJECT, encoding="utf-8")
            (app_dir / "noop_app.py").write_text(NOOP_APP, encoding="utf-8")
            ours, plain = [], []
            for _ in range(args.rounds):
                t = time.perf_counter()
                result = run_job(settings, {"job": "count"}, timeout=300)
                ours.append(time.perf_counter() - t)
                assert not result["missing"], result["missing"]
                plain.append(noop_round(settings, app_dir))
            out["round"] = {
                "ours_seconds": [round(x, 2) for x in ours],
                "plain_flwr_seconds": [round(x, 2) for x in plain],
                "ours_median": round(sorted(ours)[len(ours) // 2], 2),
                "plain_median": round(sorted(plain)[len(plain) // 2], 2),
            }
            r = out["round"]
            r["overhead_seconds"] = round(r["ours_median"] - r["plain_median"], 2)
            if not args.skip_audit:
                kw: dict[str, Any] = {"model": args.model, "limit": args.limit, "seed": 0}
                t = time.perf_counter()
                fed_report = run_audit(settings, federated=True, **kw)
                fed_s = time.perf_counter() - t
                t = time.perf_counter()
                local_report = run_audit(settings, federated=False, **kw)
                local_s = time.perf_counter() - t
                out["audit"] = {
                    "items": args.limit * args.sites,
                    "federated_seconds": round(fed_s, 2),
                    "local_seconds": round(local_s, 2),
                    "ratio": round(fed_s / local_s, 3),
                    "goal_ratio": 1.25,
                    "federated_site_seconds": site_seconds(fed_report),
                    "local_site_seconds": site_seconds(local_report),
                    "same_pooled_result": pooled_numbers(fed_report)
                    == pooled_numbers(local_report),
                }
        finally:
            launcher.down(settings)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()

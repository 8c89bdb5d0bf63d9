"""Governance overhead: what the site guard's project/consent check and sign-in cost.

Usage: python benchmarks/governance.py [--patients N] [--repeat R]

Prints JSON: per-job latency of ``run_site_job`` for a ``count`` job at a synthetic site
(allowlist + governance check + handler + audit log) against a baseline measured in the
same run (the ``count`` handler called directly, no checks); the check alone
(``jobcheck.check_job``); and argon2id login/authenticate times with the production
cost (64 MiB, t=3, p=4). Machine info and date included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_ms": round(statistics.median(times) * 1000, 2),
            "min_ms": round(min(times) * 1000, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    os.environ.pop("MINDCOMMONS_GOVERNANCE_URL", None)

    from mindcommons.federation.site import JOB_TYPES, run_site_job
    from mindcommons.governance import users
    from mindcommons.governance.jobcheck import check_job
    from mindcommons.governance.permissions import Principal, Role
    from mindcommons.governance.projects import approve_project, create_project
    from mindcommons.ingest import ingest_path
    from mindcommons.settings import load_settings
    from mindcommons.synth import generate

    root = Path(tempfile.mkdtemp(prefix="mc-gov-bench-"))
    generate(root / "data", sites=1, patients=args.patients, seed=3, formats=("jsonl",))
    settings = load_settings(root / "home")
    ingest_path(root / "data" / "site-a" / "jsonl", "site-a", settings=settings)
    steward = Principal("bench", Role.STEWARD)
    create_project(settings, steward, "bench", ["analytics"])
    approve_project(settings, steward, "bench", "site-a")
    job: dict[str, Any] = {"job": "count", "project": "bench", "run_id": "bench"}
    home = settings.resolved_home()

    run_site_job("site-a", home, dict(job))  # warm imports and migrations
    baseline = timed(lambda: JOB_TYPES.get("count")("site-a", settings, dict(job)), args.repeat)
    guarded = timed(lambda: run_site_job("site-a", home, dict(job)), args.repeat)
    check = timed(lambda: check_job(settings, "site-a", dict(job)), args.repeat)

    users.create_user(settings, None, "root", Role.ADMIN, "correct horse battery")
    login = timed(lambda: users.login(settings, "root", "correct horse battery"), 3)
    token = users.login(settings, "root", "correct horse battery")
    auth = timed(lambda: users.authenticate(settings, token), args.repeat)
    print(json.dumps({
        "benchmark": "governance",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_1m": round(os.getloadavg()[0], 2)},
        "patients": args.patients, "repeat": args.repeat,
        "count_job_baseline_handler_only": baseline,
        "count_job_run_site_job_with_governance": guarded,
        "governance_check_only": check,
        "overhead_ratio_median": round(guarded["median_ms"] / baseline["median_ms"], 2),
        "argon2id_login": login,
        "token_authenticate": auth,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

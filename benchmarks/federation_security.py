"""What TLS + SuperNode authentication + the site gate cost: `up` time and count-job latency.

Baseline measured in the same run: the same federation with ``--insecure`` (no TLS, no
node authentication; the gate stays on in both, as it does in the product). Sites hold
tiny project-made data (the count job is about the mechanics, not the data).

    .venv/bin/python benchmarks/federation_security.py --sites 2 --jobs 3

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mindcommons.federation import launcher
from mindcommons.federation.runner import run_job
from test_federation import make_home


def measure(insecure: bool, n_sites: int, jobs: int) -> tuple[float, list[float]]:
    """Seconds for `up` and for each count job."""
    root = Path(tempfile.mkdtemp(prefix="mc-bench-fedsec-"))
    settings = make_home(root, {f"site-{chr(97 + i)}": 2 for i in range(n_sites)})
    try:
        t0 = time.perf_counter()
        launcher.up(settings, insecure=insecure)
        up_s = time.perf_counter() - t0
        times = []
        for _ in range(jobs):
            t1 = time.perf_counter()
            result = run_job(settings, {"job": "count"}, timeout=120)
            times.append(time.perf_counter() - t1)
            if result["missing"]:
                raise SystemExit(f"a site did not answer: {result['missing']}")
    finally:
        launcher.down(settings)
    return up_s, times


def _summary(up_s: float, times: list[float]) -> dict[str, object]:
    return {
        "up_seconds": round(up_s, 2),
        "count_job_seconds_median": round(statistics.median(times), 2),
        "count_job_seconds": [round(t, 2) for t in times],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=3)
    args = parser.parse_args()
    base_up, base_jobs = measure(True, args.sites, args.jobs)
    sec_up, sec_jobs = measure(False, args.sites, args.jobs)
    out = {
        "benchmark": "federation_security",
        "sites": args.sites,
        "jobs": args.jobs,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "baseline_insecure": _summary(base_up, base_jobs),
        "tls_auth": _summary(sec_up, sec_jobs),
        "up_ratio": round(sec_up / base_up, 2),
        "count_job_ratio": round(statistics.median(sec_jobs) / statistics.median(base_jobs), 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Per-project epsilon budget at a site: ``<site_dir>/dp_ledger.json`` under a file lock.

The budget is the site's ``dp_budget`` key in its own ``site.toml`` (a number, epsilon
per project; missing means ``DEFAULT_BUDGET``). A charge that would pass the budget is
refused before anything is computed; accepted charges are written atomically (temporary
file, fsync, rename) while holding an exclusive ``flock`` on ``dp_ledger.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, PolicyError
from mindcommons.policy import POLICY_FILE

LEDGER_FILE = "dp_ledger.json"
LOCK_FILE = "dp_ledger.lock"
DEFAULT_BUDGET = 10.0
TOLERANCE = 1e-9


def site_budget(site_dir: Path) -> float:
    """Epsilon each project may spend at this site (``dp_budget`` in ``site.toml``)."""
    path = site_dir / POLICY_FILE
    if not path.exists():
        return DEFAULT_BUDGET
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    value = data.get("dp_budget", DEFAULT_BUDGET)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{path}: 'dp_budget' must be a non-negative number (epsilon)")
    return float(value)


def read_ledger(site_dir: Path) -> dict[str, Any]:
    path = site_dir / LEDGER_FILE
    if not path.exists():
        return {"version": 1, "projects": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: the privacy ledger is not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("projects"), dict):
        raise ConfigError(f"{path}: the privacy ledger has no 'projects' table")
    return data


def spent(site_dir: Path, project: str) -> float:
    entry = read_ledger(site_dir)["projects"].get(project, {})
    return float(entry.get("spent", 0.0))


@contextlib.contextmanager
def _locked(site_dir: Path) -> Iterator[None]:
    site_dir.mkdir(parents=True, exist_ok=True)
    with open(site_dir / LOCK_FILE, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(site_dir: Path, data: dict[str, Any]) -> None:
    tmp = site_dir / (LEDGER_FILE + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, site_dir / LEDGER_FILE)


def charge(site_dir: Path, site: str, project: str, epsilon: float, run_id: str) -> float:
    """Spend ``epsilon`` of ``project``'s budget at the site; return the new total spent.

    Raises PolicyError (nothing written) when the charge would pass the budget.
    """
    if not (epsilon > 0 and epsilon < float("inf")):
        raise PolicyError(f"refused: epsilon must be a positive number, got {epsilon}")
    budget = site_budget(site_dir)
    with _locked(site_dir):
        data = read_ledger(site_dir)
        entry = data["projects"].setdefault(project, {"spent": 0.0, "queries": []})
        used = float(entry.get("spent", 0.0))
        if used + epsilon > budget + TOLERANCE:
            raise PolicyError(
                f"refused: project {project} has spent {used:g} of {budget:g} epsilon at "
                f"{site}; this query needs {epsilon:g}"
            )
        entry["spent"] = round(used + epsilon, 9)
        entry.setdefault("queries", []).append(
            {"epsilon": epsilon, "run_id": run_id[:80], "time": time.time()}
        )
        _write(site_dir, data)
        return float(entry["spent"])

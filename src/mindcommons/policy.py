"""A site's own policy, kept in its folder: which jobs it runs, its release floor, its key.

``<home>/sites/<site>/site.toml`` is written by the site's steward (defaults on first
ingest); ``site.key`` is a random secret that never leaves the site.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from mindcommons.errors import ConfigError

POLICY_FILE = "site.toml"
SECRET_FILE = "site.key"
DEFAULT_ALLOWED_JOBS = ("evaluate", "count", "query")
DEFAULT_DP_BUDGET = 10.0
DEFAULT_MIN_RELEASE_N = 10

__all__ = [
    "DEFAULT_ALLOWED_JOBS",
    "DEFAULT_MIN_RELEASE_N",
    "SitePolicy",
    "allowed_jobs",
    "ensure_site_policy",
    "read_site_policy",
    "set_allowed_jobs",
    "set_dp_budget",
    "set_min_release_n",
    "site_secret",
    "write_site_policy",
]


@dataclass(frozen=True)
class SitePolicy:
    """What this site lets coordinators do; read from its own ``site.toml``."""

    allowed_jobs: tuple[str, ...] = DEFAULT_ALLOWED_JOBS
    # No statistic over fewer samples than this leaves the site. A coordinator may ask
    # for a higher floor in a job, never a lower one.
    min_release_n: int = DEFAULT_MIN_RELEASE_N
    # Differential-privacy budget (epsilon) each project may spend at this site.
    dp_budget: float = DEFAULT_DP_BUDGET

    def to_toml(self) -> str:
        jobs = ", ".join(f'"{j}"' for j in self.allowed_jobs)
        return (
            "# What coordinators may run at this site, and the smallest number of samples\n"
            "# any released statistic may cover. Edit to change this site's policy.\n"
            f"allowed_jobs = [{jobs}]\n"
            f"min_release_n = {self.min_release_n}\n"
            f"dp_budget = {self.dp_budget}\n"
        )


def ensure_site_policy(site_dir: Path) -> Path:
    """Create ``site.toml`` with the defaults (and the site's secret key) if missing."""
    path = site_dir / POLICY_FILE
    if not path.exists():
        write_site_policy(site_dir, SitePolicy())
    site_secret(site_dir)
    return path


def read_site_policy(site_dir: Path) -> SitePolicy:
    """The site's policy; no policy file means the defaults."""
    path = site_dir / POLICY_FILE
    if not path.exists():
        return SitePolicy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    jobs = data.get("allowed_jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(j, str) for j in jobs):
        raise ConfigError(f"{path}: 'allowed_jobs' must be a list of job type names")
    floor = data.get("min_release_n", DEFAULT_MIN_RELEASE_N)
    if isinstance(floor, bool) or not isinstance(floor, int) or floor < 1:
        raise ConfigError(f"{path}: 'min_release_n' must be a positive integer")
    budget = data.get("dp_budget", DEFAULT_DP_BUDGET)
    if isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0:
        raise ConfigError(f"{path}: 'dp_budget' must be a non-negative number (epsilon)")
    return SitePolicy(tuple(jobs), floor, float(budget))


def write_site_policy(site_dir: Path, policy: SitePolicy) -> None:
    """Replace the policy atomically and record the change in the site's audit log."""
    from mindcommons.governance import EventKind, record_event  # governance imports us

    old = read_site_policy(site_dir) if (site_dir / POLICY_FILE).exists() else None
    site_dir.mkdir(parents=True, exist_ok=True)
    tmp = site_dir / (POLICY_FILE + ".tmp")
    tmp.write_text(policy.to_toml(), encoding="utf-8")
    tmp.replace(site_dir / POLICY_FILE)
    changes = {
        name: {"old": None if old is None else _plain(getattr(old, name)), "new": _plain(value)}
        for name, value in vars(policy).items()
        if old is None or getattr(old, name) != value
    }
    if changes:
        record_event(site_dir, EventKind.POLICY_CHANGE, subject=POLICY_FILE, details=changes)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def allowed_jobs(site_dir: Path) -> list[str]:
    return list(read_site_policy(site_dir).allowed_jobs)


def set_allowed_jobs(site_dir: Path, jobs: list[str]) -> None:
    policy = read_site_policy(site_dir)
    write_site_policy(site_dir, replace(policy, allowed_jobs=tuple(jobs)))


def set_min_release_n(site_dir: Path, floor: int) -> None:
    policy = read_site_policy(site_dir)
    write_site_policy(site_dir, replace(policy, min_release_n=floor))


def set_dp_budget(site_dir: Path, epsilon: float) -> None:
    if epsilon < 0:
        raise ConfigError(f"dp_budget must be a non-negative number (epsilon), got {epsilon}")
    policy = read_site_policy(site_dir)
    write_site_policy(site_dir, replace(policy, dp_budget=float(epsilon)))


def site_secret(site_dir: Path) -> bytes:
    """The site's own random key (``site.key``, mode 0600), created on first use.

    It seeds the site's bootstrap resampling, so a coordinator that knows the run seed
    still cannot reconstruct which samples each replicate drew.
    """
    path = site_dir / SECRET_FILE
    if not path.exists():
        site_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()

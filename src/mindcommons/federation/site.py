"""Site-side job handling: the site's own allowlist, then the job, then numbers only.

Flower SuperNodes run whatever ClientApp the SuperLink sends; this module is the
installed code that every ClientApp calls, so the site's policy is enforced here,
read from the site's own folder (``<home>/sites/<site>/site.toml``).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, MindcommonsError, PolicyError
from mindcommons.registry import Registry
from mindcommons.settings import Settings, load_settings, validate_site_name

POLICY_FILE = "site.toml"
DEFAULT_ALLOWED_JOBS = ("evaluate", "count")

JobHandler = Callable[[str, Settings, dict[str, Any]], dict[str, Any]]
JOB_TYPES: Registry[JobHandler] = Registry("job type")


def ensure_site_policy(site_dir: Path) -> Path:
    """Create ``site.toml`` with the default allowlist if the site has none."""
    path = site_dir / POLICY_FILE
    if not path.exists():
        site_dir.mkdir(parents=True, exist_ok=True)
        jobs = ", ".join(f'"{j}"' for j in DEFAULT_ALLOWED_JOBS)
        path.write_text(
            "# What coordinators may run at this site. Edit to allow or refuse job types.\n"
            f"allowed_jobs = [{jobs}]\n",
            encoding="utf-8",
        )
    return path


def allowed_jobs(site_dir: Path) -> list[str]:
    """The site's allowlist; no policy file means the defaults."""
    path = site_dir / POLICY_FILE
    if not path.exists():
        return list(DEFAULT_ALLOWED_JOBS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    jobs = data.get("allowed_jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(j, str) for j in jobs):
        raise ConfigError(f"{path}: 'allowed_jobs' must be a list of job type names")
    return list(jobs)


def set_allowed_jobs(site_dir: Path, jobs: list[str]) -> None:
    site_dir.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{j}"' for j in jobs)
    (site_dir / POLICY_FILE).write_text(f"allowed_jobs = [{listed}]\n", encoding="utf-8")


def numeric_payload(payload: dict[str, Any]) -> dict[str, int | float | list[int] | list[float]]:
    """Check that a reply holds only numbers (or lists of numbers); normalise list types."""
    out: dict[str, int | float | list[int] | list[float]] = {}
    for key, value in payload.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, int | float):
            out[key] = value
        elif isinstance(value, list | tuple):
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                raise PolicyError(f"reply field '{key}' holds something other than numbers")
            if all(isinstance(v, int) for v in value):
                out[key] = [int(v) for v in value]
            else:
                out[key] = [float(v) for v in value]
        else:
            raise PolicyError(f"reply field '{key}' is a {type(value).__name__}, not a number")
    return out


def run_site_job(site: str, home: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Run one job at ``site``; return ``{"site", "status", "reason", "payload"}``.

    ``status`` is "ok", "refused" (policy) or "error"; ``payload`` holds only numbers.
    """
    validate_site_name(site)
    kind = str(job.get("job", ""))
    settings = load_settings(home)
    site_dir = settings.site_dir(site)
    started = time.perf_counter()
    try:
        if kind not in allowed_jobs(site_dir):
            raise PolicyError(f"refused: job type '{kind}' not allowed at {site}")
        handler = JOB_TYPES.get(kind)
        payload = numeric_payload(handler(site, settings, job))
    except PolicyError as err:
        return {"site": site, "status": "refused", "reason": str(err), "payload": {}}
    except MindcommonsError as err:
        return {"site": site, "status": "error", "reason": f"error: {err}", "payload": {}}
    except Exception as err:  # never leak a traceback (it may quote data) across the wire
        return {
            "site": site,
            "status": "error",
            "reason": f"error: {type(err).__name__} at {site}",
            "payload": {},
        }
    payload["site_seconds"] = round(time.perf_counter() - started, 3)
    return {"site": site, "status": "ok", "reason": "", "payload": payload}


@JOB_TYPES.register("count")
def _count_job(site: str, settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """How many records of each kind the site holds (cheap; used to test the mechanics)."""
    from mindcommons.repository import SiteRepository

    hold = float(job.get("hold_seconds", 0) or 0)
    if hold > 0:  # simulate a long job (used to test site dropouts)
        time.sleep(min(hold, 600.0))
    repo = SiteRepository.for_site(settings, site)
    try:
        counts = repo.counts()
    finally:
        close = getattr(repo, "close", None)
        if callable(close):
            close()
    return {k: int(v) for k, v in counts.items()}


@JOB_TYPES.register("evaluate")
def _evaluate_job(site: str, settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """Run the task over the site's items with the model; return the metric payload."""
    from mindcommons import metrics, tasks
    from mindcommons.models import load_model
    from mindcommons.repository import SiteRepository

    task_name = str(job.get("task", "phq9"))
    spec = tasks.TASKS.get(task_name)
    limit = int(job.get("limit", 0) or 0) or None
    seed = int(job.get("seed", 0) or 0)
    repo = SiteRepository.for_site(settings, site)
    try:
        items = repo.eval_items(instrument=spec.instrument, limit=limit, seed=seed)
    finally:
        close = getattr(repo, "close", None)
        if callable(close):
            close()
    base_url = str(job.get("base_url", "")) or None
    model = load_model(str(job.get("model", "embedded")), base_url=base_url)
    run_id = str(job.get("run_id", "run"))
    log_dir = settings.site_dir(site) / "logs" / run_id  # stays at the site
    try:
        results = tasks.run_local(task_name, items, model, log_dir=log_dir, seed=seed)
    finally:
        model.close()
    stats = metrics.site_stats(
        results, instrument=spec.instrument, n_boot=int(job.get("n_boot", 1000)), seed=seed
    )
    payload: dict[str, Any] = stats.to_payload()
    metrics.assert_numeric_payload(payload)
    return payload

"""Site-side job handling: the site's own allowlist, then the job, then numbers only.

Flower SuperNodes run whatever ClientApp the SuperLink sends; this module is the
installed code that every ClientApp calls, so the site's policy is enforced here,
read from the site's own folder (``<home>/sites/<site>/site.toml``).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, MindcommonsError, PolicyError, PrerequisiteError
from mindcommons.governance import EventKind, record_event
from mindcommons.governance.jobcheck import check_job
from mindcommons.policy import (
    allowed_jobs,
    read_site_policy,
    site_secret,
)
from mindcommons.registry import Registry, import_providers
from mindcommons.settings import Settings, load_settings, validate_site_name

PERSON_TABLES = frozenset({"participant", "document", "measure", "signal", "outcome"})

JobHandler = Callable[[str, Settings, dict[str, Any]], dict[str, Any]]
JOB_TYPES: Registry[JobHandler] = Registry("job type")


def release_floor(site: str, settings: Settings, job: dict[str, Any]) -> int:
    """The site's minimum n, raised (never lowered) by what the job asks."""
    floor = read_site_policy(settings.site_dir(site)).min_release_n
    asked = int(job.get("min_n", 0) or 0)
    return max(floor, asked)


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
    """Run one job at ``site``; return ``{"site", "status", "reason", "seconds", "payload"}``.

    ``status`` is "ok", "refused" (policy) or "error"; ``payload`` holds only numbers.
    Errors are reported by kind only: a traceback could quote site data. Every job is
    recorded in the site's audit log first; if the log refuses, nothing is released.
    """
    validate_site_name(site)
    settings = load_settings(home)
    reply = _run(site, settings, job)
    kind = str(job.get("job", ""))
    event = {"ok": EventKind.RELEASE, "refused": EventKind.JOB_REFUSED}.get(
        reply["status"], EventKind.JOB
    )
    details: dict[str, Any] = {"job": kind[:100], "status": reply["status"]}
    details["project"] = str(job.get("project") or "local")[:100]
    details["seconds"] = reply["seconds"]
    if reply["reason"]:
        details["reason"] = str(reply["reason"])[:200]
    if reply["status"] == "ok":
        details["fields_released"] = len(reply["payload"])
    try:
        record_event(
            settings.site_dir(site),
            event,
            actor=f"coordinator:{str(job.get('run_id', '?'))[:80]}",
            subject=f"job:{kind[:100]}",
            details=details,
        )
    except MindcommonsError as err:
        return _reply(site, "error", f"audit log refused at {site}: {err}", time.perf_counter())
    return reply


def _run(site: str, settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    kind = str(job.get("job", ""))
    site_dir = settings.site_dir(site)
    started = time.perf_counter()
    try:
        if kind not in allowed_jobs(site_dir):
            raise PolicyError(f"refused: job type '{kind}' not allowed at {site}")
        check_job(settings, site, job)  # project approved here; purpose in every consent
        handler = JOB_TYPES.get(kind)
        payload = numeric_payload(handler(site, settings, job))
    except PolicyError as err:
        return _reply(site, "refused", str(err), started)
    except (ConfigError, PrerequisiteError) as err:  # about settings, never about data
        _log_locally(site_dir, kind)
        return _reply(site, "error", f"error at {site}: {err}", started)
    except Exception as err:  # a message or traceback could quote data: send the kind only
        _log_locally(site_dir, kind)
        reason = f"{type(err).__name__} at {site} (details in the site's logs/jobs.log)"
        return _reply(site, "error", reason, started)
    return _reply(site, "ok", "", started, payload)


def _log_locally(site_dir: Path, kind: str) -> None:
    """Keep the full traceback in the site's own folder."""
    logs = site_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "jobs.log").open("a", encoding="utf-8") as out:
        out.write(f"--- job '{kind}' failed at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        out.write(traceback.format_exc())


def _reply(
    site: str, status: str, reason: str, started: float, payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    seconds = round(time.perf_counter() - started, 3)
    return {
        "site": site, "status": status, "reason": reason, "seconds": seconds,
        "payload": payload or {},
    }  # fmt: skip


@JOB_TYPES.register("count")
def _count_job(site: str, settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """How many records of each kind the site holds (cheap; used to test the mechanics)."""
    from mindcommons.repository import SiteRepository

    hold = float(job.get("hold_seconds", 0) or 0)
    if hold > 0:  # simulate a long job (used to test site dropouts)
        time.sleep(min(hold, 600.0))
    with SiteRepository.for_site(settings, site) as repo:
        counts = repo.counts()
    floor = release_floor(site, settings, job)
    out: dict[str, Any] = {}
    for kind, n in counts.items():
        if kind in PERSON_TABLES and 0 < n < floor:
            out[f"{kind}_suppressed"] = 1  # a small cell never leaves the site
        else:
            out[kind] = int(n)
    return out


def model_options(job: dict[str, Any]) -> dict[str, Any]:
    """Backend options carried by a job (only those set)."""
    base_url = str(job.get("base_url", "") or "")
    return {"base_url": base_url} if base_url else {}


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
    with SiteRepository.for_site(settings, site) as repo:
        items = repo.eval_items(instrument=spec.instrument, limit=limit, seed=seed)
    floor = release_floor(site, settings, job)
    if len(items) < floor:  # refuse before spending compute on a result we cannot release
        raise PolicyError(
            f"suppressed: {site} has {len(items)} evaluable documents, under its minimum "
            f"of {floor} for any released statistic"
        )
    model = load_model(str(job.get("model", "embedded")), **model_options(job))
    log_dir = settings.site_dir(site) / "logs" / str(job.get("run_id", "run"))  # stays here
    try:
        results = tasks.run_local(task_name, items, model, log_dir=log_dir, seed=seed)
    finally:
        model.close()
    stats = metrics.site_stats(
        results,
        instrument=spec.instrument,
        n_boot=int(job.get("n_boot", 1000)),
        seed=metrics.site_seed(seed, site, secret=site_secret(settings.site_dir(site))),
    )
    payload: dict[str, Any] = stats.to_payload()
    metrics.assert_numeric_payload(payload)
    return payload


# Job types defined in other packages register themselves on import (they import this
# module for JOB_TYPES, so the imports stay at the end).
JOB_PROVIDERS = (
    "mindcommons.disclosure",
    "mindcommons.suite.site_job",
    "mindcommons.measure.federated",
    "mindcommons.lora.federated",
)


import_providers(JOB_PROVIDERS)

# ``secure-train``: a site's way to train only under secure aggregation (federation.secagg)
from mindcommons.federation.secagg import register_secure_job  # noqa: E402

register_secure_job()

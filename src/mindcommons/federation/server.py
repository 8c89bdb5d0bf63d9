"""Coordinator-side logic of a federated job: plan, collect site replies, pool, report.

Plain Python (no Flower import) so it can be tested and reused by the local mode; the
Flower ServerApp in ``server_app.py`` only moves messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError
from mindcommons.settings import Settings

JOB_KEYS = (
    "job", "task", "model", "base_url", "limit", "seed", "n_boot", "run_id", "hold_seconds",
    "by", "levels", "statistic", "epsilon", "project", "min_n", "params",
)  # fmt: skip
# Jobs added after the first release carry their own settings as one JSON object in
# ``params`` (see ``job_params``), so a new job type needs no new run-config keys.


@dataclass
class JobOutcome:
    """Everything the coordinator learned from one job round (numbers, names, reasons)."""

    run_id: str
    job: dict[str, Any]
    mode: str  # "federated" | "local"
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # site -> numbers
    missing: dict[str, str] = field(default_factory=dict)  # site -> reason
    site_seconds: dict[str, float] = field(default_factory=dict)  # site -> its own job time
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0

    def record_reply(self, reply: dict[str, Any]) -> None:
        site = str(reply.get("site", "?"))
        if isinstance(reply.get("seconds"), int | float):
            self.site_seconds[site] = float(reply["seconds"])
        if reply.get("status") == "ok":
            self.payloads[site] = dict(reply.get("payload", {}))
        else:
            self.missing[site] = str(reply.get("reason") or reply.get("status") or "failed")


def job_from_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The job message content from a Flower run config (keys with '-' become '_')."""
    flat = {str(k).replace("-", "_"): v for k, v in cfg.items()}
    return {k: flat[k] for k in JOB_KEYS if k in flat}


def job_params(job: dict[str, Any]) -> dict[str, Any]:
    """The job-specific settings of ``job`` (``params``: a dict or its JSON text)."""
    raw = job.get("params") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as err:
            raise ConfigError(f"job params are not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"job params must be a JSON object, not {type(raw).__name__}")
    return dict(raw)


def run_dir(settings: Settings, run_id: str) -> Path:
    return settings.reports_dir() / run_id


def finish(settings: Settings, outcome: JobOutcome) -> Path:
    """Pool (for evaluation jobs), write the report and ``result.json``; return result.json."""
    out = run_dir(settings, outcome.run_id)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "run_id": outcome.run_id,
        "mode": outcome.mode,
        "job": outcome.job,
        "started": outcome.started,
        "seconds": round(outcome.seconds, 3),
        "sites_ok": sorted(outcome.payloads),
        "missing": dict(sorted(outcome.missing.items())),
        "site_seconds": dict(sorted(outcome.site_seconds.items())),
        "report": None,
    }
    if outcome.job.get("job") == "evaluate" and outcome.payloads:
        result["report"] = str(_write_eval_report(settings, outcome, out))
    else:
        result["payloads"] = outcome.payloads
    path = out / "result.json"
    # written whole then renamed: run_job polls for this file and must never read half of it
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def describe_model(job: dict[str, Any]) -> dict[str, str]:
    """Model identity for the report, from the coordinator's own copy (no site data)."""
    from mindcommons.federation.site import model_options
    from mindcommons.models import load_model

    spec = str(job.get("model", "embedded"))
    try:
        model = load_model(spec, **model_options(job))
    except Exception as err:  # the coordinator may lack the model file; sites still ran it
        return {"spec": spec, "note": f"not described here ({type(err).__name__})"}
    try:
        return {"spec": spec, **model.describe()}
    finally:
        model.close()


def _write_eval_report(settings: Settings, outcome: JobOutcome, out: Path) -> Path:
    from mindcommons import metrics, report, tasks

    stats = {site: metrics.SiteStats.from_payload(p) for site, p in outcome.payloads.items()}
    pooled = metrics.pool(stats)
    task = str(outcome.job.get("task", "phq9"))
    info = report.RunInfo(
        run_id=outcome.run_id,
        task=task,
        instrument=tasks.TASKS.get(task).instrument,
        mode="local" if outcome.mode == "local" else "federated",
        model=describe_model(outcome.job),
        sites_requested=sorted({*outcome.payloads, *outcome.missing}),
        sites_missing=dict(sorted(outcome.missing.items())),
        started=outcome.started,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_seconds=round(outcome.seconds, 3),
        limit_per_site=int(outcome.job.get("limit", 0) or 0) or None,
        seed=int(outcome.job.get("seed", 0) or 0),
    )
    path: Path = report.write_report(info, pooled, out)
    return path


def read_result(settings: Settings, run_id: str) -> dict[str, Any] | None:
    path = run_dir(settings, run_id) / "result.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data

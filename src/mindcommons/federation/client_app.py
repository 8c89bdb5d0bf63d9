"""Flower ClientApp: a thin door into the installed site logic (``federation.site``).

It answers only inside the site's gate (``federation.gate``), which has checked the
app bundle against the site's approved list; started any other way (a stock
``flwr-clientapp`` that imported it by name from some bundle) it refuses every job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from mindcommons.federation.gate import verified_bundle
from mindcommons.federation.site import run_site_job

app = ClientApp()


def _site(context: Any) -> tuple[str, Path]:
    cfg = context.node_config
    return str(cfg["site"]), Path(str(cfg["home"]))


@app.query("site")
def site_name(message: Message, context: Any) -> Message:
    site, _ = _site(context)
    return Message(RecordDict({"site": ConfigRecord({"site": site})}), reply_to=message)


def _ungated(site: str, home: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Refuse (and audit) a job that did not come through the site's gate."""
    from mindcommons.governance import EventKind, record_event
    from mindcommons.settings import load_settings

    reason = f"refused: {site} runs jobs only through its gate (mindcommons federation join)"
    record_event(
        load_settings(home).site_dir(site), EventKind.JOB_REFUSED,
        actor=f"coordinator:{str(job.get('run_id', '?'))[:80]}",
        subject=f"job:{str(job.get('job', ''))[:100]}", details={"reason": reason},
    )  # fmt: skip
    return {"site": site, "status": "refused", "reason": reason, "seconds": 0.0, "payload": {}}


def _job_reply(message: Message, context: Any) -> Message:
    site, home = _site(context)
    job = dict(message.content["job"]) if "job" in message.content else {}
    gated = verified_bundle() is not None
    out = run_site_job(site, home, job) if gated else _ungated(site, home, job)
    meta = ConfigRecord(
        {"site": site, "status": out["status"], "reason": out["reason"], "seconds": out["seconds"]}
    )
    return Message(
        RecordDict({"reply": meta, "metrics": MetricRecord(out["payload"])}), reply_to=message
    )


@app.query("job")
def query_job(message: Message, context: Any) -> Message:
    return _job_reply(message, context)


@app.evaluate()
def evaluate_job(message: Message, context: Any) -> Message:
    return _job_reply(message, context)

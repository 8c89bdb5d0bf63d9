"""Flower ClientApp: a thin door into the installed site logic (``federation.site``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from mindcommons.federation.site import run_site_job

app = ClientApp()


def _site(context: Any) -> tuple[str, Path]:
    cfg = context.node_config
    return str(cfg["site"]), Path(str(cfg["home"]))


@app.query("site")
def site_name(message: Message, context: Any) -> Message:
    site, _ = _site(context)
    return Message(RecordDict({"site": ConfigRecord({"site": site})}), reply_to=message)


def _job_reply(message: Message, context: Any) -> Message:
    site, home = _site(context)
    job = dict(message.content["job"]) if "job" in message.content else {}
    out = run_site_job(site, home, job)
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

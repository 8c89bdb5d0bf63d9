"""Flower ServerApp: ask nodes for their site, send each site the job, collect, report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from mindcommons.federation.launcher import node_cache_path
from mindcommons.federation.server import JobOutcome, finish, job_from_config
from mindcommons.settings import load_settings

app = ServerApp()


def _dump(path: str, kind: str, msg: Message) -> None:
    """Append everything a reply carried to the debug dump (used by the privacy test)."""
    if not path:
        return
    entry: dict[str, Any] = {"kind": kind, "src": msg.metadata.src_node_id}
    if msg.has_error():
        entry["error"] = {"code": msg.error.code, "reason": msg.error.reason}
    else:
        entry["content"] = {name: dict(rec) for name, rec in msg.content.items()}
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, default=repr) + "\n")


def _short(reason: str | None) -> str:
    first = (reason or "").strip().splitlines()[-1:] or ["unknown"]
    return first[0][:200]


def _site_map(grid: Grid, cache: Path, timeout: float, dump: str) -> dict[int, str]:
    """node id -> site for the online nodes; ask only nodes not seen before (cached)."""
    known: dict[int, str] = {}
    if cache.exists():
        known = {int(k): str(v) for k, v in json.loads(cache.read_text("utf-8")).items()}
    nodes = list(grid.get_node_ids())
    new = [n for n in nodes if n not in known]
    if new:
        known.update(_ask_sites(grid, new, timeout, dump))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({str(k): v for k, v in known.items()}), "utf-8")
    return {n: known[n] for n in nodes if n in known}


def _ask_sites(grid: Grid, nodes: list[int], timeout: float, dump: str) -> dict[int, str]:
    msgs = [
        Message(RecordDict({"ask": ConfigRecord({"what": "site"})}), dst_node_id=n,
                message_type="query.site")
        for n in nodes
    ]  # fmt: skip
    found: dict[int, str] = {}
    replies = list(grid.send_and_receive(msgs, timeout=timeout))
    for reply in replies:
        _dump(dump, "site", reply)
        if not reply.has_error() and "site" in reply.content:
            found[_origin(reply, msgs)] = str(reply.content["site"]["site"])
    return found


def _origin(reply: Message, sent: list[Message]) -> int:
    """The node a reply answers for (an error reply may come from the SuperLink itself)."""
    for msg in sent:
        if msg.metadata.message_id == reply.metadata.reply_to_message_id:
            return int(msg.metadata.dst_node_id)
    return int(reply.metadata.src_node_id)


@app.main()
def main(grid: Grid, context: Any) -> None:
    cfg = dict(context.run_config)
    t0 = time.perf_counter()
    settings = load_settings(Path(str(cfg["home"]))) if cfg.get("home") else load_settings()
    job = job_from_config(cfg)
    run_id = str(job.get("run_id") or f"run-{int(time.time())}")
    job["run_id"] = run_id
    outcome = JobOutcome(run_id=run_id, job=job, mode="federated")
    dump = str(cfg.get("debug-dump", ""))
    wanted = [s for s in str(cfg.get("sites", "")).split(",") if s]
    q_timeout = float(cfg.get("query-timeout", 60.0))
    timeout = float(cfg.get("timeout", 600.0))

    site_of = _site_map(grid, node_cache_path(settings), q_timeout, dump)
    chosen = {n: s for n, s in site_of.items() if not wanted or s in wanted}
    for site in wanted:
        if site not in chosen.values():
            outcome.missing[site] = f"no reply within {q_timeout:.0f} s (site not connected)"
    print(f"[mindcommons] run {run_id}: job '{job.get('job')}' -> {sorted(chosen.values())}")

    msg_type = "evaluate" if job.get("job") == "evaluate" else "query.job"
    msgs = [
        Message(RecordDict({"job": ConfigRecord(dict(job))}), dst_node_id=n,
                message_type=msg_type, ttl=timeout + 60.0)
        for n in chosen
    ]  # fmt: skip
    replied: set[int] = set()
    for reply in list(grid.send_and_receive(msgs, timeout=timeout)):
        _dump(dump, "job", reply)
        node = _origin(reply, msgs)
        replied.add(node)
        site = chosen.get(node, f"node-{node}")
        if reply.has_error():
            outcome.missing[site] = f"error: {_short(reply.error.reason)}"
            continue
        meta = dict(reply.content["reply"]) if "reply" in reply.content else {}
        payload = dict(reply.content["metrics"]) if "metrics" in reply.content else {}
        outcome.record_reply({**meta, "site": site, "payload": payload})
        print(f"[mindcommons] {site}: {meta.get('status')!s} {meta.get('reason', '')!s}".rstrip())
    for node, site in chosen.items():
        if node not in replied:
            outcome.missing[site] = f"no reply within {timeout:.0f} s"
            print(f"[mindcommons] {site}: no reply within {timeout:.0f} s")
    outcome.seconds = time.perf_counter() - t0
    path = finish(settings, outcome)
    print(f"[mindcommons] result {path}")

"""Flower ServerApp: ask nodes for their site, send each site the job, collect, report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from mindcommons.errors import ConfigError
from mindcommons.federation.launcher import node_cache_path
from mindcommons.federation.server import JobOutcome, finish, job_from_config
from mindcommons.settings import load_settings

app = ServerApp()


def _dump(path: str, kind: str, msg: Message) -> None:
    """Append everything a reply carried to the debug dump (used by the privacy test)."""
    if not path:
        return
    entry: dict[str, Any] = {"kind": kind, "src": msg.metadata.src_node_id,
                             "dst": msg.metadata.dst_node_id}  # fmt: skip
    if msg.has_error():
        entry["error"] = {"code": msg.error.code, "reason": msg.error.reason}
    else:
        entry["content"] = {name: dict(rec) for name, rec in msg.content.items()}
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    """JSON form of record values: bytes and arrays as base64 (the dump shows everything)."""
    import base64

    from flwr.app import Array

    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, Array):
        return {"dtype": value.dtype, "shape": list(value.shape),
                "b64": base64.b64encode(value.data).decode()}  # fmt: skip
    return repr(value)


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

    if job.get("job") == "train":  # multi-round: weights go out and come back each round
        send = flower_send(grid, job, dump)
        summary = run_training(send, settings, job, chosen, outcome, timeout)
        outcome.seconds = time.perf_counter() - t0
        path = finish(settings, outcome)
        result = json.loads(path.read_text(encoding="utf-8"))
        result["training"] = summary
        result["sites_ok"] = summary.get("sites", [])
        path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str), "utf-8")
        print(f"[mindcommons] result {path}")
        return

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


# ---------------------------------------------------------------- multi-round training


def _send_round(
    grid: Grid,
    chosen: dict[int, str],
    job: dict[str, Any],
    params: dict[str, Any],
    weights: list[Any] | None,
    timeout: float,
    dump: str,
) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, float]]:
    """One message to every chosen site; returns (site -> payload, site -> reason, bytes).

    The global weights go out, and each site's weights come back, as an ``ArrayRecord``
    (``weights``); replies of older sites with ``weights.*`` number fields still work.
    """
    from mindcommons.federation.training import (
        split_weights,
        weights_from_arrays,
        weights_to_arrays,
    )

    body: dict[str, Any] = {**job, "params": json.dumps(params, sort_keys=True)}
    msgs = []
    for node in chosen:
        content = RecordDict({"job": ConfigRecord(dict(body))})
        if weights is not None:
            content["weights"] = weights_to_arrays(weights)
        msgs.append(Message(content, dst_node_id=node, message_type="query.job",
                            ttl=timeout + 60.0))  # fmt: skip
    sent = sum(_nbytes(m.content) for m in msgs)
    ok: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    received = 0
    replied: set[int] = set()
    for reply in list(grid.send_and_receive(msgs, timeout=timeout)):
        _dump(dump, "train", reply)
        node = _origin(reply, msgs)
        replied.add(node)
        site = chosen.get(node, f"node-{node}")
        if reply.has_error():
            failed[site] = f"error: {_short(reply.error.reason)}"
            continue
        received += _nbytes(reply.content)
        meta = dict(reply.content["reply"]) if "reply" in reply.content else {}
        if meta.get("status") != "ok":
            failed[site] = str(meta.get("reason") or meta.get("status") or "failed")
            continue
        payload: dict[str, Any] = (
            dict(reply.content["metrics"]) if "metrics" in reply.content else {}
        )
        returned, payload = split_weights(payload)
        if "weights" in reply.content:
            returned = weights_from_arrays(reply.content["weights"])
        if returned:
            payload["__weights__"] = returned
        payload["__seconds__"] = float(str(meta.get("seconds", 0.0)))
        ok[site] = payload
    for node, site in chosen.items():
        if node not in replied:
            failed[site] = f"no reply within {timeout:.0f} s"
    return ok, failed, {"bytes_sent": float(sent), "bytes_received": float(received)}


def _nbytes(content: RecordDict) -> int:
    """Payload bytes of a message's records: 8 per number, bytes and text by length.

    (Flower's own ``count_bytes`` rejects list values in a ``ConfigRecord``.)
    """

    from flwr.app import Array

    def size(value: Any) -> int:
        if isinstance(value, bytes):
            return len(value)
        if isinstance(value, Array):
            return len(value.data)
        if isinstance(value, str):
            return len(value.encode())
        if isinstance(value, list):
            return sum(size(v) for v in value)
        return 8

    total = 0
    for record in content.values():
        total += sum(len(str(k)) + size(v) for k, v in dict(record).items())
    return total


def _validation(
    trainer: Any, replies: dict[str, dict[str, Any]], params: dict[str, Any]
) -> dict[str, float]:
    """Pooled validation statistics of the weights the sites received (numbers only)."""
    from mindcommons.federation.training import ArtifactWriter, pool_sums

    stats = [
        {k[4:]: float(v) for k, v in p.items() if k.startswith("val.")} for p in replies.values()
    ]
    pooled = pool_sums([s for s in stats if s])
    n = pooled.get("n_examples", 0.0)
    if n <= 0:
        return {}
    out = {"loss": pooled.get("loss_sum", 0.0) / n, "n": n}
    if isinstance(trainer, ArtifactWriter):
        out.update(trainer.summarize(pooled, params))
    return out


def _better(metric: str, new: dict[str, float], best: dict[str, float] | None) -> bool:
    if not new or metric not in new:
        return False
    if best is None or metric not in best:
        return True
    return new[metric] < best[metric] if metric == "loss" else new[metric] > best[metric]


RoundReplies = tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, float]]
Send = Callable[[dict[int, str], dict[str, Any], "list[Any] | None", float], RoundReplies]


def flower_send(grid: Grid, job: dict[str, Any], dump: str) -> Send:
    """Rounds travel as Flower messages to the chosen SuperNodes.

    With ``params["secure_aggregation"]`` the fit rounds run Flower's SecAgg+ protocol
    (``federation.secagg``); describe and evaluate rounds carry no site weights and stay
    one plain message per site.
    """
    from mindcommons.federation.secagg import secagg_settings, secure_round

    def send(
        chosen: dict[int, str], params: dict[str, Any], weights: list[Any] | None, timeout: float
    ) -> RoundReplies:
        secure = secagg_settings(params)
        if secure is not None and params.get("phase") == "fit" and weights is not None:
            body = {**job, "params": json.dumps(params, sort_keys=True)}
            return secure_round(grid, chosen, body, weights, secure, timeout,
                                lambda kind, msg: _dump(dump, kind, msg),
                                server_round=int(params.get("round", 1)))  # fmt: skip
        return _send_round(grid, chosen, job, params, weights, timeout, dump)

    return send


def local_send(settings: Any, job: dict[str, Any]) -> Send:
    """Rounds run in this process through each site's own guard (``run_site_job``).

    Same site code, policy and numbers-only check as the federation, without Flower's
    transport; used by benchmarks to compare many rounds quickly.
    """
    from mindcommons.federation.secagg import PARAM, secagg_settings
    from mindcommons.federation.site import run_site_job
    from mindcommons.federation.training import split_weights, weights_to_config

    def send(
        chosen: dict[int, str], params: dict[str, Any], weights: list[Any] | None, timeout: float
    ) -> RoundReplies:
        if secagg_settings(params) is not None:
            raise ConfigError(
                f"training params '{PARAM}' needs the Flower transport (a running "
                "federation); the in-process rounds would see every site's weights"
            )
        body: dict[str, Any] = {**job, "params": json.dumps(params, sort_keys=True)}
        if weights is not None:
            body.update(weights_to_config(weights))
        sent = sum(len(v) if isinstance(v, bytes) else 8 for v in body.values()) * len(chosen)
        ok: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        received = 0
        for site in chosen.values():
            out = run_site_job(site, settings.resolved_home(), dict(body))
            if out["status"] != "ok":
                failed[site] = str(out["reason"])
                continue
            payload = dict(out["payload"])
            received += sum(8 * len(v) if isinstance(v, list) else 8 for v in payload.values())
            returned, payload = split_weights(payload)
            if returned:
                payload["__weights__"] = returned
            payload["__seconds__"] = float(out["seconds"])
            ok[site] = payload
        return ok, failed, {"bytes_sent": float(sent), "bytes_received": float(received)}

    return send


def run_training(
    send: Send,
    settings: Any,
    job: dict[str, Any],
    chosen: dict[int, str],
    outcome: JobOutcome,
    timeout: float,
) -> dict[str, Any]:
    """Rounds of local training and aggregation for any registered Trainer.

    Round 0 asks each site to describe its data (counts under its floor). Every round
    sends the global weights; each site validates them (statistics only), trains from
    them (FedProx: a proximal term, ``mu``) and returns new weights; the coordinator
    averages them weighted by examples (FedAvg) and steps from the average with its
    optimizer (``server_optimizer``: ``sgd`` with ``server_momentum`` = FedAvgM, or
    ``adam`` = FedAdam, which with one full-batch local SGD step is full-batch Adam on
    the union of the sites' data). With ``dp`` the noise multiplier is set
    here from the target epsilon for the largest number of rounds, and the epsilon spent
    is reported. Training stops early when the pooled validation metric has not improved
    for ``patience`` rounds; the best weights are kept and saved by the Trainer (with
    ``keep = "last"``: all rounds run and the last weights are saved; validation is still
    reported every round).
    """
    import mindcommons.federation.site  # noqa: F401  (registers the job providers' trainers)
    from mindcommons.federation.secagg import (
        AGGREGATE_KEY,
        PARAM,
        describe_summary,
        secagg_settings,
        settings_param,
    )
    from mindcommons.federation.server import job_params
    from mindcommons.federation.training import (
        SERVER_OPTIMIZERS,
        TRAINERS,
        ArtifactWriter,
        fedavg,
        server_adam,
        server_step,
    )
    from mindcommons.measure.privacy import epsilon_for, noise_for

    started = time.perf_counter()
    deadline = started + timeout
    params = job_params(job)
    trainer = TRAINERS.get(str(params.get("trainer", "measure")))
    rounds = max(1, int(params.get("rounds", 3)))
    patience = max(1, int(params.get("patience", 3)))
    keep = str(params.get("keep", "best"))  # "last": no early stopping, save the last round
    if keep not in ("best", "last"):
        raise ConfigError(f"unknown keep '{keep}' (expected best or last)")
    metric = str(params.get("stop_metric", "macro_f1" if isinstance(trainer, ArtifactWriter)
                            else "loss"))  # fmt: skip
    # a metric the validation never reports falls back to the loss (always reported)
    dp = dict(params.get("dp") or {})
    if dp:
        steps = int(dp.get("steps", 10))
        delta = float(dp.get("delta", 1e-5))
        dp["noise_multiplier"] = noise_for(float(dp["epsilon"]), rounds * steps, delta)
        dp["steps"] = steps
        params["dp"] = dp
    summary: dict[str, Any] = {"trainer": trainer.name, "rounds_max": rounds,
                               "strategy": params.get("strategy", "fedavg"),
                               "mu": float(params.get("mu", 0.0)), "history": []}  # fmt: skip

    summary["stop_metric_requested"] = metric
    secure = secagg_settings(params)

    def left() -> float:
        return max(5.0, deadline - time.perf_counter())

    # round 0: describe (label counts that respect each site's floor)
    described, failed, _ = send(chosen, {**params, "phase": "describe"}, None, left())
    outcome.missing.update(failed)
    active = {n: s for n, s in chosen.items() if s in described}
    counts: dict[str, dict[str, float]] = {}
    site_counts: dict[str, dict[str, float]] = {}
    for site, payload in described.items():
        clean = {k: float(v) for k, v in payload.items() if not k.startswith("__")}
        site_counts[site] = clean
        for key, value in clean.items():
            if key.startswith("count.") and not key.endswith(".suppressed"):
                out_key, _, label = key[6:].rpartition("=")
                per = counts.setdefault(out_key, {})
                per[label] = per.get(label, 0.0) + value
    summary["site_data"] = site_counts
    if counts and "label_counts" not in params:
        params["label_counts"] = _ordered_counts(trainer, params, counts)
    if not active:
        summary["stopped"] = "no site can train"
        return summary
    if secure is not None:  # weights: n_examples / max_weight <= 1 keeps updates in range
        if secure.max_weight <= 0:
            n_train = [float(site_counts[s].get("n_train", 0)) for s in active.values()]
            total = sum(n_train) if all(n > 0 for n in n_train) else 0.0
            secure = replace(secure, max_weight=total or 1000.0)
        params[PARAM] = settings_param(secure)
        summary["secure_aggregation"] = describe_summary(secure, len(active))

    weights = trainer.initial_weights(params)
    best: dict[str, float] | None = None
    best_weights = weights
    best_round = 0
    since = 0
    dp_steps_done = 0
    # the server optimizer: "sgd" = FedAvgM (server_lr, server_momentum; default lr 1 and
    # momentum 0, plain FedAvg) or "adam" = FedAdam (server_lr, server_weight_decay)
    server_opt = str(params.get("server_optimizer", "sgd"))
    if server_opt not in SERVER_OPTIMIZERS:
        raise ConfigError(f"unknown server_optimizer '{server_opt}' "
                         f"(expected {', '.join(SERVER_OPTIMIZERS)})")  # fmt: skip
    server_state: Any = None  # FedAvgM's velocity or FedAdam's moments
    server_lr = float(params.get("server_lr", 1.0))
    server_momentum = float(params.get("server_momentum", 0.0))
    server_wd = float(params.get("server_weight_decay", 0.0))
    summary["server_optimizer"] = (
        {"name": "adam", "lr": server_lr, "weight_decay": server_wd} if server_opt == "adam"
        else {"name": "sgd", "lr": server_lr, "momentum": server_momentum}
    )  # fmt: skip
    r = 0
    for r in range(1, rounds + 1):
        t0 = time.perf_counter()
        replies, failed, traffic = send(active, {**params, "phase": "fit", "round": r}, weights,
                                        left())  # fmt: skip
        for site, reason in failed.items():
            outcome.missing[site] = f"round {r}: {reason}"
        val = _validation(trainer, replies, params)
        if val and metric not in val:
            metric = "loss"
        fitted = [(p["__weights__"], int(p.get("n_examples", 0))) for p in replies.values()
                  if "__weights__" in p and int(p.get("n_examples", 0)) > 0]  # fmt: skip
        secured = [p[AGGREGATE_KEY] for p in replies.values() if AGGREGATE_KEY in p]
        entry: dict[str, Any] = {"round": r, "validation_of_round": r - 1, "validation": val,
                                 "sites": sorted(replies), **traffic}  # fmt: skip
        if _better(metric, val, best):
            best, best_weights, best_round, since = val, weights, r - 1, 0
        elif val:
            since += 1
        if not fitted and not secured:
            entry["seconds"] = round(time.perf_counter() - t0, 3)
            summary["history"].append(entry)
            summary["stopped"] = f"round {r}: no site returned weights"
            break
        # secure aggregation: only the weighted average of the updates reached us
        averaged = secured[0] if secured else fedavg(fitted)
        if server_opt == "adam":
            weights, server_state = server_adam(weights, averaged, server_state, server_lr,
                                                server_wd)  # fmt: skip
        else:
            weights, server_state = server_step(weights, averaged, server_state, server_lr,
                                                server_momentum)  # fmt: skip
        if dp:
            dp_steps_done += int(dp["steps"])
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        entry["site_seconds"] = {s: p["__seconds__"] for s, p in replies.items()}
        summary["history"].append(entry)
        print(f"[mindcommons] round {r}: validation {metric} of round {r - 1}: "
              f"{val.get(metric, float('nan')):.4f} "
              f"({len(replies) if secured else len(fitted)} site(s))")  # fmt: skip
        if since >= patience and keep == "best":
            summary["stopped"] = f"early stop after round {r} (no improvement in {patience})"
            break
    # validate the last aggregate too
    replies, failed, traffic = send(active, {**params, "phase": "evaluate", "round": r + 1},
                                    weights, left())  # fmt: skip
    val = _validation(trainer, replies, params)
    summary["history"].append({"round": r + 1, "validation_of_round": r, "validation": val,
                               "sites": sorted(replies), **traffic})  # fmt: skip
    if _better(metric, val, best) or keep == "last":
        best, best_weights, best_round = val, weights, r
    summary.update(keep=keep, rounds_run=r, best_round=best_round, best_validation=best or {},
                   stop_metric=metric, seconds=round(time.perf_counter() - started, 3),
                   sites=sorted(active.values()))  # fmt: skip
    if dp:
        eps = epsilon_for(float(dp["noise_multiplier"]), dp_steps_done, float(dp["delta"]))
        summary["dp"] = {"target_epsilon": float(dp["epsilon"]), "epsilon_spent": eps,
                         "delta": float(dp["delta"]), "clip": float(dp.get("clip", 1.0)),
                         "noise_multiplier": float(dp["noise_multiplier"]),
                         "steps_per_site": dp_steps_done, "unit": "one training example",
                         "accountant": "exact Gaussian DP (measure.privacy)"}  # fmt: skip
    if isinstance(trainer, ArtifactWriter):
        summary["artifact"] = trainer.save_artifact(settings, best_weights, params, summary)
    return summary


def _ordered_counts(
    trainer: Any, params: dict[str, Any], counts: dict[str, dict[str, float]]
) -> dict[str, list[float]]:
    """Label counts in each output's label order (for balanced class weights)."""
    from mindcommons.measure.kinds import MEASURES

    kind = str(params.get("kind", ""))
    if kind not in MEASURES:
        return {}
    out: dict[str, list[float]] = {}
    for o in MEASURES.get(kind).outputs:
        if o.key in counts:
            out[o.key] = [float(counts[o.key].get(label, 0.0)) for label in o.labels]
    return out

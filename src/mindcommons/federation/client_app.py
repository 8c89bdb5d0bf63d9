"""Flower ClientApp: a thin door into the installed site logic (``federation.site``).

It answers only inside the site's gate (``federation.gate``), which has checked the
app bundle against the site's approved list; started any other way (a stock
``flwr-clientapp`` that imported it by name from some bundle) it refuses every job.

Training weights travel as ``ArrayRecord``s (``weights``); the ``train`` handler is the
site's side of secure aggregation (Flower's ``secaggplus_mod``, see ``federation.secagg``):
only a masked, quantised update leaves the site there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp

from mindcommons.errors import ConfigError, PolicyError
from mindcommons.federation.gate import verified_bundle
from mindcommons.federation.secagg import (
    harden_flower_secagg,
    masking,
    mod_state,
    site_job_kind,
    site_update,
)
from mindcommons.federation.training import (
    WEIGHTS_KEY,
    split_weights,
    weights_from_arrays,
    weights_to_arrays,
    weights_to_config,
)

harden_flower_secagg()  # full-entropy mask generator (see federation.secagg)
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


def _run(site: str, home: Path, job: dict[str, Any]) -> dict[str, Any]:
    # imported here: the key-exchange stages of secure aggregation never load the jobs
    from mindcommons.federation.site import run_site_job
    from mindcommons.settings import load_settings

    if verified_bundle() is None:
        return _ungated(site, home, job)
    # the site's own allowlist may require secure aggregation for training (secure-train)
    job = site_job_kind(load_settings(home).site_dir(site), job)
    return run_site_job(site, home, job)


def _meta(site: str, out: dict[str, Any]) -> ConfigRecord:
    return ConfigRecord(
        {"site": site, "status": out["status"], "reason": out["reason"], "seconds": out["seconds"]}
    )


def _job_reply(message: Message, context: Any) -> Message:
    site, home = _site(context)
    job = dict(message.content["job"]) if "job" in message.content else {}
    if "weights" in message.content:  # global weights of a training round
        job.update(weights_to_config(weights_from_arrays(message.content["weights"])))
    out = _run(site, home, job)
    numbers = out["payload"]
    weights: list[Any] = []
    if f"{WEIGHTS_KEY}0.shape" in numbers:  # a Trainer's weights: an ArrayRecord (float32)
        weights, numbers = split_weights(numbers)
    content = RecordDict({"reply": _meta(site, out), "metrics": MetricRecord(numbers)})
    if weights:
        content["weights"] = weights_to_arrays(weights)
    return Message(content, reply_to=message)


@app.query("job")
def query_job(message: Message, context: Any) -> Message:
    return _job_reply(message, context)


@app.evaluate()
def evaluate_job(message: Message, context: Any) -> Message:
    return _job_reply(message, context)


@app.train(mods=[secaggplus_mod])
def train_secure(message: Message, context: Any) -> Message:
    """A secure-aggregation fit round: the mod masks what this returns before it leaves.

    Flower's ``secaggplus_mod`` runs the protocol's key stages itself and calls this only
    in its "collect masked vectors" stage; it multiplies the returned update by
    ``n_examples / max_weight``, quantises and masks it, and clears the ``ArrayRecord``
    before the reply leaves. A refused or failed job raises: the site then counts as
    dropped and sends no vector at all.
    """
    from flwr.common import FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.common.typing import Code
    from flwr.compat.common import recorddict_compat as compat

    site, home = _site(context)
    fit_ins = compat.recorddict_to_fitins(message.content, keep_input=True)
    job: dict[str, Any] = dict(fit_ins.config)
    global_weights = [np.asarray(a, dtype=np.float32)
                      for a in parameters_to_ndarrays(fit_ins.parameters)]  # fmt: skip
    job.update(weights_to_config(global_weights))
    with masking():  # what this fit returns leaves only through secaggplus_mod's mask
        out = _run(site, home, job)
    if out["status"] != "ok":
        raise PolicyError(str(out["reason"]) or f"{out['status']} at {site}")
    trained, numbers = split_weights(out["payload"])
    n = int(numbers.get("n_examples", 0))
    if not trained or n <= 0:
        raise ConfigError(f"secure aggregation at {site}: the train job returned no weights")
    state = mod_state(context)
    update = site_update(trained, global_weights, n, float(state.get("clipping_range", 8.0)),
                         float(state.get("max_weight", 0.0)))  # fmt: skip
    fit_res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(update), n, {})
    content = compat.fitres_to_recorddict(fit_res, keep_input=False)
    content["reply"] = _meta(site, out)
    content["metrics"] = MetricRecord(numbers)
    return Message(content, reply_to=message)

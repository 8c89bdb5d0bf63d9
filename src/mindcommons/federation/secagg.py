"""Secure aggregation of training rounds with Flower's SecAgg+ (opt-in per training job).

With ``params["secure_aggregation"]`` set, every ``fit`` round of a training job runs
Flower's SecAgg+ protocol (``flwr.server.workflow.SecAggPlusWorkflow`` at the
coordinator, ``flwr.client.mod.secaggplus_mod`` on the site's ClientApp ``train``
handler) instead of one plain message per site:

1. *setup*: each site makes two fresh key pairs and returns the public keys;
2. *share keys*: each site splits its mask seed and first private key into Shamir shares
   and sends them to the other sites, encrypted with ECDH-agreed keys (the coordinator
   only relays ciphertexts);
3. *collect masked vectors*: the site's installed ClientApp runs the ``train`` job
   through the site's own guard (``site.run_site_job``: policy, project, floor, audit
   log); its update (new weights minus the global weights, plus a check element of 1),
   multiplied by ``n_examples / max_weight``, is quantised to integers, and a private
   mask and pairwise masks (one per other site, cancelling in the sum) are added mod
   ``modulus_range``; only that masked vector leaves the site;
4. *unmask*: sites send the shares the coordinator needs to remove the masks of the sum.

The coordinator learns the weighted average of the updates, not any single site's
update. Validation statistics and ``n_examples`` still travel in plain, as in every
training round (they are released under the site's floor).

Flower 1.42's SecAgg+ expands each mask seed with ``numpy.random.RandomState`` after
folding the seed to 32 bits (flwrlabs/flower#7522), which a coordinator could search
exhaustively; ``harden_flower_secagg`` replaces that generator, in our own processes on
both sides, with a ChaCha20 keystream keyed by SHA-256 of the whole seed. A site and a
coordinator that disagree on the generator produce an aggregate whose check element is
not 1, and the round fails instead of training on garbage.

A site can insist on it: with ``secure-train`` instead of ``train`` in its
``allowed_jobs``, its installed ClientApp runs every training job as ``secure-train``,
whose ``fit`` phase runs only inside the masking handler; a plain ``fit`` round is refused
(and audit-logged) whatever the coordinator asks.

Threat model and limits: see ``docs/measurement.md`` (secure aggregation).
"""

from __future__ import annotations

import hashlib
import importlib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import ConfigError, PolicyError, PrerequisiteError

PARAM = "secure_aggregation"
SECURE_JOB = "secure-train"  # a site's allowlist entry: training only under secure aggregation
AGGREGATE_KEY = "__aggregate__"  # in a round's replies: the securely averaged weights
PRG_NAME = "ChaCha20(key=SHA-256(label || seed))"
_PRG_LABEL = b"mindcommons-secagg-prg-v1"
_FLWR_MODULES = (
    "flwr.client.mod.secure_aggregation.secaggplus_mod",
    "flwr.server.workflow.secure_aggregation.secaggplus_workflow",
)
CHECK_TOLERANCE = 1e-3


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class SecAggSettings:
    """Quantisation and masking settings (the defaults are Flower's)."""

    clip: float = 8.0  # each weighted update coordinate must lie in [-clip, clip]
    quantization_range: int = 2**22
    modulus_range: int = 2**32
    max_weight: float = 0.0  # 0: set by the coordinator from the sites' n_train

    def max_error(self, sites: int) -> float:
        """Worst-case absolute error of an averaged coordinate (stochastic rounding)."""
        step = 2 * self.clip / self.quantization_range
        return sites * step + 1e-6


def secagg_settings(params: Mapping[str, Any]) -> SecAggSettings | None:
    """The job's secure-aggregation settings; None when the job does not ask for it."""
    raw = params.get(PARAM)
    if raw is None or raw is False:
        return None
    if raw is True:
        return SecAggSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"training params field '{PARAM}' must be true/false or an object with "
            f"clip, quantization_range, modulus_range, max_weight (got {type(raw).__name__})"
        )
    known = {"clip", "quantization_range", "modulus_range", "max_weight"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"training params field '{PARAM}': unknown key(s) {', '.join(unknown)}")
    s = SecAggSettings(
        clip=float(raw.get("clip", 8.0)),
        quantization_range=int(raw.get("quantization_range", 2**22)),
        modulus_range=int(raw.get("modulus_range", 2**32)),
        max_weight=float(raw.get("max_weight", 0.0)),
    )
    if not s.clip > 0:
        raise ConfigError(f"training params field '{PARAM}.clip' must be > 0")
    if not 0 < s.quantization_range < s.modulus_range <= 2**32:
        raise ConfigError(
            f"training params field '{PARAM}': need 0 < quantization_range < modulus_range <= 2**32"
        )
    if s.modulus_range & (s.modulus_range - 1):
        raise ConfigError(f"training params field '{PARAM}.modulus_range' must be a power of 2")
    if s.max_weight < 0:
        raise ConfigError(f"training params field '{PARAM}.max_weight' must be >= 0")
    return s


def settings_param(s: SecAggSettings) -> dict[str, float | int]:
    """Settings as the job's ``params["secure_aggregation"]`` object."""
    return cast(dict[str, float | int], asdict(s))


def threshold_for(sites: int) -> int:
    """Shares needed to rebuild a secret: a strict majority of the sites (at least 2)."""
    return max(2, sites // 2 + 1)


# ---------------------------------------------------------------- the mask generator


def chacha_prg(
    seed: bytes, num_range: int, dimensions_list: list[tuple[int, ...]]
) -> list[NDArray[np.int64]]:
    """Masks in [0, num_range) (a power of 2 up to 2**32) from the whole ``seed``.

    Same signature and role as Flower's ``secaggplus_utils.pseudo_rand_gen``.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    if num_range <= 0 or num_range > 2**32 or num_range & (num_range - 1):
        raise ConfigError(f"secure aggregation mask range {num_range} is not a power of 2 <= 2**32")
    key = hashlib.sha256(_PRG_LABEL + bytes(seed)).digest()
    sizes = [math.prod(d) for d in dimensions_list]
    stream = Cipher(algorithms.ChaCha20(key, b"\x00" * 16), mode=None).encryptor()
    words = np.frombuffer(stream.update(b"\x00" * (4 * sum(sizes))), dtype="<u4")
    words = (words & np.uint32(num_range - 1)) if num_range < 2**32 else words
    out: list[NDArray[np.int64]] = []
    start = 0
    for dims, size in zip(dimensions_list, sizes, strict=True):
        out.append(words[start : start + size].astype(np.int64).reshape(dims))
        start += size
    return out


def harden_flower_secagg() -> None:
    """Make Flower's SecAgg+ mod and workflow (in this process) use ``chacha_prg``."""
    for name in _FLWR_MODULES:
        module = importlib.import_module(name)
        if not hasattr(module, "pseudo_rand_gen"):
            raise PrerequisiteError(
                f"{name} has no pseudo_rand_gen: secure aggregation is written for flwr 1.42"
            )
        setattr(module, "pseudo_rand_gen", chacha_prg)  # noqa: B010


# ---------------------------------------------------------------- site side


def site_update(
    trained: list[NDArray[np.float32]],
    global_weights: list[NDArray[np.float32]],
    n_examples: int,
    clip: float,
    max_weight: float,
) -> list[NDArray[np.float64]]:
    """The vector a site masks: new minus global weights, then a check element of 1.

    Refuses (instead of letting the quantiser clip silently) when a weighted coordinate
    falls outside [-clip, clip].
    """
    if len(trained) != len(global_weights):
        raise ConfigError(
            f"secure aggregation: the Trainer returned {len(trained)} weight arrays for "
            f"{len(global_weights)} global ones"
        )
    update: list[NDArray[np.float64]] = []
    for i, (w, g) in enumerate(zip(trained, global_weights, strict=True)):
        if w.shape != g.shape:
            raise ConfigError(
                f"secure aggregation: weight array {i} has shape {w.shape}, global {g.shape}"
            )
        update.append(np.asarray(w, dtype=np.float64) - np.asarray(g, dtype=np.float64))
    update.append(np.ones(1, dtype=np.float64))
    ratio = n_examples / max_weight if max_weight > 0 else 1.0
    biggest = max(float(np.max(np.abs(u))) if u.size else 0.0 for u in update) * ratio
    if biggest > clip:
        raise ConfigError(
            f"secure aggregation: a weighted update coordinate is {biggest:.3g}, outside "
            f"the clipping range {clip:g}; raise params '{PARAM}.clip'"
        )
    return update


_MASKING: ContextVar[bool] = ContextVar("mindcommons_secagg_masking", default=False)


@contextmanager
def masking() -> Iterator[None]:
    """Marks the site's masking handler: what a ``fit`` phase returns here gets masked."""
    token = _MASKING.set(True)
    try:
        yield
    finally:
        _MASKING.reset(token)


def site_job_kind(site_dir: Path, job: dict[str, Any]) -> dict[str, Any]:
    """The site's own reading of a training job: ``train`` becomes ``secure-train`` when
    the site's allowlist holds ``secure-train`` and not ``train``."""
    from mindcommons.policy import allowed_jobs

    if str(job.get("job", "")) != "train":
        return job
    allowed = allowed_jobs(site_dir)
    return {**job, "job": SECURE_JOB} if SECURE_JOB in allowed and "train" not in allowed else job


def secure_train_job(site: str, settings: Any, job: dict[str, Any]) -> dict[str, Any]:
    """The ``secure-train`` job: ``train``, with its ``fit`` phase only under masking."""
    from mindcommons.federation.server import job_params
    from mindcommons.federation.site import JOB_TYPES

    phase = str(job_params(job).get("phase", "fit"))
    if phase == "fit" and not _MASKING.get():
        raise PolicyError(
            f"refused: {site} trains only under secure aggregation ('{SECURE_JOB}' in its "
            f"allowed_jobs); this fit round was not masked (params '{PARAM}')"
        )
    return JOB_TYPES.get("train")(site, settings, {**job, "job": "train"})


def register_secure_job() -> None:
    """Add ``secure-train`` to the site job types (called by ``federation.site``)."""
    from mindcommons.federation.site import JOB_TYPES
    from mindcommons.governance.jobcheck import register_job_purpose

    if SECURE_JOB not in JOB_TYPES.names():
        JOB_TYPES.add(SECURE_JOB, secure_train_job)
    register_job_purpose(SECURE_JOB, "training")


def mod_state(context: Any) -> dict[str, Any]:
    """The SecAgg+ mod's own state for this run at this site (clip and max_weight)."""
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_STATE

    records = context.state.config_records
    return dict(records[RECORD_KEY_STATE]) if RECORD_KEY_STATE in records else {}


# ---------------------------------------------------------------- coordinator side


class _Grid:
    """Flower's Grid for the workflow: counts bytes, keeps each site's reply and errors."""

    def __init__(self, grid: Any, dump: Callable[[str, Any], None]) -> None:
        self._grid = grid
        self._dump = dump
        self.sent = 0
        self.received = 0
        self.replies: dict[int, Any] = {}  # node -> the stage-3 reply (our job's records)
        self.errors: dict[int, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None = None) -> Any:
        from mindcommons.federation.server_app import _nbytes, _origin, _short

        msgs = list(messages)
        self.sent += sum(_nbytes(m.content) for m in msgs)
        for msg in msgs:  # the debug dump shows what the sites were asked, too
            self._dump("train-secagg-sent", msg)
        replies = list(self._grid.send_and_receive(msgs, timeout=timeout))
        for reply in replies:
            self._dump("train-secagg", reply)
            node = _origin(reply, msgs)
            if reply.has_error():
                self.errors[node] = _reason(_short(reply.error.reason))
                continue
            self.received += _nbytes(reply.content)
            if "reply" in reply.content:
                self.replies[node] = reply
        return replies


def _reason(text: str) -> str:
    """A site's refusal as Flower wraps a ClientApp exception, without the wrapper."""
    match = re.fullmatch(r"<class '[\w.]+'>:<'(.*)'>", text, flags=re.DOTALL)
    return match.group(1) if match else text


def _strategy(fit_ins: Any, nodes: list[int], result: dict[str, Any]) -> Any:
    """A Flower Strategy that only hands the job to ``nodes`` and keeps the aggregate."""
    from flwr.server.client_proxy import ClientProxy
    from flwr.server.strategy import Strategy

    class Proxy(ClientProxy):
        """Carries a node id (the workflow sends the messages itself)."""

        def __init__(self, node_id: int) -> None:
            super().__init__(str(node_id))
            self.node_id = node_id

        def _no(self, *_: Any, **__: Any) -> Any:
            raise NotImplementedError("secure aggregation proxies only carry a node id")

        get_properties = get_parameters = fit = evaluate = reconnect = _no

    proxies = [Proxy(n) for n in nodes]

    class Rounds(Strategy):
        def initialize_parameters(self, client_manager: Any) -> None:
            return None

        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            return [(p, fit_ins) for p in proxies]

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            if results:
                result["parameters"] = results[0][1].parameters
            result["failures"] = [str(f) for f in failures]
            return result.get("parameters"), {}

        def configure_evaluate(self, *_: Any) -> Any:
            return []

        def aggregate_evaluate(self, *_: Any) -> Any:
            return None, {}

        def evaluate(self, *_: Any) -> Any:
            return None

    return Rounds()


def secure_round(
    grid: Any,
    chosen: dict[int, str],
    body: dict[str, Any],
    weights: list[NDArray[np.float32]],
    settings: SecAggSettings,
    timeout: float,
    dump: Callable[[str, Any], None],
    *,
    server_round: int = 1,
) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, float]]:
    """One SecAgg+ fit round; returns (site -> numbers, site -> reason, traffic).

    Every site's numbers carry the securely averaged weights under ``AGGREGATE_KEY``
    (global weights plus the weighted average of the sites' updates).
    """
    from flwr.app import ArrayRecord, ConfigRecord, Context, RecordDict
    from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey

    harden_flower_secagg()
    started = time.perf_counter()
    nodes = sorted(chosen)
    if len(nodes) < 2:
        reason = "secure aggregation needs at least 2 sites in the round"
        return {}, {s: reason for s in chosen.values()}, {"bytes_sent": 0.0,
                                                          "bytes_received": 0.0}  # fmt: skip
    if settings.max_weight <= 0:
        raise ConfigError(f"secure aggregation: params '{PARAM}.max_weight' was not set")
    config = {k: v for k, v in body.items() if isinstance(v, str | int | float | bool | bytes)}
    fit_ins = FitIns(ndarrays_to_parameters([np.asarray(w, "<f4") for w in weights]), config)
    result: dict[str, Any] = {}
    state = RecordDict()
    state[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: server_round})
    state[MAIN_PARAMS_RECORD] = ArrayRecord([np.asarray(w, "<f4") for w in weights])
    context = LegacyContext(
        Context(run_id=0, node_id=0, node_config={}, state=state, run_config={}),
        strategy=_strategy(fit_ins, nodes, result),
    )
    counting = _Grid(grid, dump)
    workflow = SecAggPlusWorkflow(
        num_shares=1.0,  # every site holds a share of every other site's secrets
        reconstruction_threshold=threshold_for(len(nodes)),
        max_weight=settings.max_weight,
        clipping_range=settings.clip,
        quantization_range=settings.quantization_range,
        modulus_range=settings.modulus_range,
        timeout=timeout,
    )
    workflow(cast(Any, counting), context)
    ok: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for node, site in chosen.items():
        reply = counting.replies.get(node)
        if node in counting.errors:
            failed[site] = f"error: {counting.errors[node]}"
        elif reply is None:
            failed[site] = f"no masked update within {timeout:.0f} s"
        else:
            meta = dict(reply.content["reply"])
            if meta.get("status") != "ok":
                failed[site] = str(meta.get("reason") or meta.get("status") or "failed")
                continue
            payload = dict(reply.content["metrics"]) if "metrics" in reply.content else {}
            payload["__seconds__"] = float(str(meta.get("seconds", 0.0)))
            ok[site] = payload
    traffic = {"bytes_sent": float(counting.sent), "bytes_received": float(counting.received),
               "secagg_seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    if "parameters" not in result:
        reasons = "; ".join(result.get("failures", [])) or "the protocol halted"
        for site in ok:
            failed[site] = f"secure aggregation did not complete ({reasons[:200]})"
        return {}, failed, traffic
    averaged = [np.asarray(a, dtype=np.float64) for a in parameters_to_ndarrays(
        result["parameters"])]  # fmt: skip
    check = float(averaged[-1][0]) if averaged and averaged[-1].size == 1 else float("nan")
    if not abs(check - 1.0) <= CHECK_TOLERANCE:
        reason = (f"secure aggregation check element is {check:.6g}, not 1: the sites and the "
                  "coordinator disagree on the protocol (mindcommons/flwr versions?)")  # fmt: skip
        return {}, {s: reason for s in chosen.values()}, traffic
    aggregate = [
        (np.asarray(g, dtype=np.float64) + u).astype(np.float32)
        for g, u in zip(weights, averaged[:-1], strict=True)
    ]
    for payload in ok.values():
        payload[AGGREGATE_KEY] = aggregate
    return ok, failed, traffic


def describe_summary(settings: SecAggSettings, sites: int) -> dict[str, Any]:
    """What a run's summary records about its secure aggregation."""
    return {
        "protocol": "SecAgg+ (flwr SecAggPlusWorkflow + secaggplus_mod)",
        "mask_generator": PRG_NAME,
        **settings_param(settings),
        "sites": sites,
        "reconstruction_threshold": threshold_for(sites),
        "max_abs_error_per_coordinate": settings.max_error(sites),
        "coordinator_sees": "masked vectors and their sum; n_examples and validation "
        "statistics per site in plain",
    }

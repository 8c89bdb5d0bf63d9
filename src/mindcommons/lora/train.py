"""Train a LoRA adapter on the dequantized base model, on CPU, with plain PyTorch.

Each target projection ``W`` (a frozen ``nn.Linear``) becomes ``W x + scale * B (A x)``
with ``scale = alpha / rank`` (llama.cpp applies the same). Only A and B are trained; the
loss covers the answer tokens only (the prompt is context). Batch size 1, AdamW, a fixed
number of optimizer steps cycling through the examples in a seeded order.

At inference the task's grammar forces every structural token of the answer (keys,
brackets, item numbers); the model's own choices are each item's score digit and its
evidence sentence. ``score_weight`` > 1 weighs the score-digit tokens that much more in
the (weighted-mean) loss, so a few CPU steps go to the decisions the item MAE measures
instead of mostly to copying evidence text. ``score_predictions`` reads, teacher-forced,
the score each item would get under the grammar (argmax over the allowed digits). It is
optimistic: every earlier item's score and evidence in the context are the target's, and
one person's item scores move together, so the true severity leaks from item to item;
generation conditions on the model's own earlier scores (benchmarks/RESULTS.md: 0.52
teacher-forced vs 0.76 generated item MAE on the same validation notes).
"""

from __future__ import annotations

import random
import re
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mindcommons.errors import ConfigError
from mindcommons.federation.training import Weights
from mindcommons.lora.convert import BaseModel
from mindcommons.lora.data import Example
from mindcommons.lora.layout import TARGETS, LoraSpec, Slot, adapter_layout

END_OF_TURN = "<|im_end|>"
SCORE_DIGIT = re.compile(r'"score":\s*(\d)')


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer steps (one example each), learning rate, seed, longest example kept."""

    steps: int = 8
    lr: float = 1e-3
    seed: int = 0
    max_length: int = 1536
    score_weight: float = 1.0  # loss weight of score-digit tokens (1: plain mean)

    def __post_init__(self) -> None:
        if not 1.0 <= self.score_weight <= 1000.0:
            raise ConfigError(
                f"score_weight={self.score_weight} is out of range (expected 1..1000)"
            )
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps} must be at least 1")
        if not 0 < self.lr < 1:
            raise ConfigError(f"learning rate {self.lr} is out of range (expected 0 < lr < 1)")
        if self.max_length < 32:
            raise ConfigError(f"max_length={self.max_length} is too small (expected >= 32)")


@dataclass(frozen=True)
class Encoded:
    """One example as tokens: ids, index of the first answer token, score-digit indices."""

    ids: list[int]
    start: int
    scores: tuple[int, ...]


@dataclass(frozen=True)
class TrainResult:
    """New weights and what training cost (numbers only)."""

    weights: Weights
    n_examples: int
    steps: int
    tokens: int  # tokens processed (prompt + answer) over all steps
    loss_first: float
    loss_last: float
    loss_mean: float
    seconds: float
    peak_rss_mb: float

    def metrics(self) -> dict[str, float]:
        return {
            "steps": float(self.steps),
            "tokens": float(self.tokens),
            "loss_first": self.loss_first,
            "loss_last": self.loss_last,
            "loss_mean": self.loss_mean,
            "train_seconds": self.seconds,
            "peak_rss_mb": self.peak_rss_mb,
        }


def initial_weights(base_shape: Any, spec: LoraSpec, seed: int = 0) -> Weights:
    """A ~ U(-1/sqrt(in), 1/sqrt(in)) (seeded), B = 0: the adapter starts as the base model."""
    rng = np.random.default_rng(seed)
    out: Weights = []
    for slot in adapter_layout(base_shape, spec):
        if slot.part == "a":
            bound = 1.0 / np.sqrt(slot.shape[1])
            out.append(rng.uniform(-bound, bound, size=slot.shape).astype(np.float32))
        else:
            out.append(np.zeros(slot.shape, dtype=np.float32))
    return out


def check_weights(slots: Sequence[Slot], weights: Weights) -> None:
    """The weights match the layout exactly (count, shapes, finite values)."""
    if len(weights) != len(slots):
        raise ConfigError(
            f"adapter weights hold {len(weights)} matrices; this model and LoRA setting "
            f"need {len(slots)} (check rank and targets)"
        )
    for slot, w in zip(slots, weights, strict=True):
        if tuple(w.shape) != slot.shape:
            raise ConfigError(
                f"adapter matrix {slot.gguf_name} has shape {tuple(w.shape)}, "
                f"expected {slot.shape} (check rank and targets)"
            )
        if not np.all(np.isfinite(w)):
            raise ConfigError(f"adapter matrix {slot.gguf_name} holds non-finite values")


class LoraModel:
    """The base model with LoRA modules on the target projections (installed in place)."""

    def __init__(self, base: BaseModel, spec: LoraSpec) -> None:
        import torch
        from torch import nn

        self.base = base
        self.spec = spec
        self.slots = adapter_layout(base.shape, spec)
        self.params: list[Any] = []
        layers = base.model.model.layers
        for slot in self.slots:
            if slot.part == "b":
                continue
            attn = layers[slot.layer].self_attn
            name = TARGETS[slot.target][0]
            linear = getattr(attn, name)
            if getattr(linear, "is_lora", False):  # left by an earlier LoraModel: replace it
                linear = linear.base
            d_in, d_out = base.shape.dims(slot.target)
            module = _lora_linear(linear, spec.rank, d_in, d_out, spec.scale)
            setattr(attn, name, module)
            self.params += [module.lora_a, module.lora_b]
        self._torch, self._nn = torch, nn

    def set_weights(self, weights: Weights) -> None:
        check_weights(self.slots, weights)
        with self._torch.no_grad():
            for param, value in zip(self.params, weights, strict=True):
                param.copy_(self._torch.from_numpy(np.ascontiguousarray(value)))

    def get_weights(self) -> Weights:
        return [p.detach().cpu().numpy().astype(np.float32).copy() for p in self.params]

    def set_enabled(self, enabled: bool) -> None:
        """Off: the model computes exactly the base model (used to compare logits)."""
        for module in self.base.model.modules():
            if getattr(module, "is_lora", False):
                module.enabled = enabled

    def encode(self, example: Example, max_length: int) -> Encoded | None:
        """Token ids, the first answer token and the score-digit tokens; None when too long."""
        tok = self.base.tokenizer
        prompt = tok.apply_chat_template(
            list(example.messages), tokenize=False, add_generation_prompt=True
        )
        prompt_ids = tok(prompt, add_special_tokens=False).input_ids
        answer = tok(example.answer + END_OF_TURN, add_special_tokens=False,
                     return_offsets_mapping=True)  # fmt: skip
        ids = list(prompt_ids) + list(answer.input_ids)
        if len(ids) > max_length:
            return None
        start = len(prompt_ids)
        digits = [m.start(1) for m in SCORE_DIGIT.finditer(example.answer)]
        scores = []
        for at in digits:
            hits = [i for i, (a, b) in enumerate(answer.offset_mapping) if a <= at < b]
            if len(hits) != 1 or answer.offset_mapping[hits[0]] != (at, at + 1):
                raise ConfigError(
                    f"document {example.document_id}: a score digit of the answer is not one "
                    "token on its own (the tokenizer does not split digits as expected)"
                )
            scores.append(start + hits[0])
        return Encoded(ids, start, tuple(scores))

    def _loss(self, enc: Encoded, score_weight: float = 1.0) -> Any:
        """Mean answer-token cross-entropy, score digits weighted ``score_weight``."""
        x = self._torch.tensor([enc.ids])
        logits = self.base.model(input_ids=x).logits[0, :-1]
        return self._weighted_ce(logits, x[0, 1:], enc, score_weight)

    def _weighted_ce(self, logits: Any, targets: Any, enc: Encoded, score_weight: float) -> Any:
        torch = self._torch
        per_token = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        weights = torch.zeros(len(enc.ids) - 1)
        weights[enc.start - 1 :] = 1.0
        for position in enc.scores:
            weights[position - 1] = score_weight
        return (per_token * weights).sum() / weights.sum()

    def train(self, examples: Sequence[Example], config: TrainConfig) -> TrainResult:
        """``config.steps`` AdamW steps from the current weights; returns the new weights."""
        torch = self._torch
        encoded = [e for e in (self.encode(x, config.max_length) for x in examples) if e]
        if not encoded:
            raise ConfigError(
                f"no training example fits max_length={config.max_length} tokens "
                f"({len(examples)} examples); raise max_length or use shorter documents"
            )
        torch.manual_seed(config.seed)
        self.set_enabled(True)
        for p in self.params:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=0.0)
        order: list[int] = []
        rng = random.Random(config.seed)
        losses: list[float] = []
        tokens = 0
        started = time.perf_counter()
        self.base.model.train()
        try:
            for _ in range(config.steps):
                if not order:
                    order = list(range(len(encoded)))
                    rng.shuffle(order)
                enc = encoded[order.pop()]
                loss = self._loss(enc, config.score_weight)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                tokens += len(enc.ids)
        finally:
            self.base.model.eval()
            for p in self.params:
                p.requires_grad_(False)
        return TrainResult(
            weights=self.get_weights(),
            n_examples=len(encoded),
            steps=config.steps,
            tokens=tokens,
            loss_first=losses[0],
            loss_last=losses[-1],
            loss_mean=float(np.mean(losses)),
            seconds=time.perf_counter() - started,
            peak_rss_mb=peak_rss_mb(),
        )

    def validate(
        self, examples: Sequence[Example], max_length: int = 1536, score_weight: float = 1.0
    ) -> tuple[float, int, float, int]:
        """Held-out statistics, one forward pass per example that fits.

        Returns (summed training-objective loss — answer tokens, score digits weighted
        ``score_weight`` as in ``train`` —, examples, summed absolute item-score error of
        the teacher-forced score choice (as ``score_predictions``), items scored).
        """
        torch = self._torch
        digit_ids = self._digit_ids(4)
        loss_sum, n, err_sum, n_items = 0.0, 0, 0.0, 0
        with torch.no_grad():
            for example in examples:
                enc = self.encode(example, max_length)
                if enc is None:
                    continue
                x = torch.tensor([enc.ids])
                logits = self.base.model(input_ids=x).logits[0]
                loss_sum += float(self._weighted_ce(logits[:-1], x[0, 1:], enc, score_weight))
                n += 1
                for p in enc.scores:
                    picked = int(torch.argmax(logits[p - 1, digit_ids]))
                    err_sum += abs(picked - digit_ids.index(enc.ids[p]))
                    n_items += 1
        return loss_sum, n, err_sum, n_items

    def _digit_ids(self, choices: int) -> list[int]:
        tok = self.base.tokenizer
        return [tok(str(d), add_special_tokens=False).input_ids[0] for d in range(choices)]

    def score_predictions(
        self, examples: Sequence[Example], max_length: int = 1536, choices: int = 4
    ) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(predicted, target) item scores per example that fits, teacher-forced.

        At each score digit of the target answer, the score the grammar-constrained greedy
        decoder would pick after that prefix: the argmax over the digit tokens
        ``0..choices-1`` (the ``phq9`` grammar's score enum). Cheap (one forward pass per
        example) but optimistic: earlier items' true scores are in the context (see module).
        """
        torch = self._torch
        digit_ids = self._digit_ids(choices)
        out = []
        with torch.no_grad():
            for example in examples:
                enc = self.encode(example, max_length)
                if enc is None:
                    continue
                logits = self.base.model(input_ids=torch.tensor([enc.ids])).logits[0]
                picked = tuple(int(torch.argmax(logits[p - 1, digit_ids])) for p in enc.scores)
                target = tuple(digit_ids.index(enc.ids[p]) for p in enc.scores)
                out.append((picked, target))
        return out

    def logits(self, ids: Sequence[int]) -> Any:
        """Next-token logits (numpy, tokens x vocab) for ``ids`` with the current weights."""
        torch = self._torch
        with torch.no_grad():
            out = self.base.model(input_ids=torch.tensor([list(ids)])).logits
        return out[0].numpy()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def _make_lora_linear() -> Any:
    from torch import nn

    class LoraLinear(nn.Module):
        """``base(x) + scale * (x @ A^T) @ B^T``; the base layer stays frozen."""

        def __init__(self, base: Any, rank: int, d_in: int, d_out: int, scale: float) -> None:
            super().__init__()
            import torch

            self.base = base
            self.lora_a = nn.Parameter(torch.zeros(rank, d_in))
            self.lora_b = nn.Parameter(torch.zeros(d_out, rank))
            self.scale = scale
            self.enabled = True
            self.is_lora = True

        def forward(self, x: Any) -> Any:
            out = self.base(x)
            if self.enabled:
                out = out + (x @ self.lora_a.T) @ self.lora_b.T * self.scale
            return out

    return LoraLinear


_LORA_CLASS: list[Any] = []


def _lora_linear(base: Any, rank: int, d_in: int, d_out: int, scale: float) -> Any:
    """A LoRA-wrapped linear layer (the class is built on first use: torch loads lazily)."""
    if not _LORA_CLASS:
        _LORA_CLASS.append(_make_lora_linear())
    return _LORA_CLASS[0](base, rank, d_in, d_out, scale)

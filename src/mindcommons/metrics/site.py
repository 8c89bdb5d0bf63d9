"""Per-site sufficient statistics and their bootstrap replicates (numbers only, no rows).

Every metric mindcommons reports is a function of sums over samples. A site sends
those sums (``totals``) plus, for B bootstrap resamples of its samples, the same sums
over each resample (``replicates``, B x k). The coordinator adds replicate b across
sites (a stratified bootstrap) and computes each metric per replicate, which gives a
pooled percentile interval without any sample-level data leaving a site.

Scoring rules: an item the model gave no usable score for (``None``) is scored as 0,
the same rule as ``SampleResult.predicted_total``, so item MAE, kappa and totals are over
all items. The evidence-verbatim rate is over items whose *predicted* score is > 0.
Seconds are kept as integer milliseconds so every statistic is an exact integer and
pooled sums equal the sums over concatenated samples.

Privacy note: with the seed known and n <= B, replicates determine the per-sample
statistics (a linear system). Sites that need to prevent this should derive the
bootstrap seed from a site-held secret; see ``site_seed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import InputError
from mindcommons.instruments import Instrument, get_instrument
from mindcommons.tasks.base import SampleResult

BASE_COLUMNS: tuple[str, ...] = (
    "n",  # samples
    "items",  # items scored (all items of every sample)
    "item_abs_err",  # sum |pred - true| over items, missing prediction = min answer
    "items_predicted",  # items with a usable prediction
    "total_abs_err",  # sum |predicted_total - true_total|
    "band_correct",  # samples whose predicted severity band equals the true band
    "parsed",  # samples whose output parsed
    "evidence_verbatim",  # items with predicted score > 0 whose evidence is verbatim
    "evidence_eligible",  # items with predicted score > 0
    "input_tokens",
    "output_tokens",
    "milliseconds",
)
COL = {name: i for i, name in enumerate(BASE_COLUMNS)}
CONF_START = len(BASE_COLUMNS)
_Num = TypeVar("_Num", np.int64, np.float64)
_MAX_CHUNK_CELLS = 2_000_000  # bound memory of the resample count matrix


def n_columns(n_levels: int) -> int:
    """Length k of a statistics vector for an instrument with ``n_levels`` answer values."""
    return CONF_START + n_levels * n_levels


def column_names(n_levels: int) -> list[str]:
    conf = [f"conf_{t}_{p}" for t in range(n_levels) for p in range(n_levels)]
    return [*BASE_COLUMNS, *conf]


@dataclass(frozen=True, eq=False)
class SiteStats:
    """What one site releases: totals (k,) and bootstrap replicates (B, k), all integers."""

    n_levels: int
    totals: NDArray[np.int64]
    replicates: NDArray[np.int64]
    seed: int = 0

    @property
    def n(self) -> int:
        return int(self.totals[COL["n"]])

    @property
    def n_boot(self) -> int:
        return int(self.replicates.shape[0])

    @property
    def k(self) -> int:
        return int(self.totals.shape[0])

    def to_payload(self) -> dict[str, int | float | list[int] | list[float]]:
        from mindcommons.metrics.payload import to_payload

        return to_payload(self)

    @classmethod
    def from_payload(cls, payload: object) -> SiteStats:
        from mindcommons.metrics.payload import from_payload

        return from_payload(payload)


def site_seed(run_seed: int, site: str, secret: bytes = b"") -> int:
    """A per-site bootstrap seed: distinct per site, stable for a run seed (and secret)."""
    digest = hashlib.sha256(f"{run_seed}:{site}:".encode() + secret).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _answer(value: int | None, inst: Instrument, where: int, field: str) -> int:
    if value is None:
        return inst.min_answer
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(
            f"{field} holds {value!r}",
            record=f"#{where}",
            field=field,
            expected=f"integers {inst.min_answer}-{inst.max_answer}",
        )
    if not inst.min_answer <= value <= inst.max_answer:
        raise InputError(
            f"{field} holds {value}",
            record=f"#{where}",
            field=field,
            expected=f"integers {inst.min_answer}-{inst.max_answer}",
        )
    return value


def sample_row(result: SampleResult, inst: Instrument, index: int = 0) -> NDArray[np.int64]:
    """The sufficient-statistics vector of one sample (never leaves the site on its own)."""
    n_items = len(inst.items)
    levels = inst.max_answer - inst.min_answer + 1
    where = f"#{index}"
    for field, seq in (
        ("true_items", result.true_items),
        ("predicted_items", result.predicted_items),
    ):
        if len(seq) != n_items:
            raise InputError(
                f"{field} has {len(seq)} values",
                record=where,
                field=field,
                expected=f"{n_items} values for {inst.name}",
            )
    if len(result.evidence_verbatim) > n_items:
        raise InputError(
            f"evidence_verbatim has {len(result.evidence_verbatim)} values",
            record=where,
            field="evidence_verbatim",
            expected=f"at most {n_items} values",
        )
    true = [_answer(v, inst, index, "true_items") for v in result.true_items]
    pred = [_answer(v, inst, index, "predicted_items") for v in result.predicted_items]
    evidence = list(result.evidence_verbatim) + [False] * (n_items - len(result.evidence_verbatim))
    eligible = [p > inst.min_answer for p in pred]
    pred_total = sum(pred)
    row = np.zeros(n_columns(levels), dtype=np.int64)
    row[COL["n"]] = 1
    row[COL["items"]] = n_items
    row[COL["item_abs_err"]] = sum(abs(p - t) for p, t in zip(pred, true, strict=True))
    row[COL["items_predicted"]] = sum(v is not None for v in result.predicted_items)
    row[COL["total_abs_err"]] = abs(pred_total - result.true_total)
    row[COL["band_correct"]] = int(
        inst.band_index(pred_total) == inst.band_index(result.true_total)
    )
    row[COL["parsed"]] = int(bool(result.parsed))
    row[COL["evidence_verbatim"]] = sum(e and ok for e, ok in zip(eligible, evidence, strict=True))
    row[COL["evidence_eligible"]] = sum(eligible)
    row[COL["input_tokens"]] = max(0, int(result.input_tokens))
    row[COL["output_tokens"]] = max(0, int(result.output_tokens))
    row[COL["milliseconds"]] = max(0, round(float(result.seconds) * 1000))
    for t, p in zip(true, pred, strict=True):
        row[CONF_START + (t - inst.min_answer) * levels + (p - inst.min_answer)] += 1
    return row


def bootstrap_sums(rows: NDArray[_Num], n_boot: int, seed: int) -> NDArray[_Num]:
    """Column sums of ``n_boot`` resamples (with replacement, size n) of ``rows`` (n x k).

    The sums keep ``rows``' dtype (integer counts here, float rows in ``suite.stats``); the
    resamples depend only on ``n`` and ``seed``.
    """
    n, k = rows.shape
    out = np.zeros((n_boot, k), dtype=rows.dtype)
    if n == 0 or n_boot == 0:
        return out
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CHUNK_CELLS // n)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        flat = (idx + (np.arange(m, dtype=np.int64) * n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=m * n).reshape(m, n).astype(rows.dtype)
        out[start : start + m] = counts @ rows
    return out


def site_stats(
    results: Sequence[SampleResult], *, instrument: str, n_boot: int = 1000, seed: int = 0
) -> SiteStats:
    """Sufficient statistics and ``n_boot`` seeded bootstrap replicates for one site."""
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    inst = get_instrument(instrument)
    levels = inst.max_answer - inst.min_answer + 1
    for i, r in enumerate(results):
        if get_instrument(r.instrument).key != inst.key:
            raise InputError(
                f"result is for {r.instrument}, not {inst.name}",
                record=f"#{i}",
                field="instrument",
                expected=inst.name,
            )
    if results:
        rows = np.stack([sample_row(r, inst, i) for i, r in enumerate(results)])
    else:
        rows = np.zeros((0, n_columns(levels)), dtype=np.int64)
    return SiteStats(
        n_levels=levels,
        totals=rows.sum(axis=0).astype(np.int64),
        replicates=bootstrap_sums(rows, n_boot, seed),
        seed=seed,
    )

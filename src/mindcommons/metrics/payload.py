"""The flat, numbers-only wire form of ``SiteStats`` and the guard run before anything leaves."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from mindcommons.errors import InputError, PolicyError

if TYPE_CHECKING:
    from mindcommons.metrics.site import SiteStats

STATS_VERSION = 1
Payload = dict[str, int | float | list[int] | list[float]]
_KEYS = ("stats_version", "n_levels", "seed", "totals", "replicates", "replicates_shape")
_WHERE = "site statistics payload"


def to_payload(stats: SiteStats) -> Payload:
    """Flat dict of ints and int lists; fits JSON and Flower MetricRecord/ConfigRecord."""
    b, k = stats.replicates.shape
    payload: Payload = {
        "stats_version": STATS_VERSION,
        "n_levels": int(stats.n_levels),
        "seed": int(stats.seed),
        "totals": [int(v) for v in stats.totals.tolist()],
        "replicates": [int(v) for v in stats.replicates.ravel().tolist()],
        "replicates_shape": [int(b), int(k)],
    }
    assert_numeric_payload(payload)
    return payload


def assert_numeric_payload(payload: Mapping[str, object]) -> None:
    """Raise PolicyError unless every value is an int, a float or a flat list of them.

    The last check before statistics leave a site: text (str/bytes), nested
    structures, booleans and None are refused, as are non-finite floats.
    """
    if not isinstance(payload, Mapping):
        raise PolicyError(f"refusing to release a {type(payload).__name__}: expected a dict")
    for key, value in payload.items():
        if not isinstance(key, str):
            raise PolicyError(f"refusing to release key {key!r}: keys must be names")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str | bytes | bytearray):
                raise PolicyError(
                    f"refusing to release '{key}': it holds text, only numbers may leave a site"
                )
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise PolicyError(
                    f"refusing to release '{key}': {type(v).__name__} is not a number"
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise PolicyError(f"refusing to release '{key}': non-finite number")


def _int(payload: Mapping[str, object], key: str, minimum: int) -> int:
    value = payload[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(
            f"bad value {value!r}", record=_WHERE, field=key, expected=f"an integer >= {minimum}"
        )
    return value


def _int_list(payload: Mapping[str, object], key: str, length: int | None) -> list[int]:
    value = payload[key]
    expected = "a list of non-negative integers" + (f" of length {length}" if length else "")
    if not isinstance(value, list | tuple):
        raise InputError(f"got {type(value).__name__}", record=_WHERE, field=key, expected=expected)
    out: list[int] = []
    for v in value:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InputError(f"holds {v!r}", record=_WHERE, field=key, expected=expected)
        out.append(v)
    if length is not None and len(out) != length:
        raise InputError(f"has {len(out)} values", record=_WHERE, field=key, expected=expected)
    return out


def from_payload(payload: object) -> SiteStats:
    """Rebuild ``SiteStats``; raises InputError naming the field on any malformed part."""
    from mindcommons.metrics.site import COL, CONF_START, SiteStats, n_columns

    if not isinstance(payload, Mapping):
        raise InputError(f"got {type(payload).__name__}", record=_WHERE, expected="a dict")
    missing = [k for k in _KEYS if k not in payload]
    extra = sorted(str(k) for k in payload if k not in _KEYS)
    if missing or extra:
        raise InputError(
            f"missing keys {missing}, unknown keys {extra}",
            record=_WHERE,
            expected=f"exactly {list(_KEYS)}",
        )
    if _int(payload, "stats_version", 1) != STATS_VERSION:
        raise InputError(
            f"version {payload['stats_version']}",
            record=_WHERE,
            field="stats_version",
            expected=str(STATS_VERSION),
        )
    levels = _int(payload, "n_levels", 2)
    seed = _int(payload, "seed", 0)
    k = n_columns(levels)
    totals = np.asarray(_int_list(payload, "totals", k), dtype=np.int64)
    shape = _int_list(payload, "replicates_shape", 2)
    if shape[1] != k:
        raise InputError(
            f"shape {shape}", record=_WHERE, field="replicates_shape", expected=f"[B, {k}]"
        )
    reps = np.asarray(_int_list(payload, "replicates", shape[0] * k), dtype=np.int64)
    reps = reps.reshape(shape[0], k)
    n = int(totals[COL["n"]])
    for name, arr in (("totals", totals[None, :]), ("replicates", reps)):
        if arr.size and not np.all(arr[:, COL["n"]] == n):
            raise InputError(
                "sample counts disagree",
                record=_WHERE,
                field=name,
                expected=f"every row to count n={n} samples",
            )
        if arr.size and not np.all(arr[:, CONF_START:].sum(axis=1) == arr[:, COL["items"]]):
            raise InputError(
                "confusion matrix does not sum to the item count",
                record=_WHERE,
                field=name,
                expected="a consistent statistics row",
            )
    return SiteStats(n_levels=levels, totals=totals, replicates=reps, seed=seed)

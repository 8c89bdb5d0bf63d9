"""Differential privacy through OpenDP: Laplace noise calibrated by the privacy map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mindcommons.errors import PrerequisiteError


def require_opendp() -> Any:
    """The ``opendp.prelude`` module with contrib features on (PrerequisiteError if absent)."""
    try:
        import opendp.prelude as dp  # type: ignore[import-untyped,unused-ignore]
    except ModuleNotFoundError as err:
        raise PrerequisiteError(
            "differential privacy needs OpenDP: pip install opendp==0.16.0"
        ) from err
    dp.enable_features("contrib")
    return dp


def noisy_counts(counts: Sequence[int], *, sensitivity: int, epsilon: float) -> list[int]:
    """Discrete Laplace noise on integer counts whose L1 sensitivity is ``sensitivity``."""
    dp = require_opendp()
    meas = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int)),
        dp.l1_distance(T=int),
        scale=sensitivity / epsilon,
    )
    if meas.map(sensitivity) > epsilon * (1 + 1e-9):  # OpenDP's own privacy accounting
        raise PrerequisiteError("OpenDP reports more privacy loss than the budgeted epsilon")
    return [int(v) for v in meas([int(c) for c in counts])]


def noisy_sums(sums: Sequence[float], *, sensitivity: float, epsilon: float) -> list[float]:
    """Laplace noise on real sums (of clamped values) with L1 sensitivity ``sensitivity``."""
    dp = require_opendp()
    meas = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.l1_distance(T=float),
        scale=sensitivity / epsilon,
    )
    if meas.map(float(sensitivity)) > epsilon * (1 + 1e-9):
        raise PrerequisiteError("OpenDP reports more privacy loss than the budgeted epsilon")
    return [float(v) for v in meas([float(s) for s in sums])]

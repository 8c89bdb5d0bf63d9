"""Privacy accounting for DP full-batch gradient descent at each site.

A site that trains with ``dp`` clips each example's gradient to L2 norm ``C`` and adds
Gaussian noise N(0, (sigma*C)^2) to the *sum* of clipped gradients at every step; it uses
all its training examples in every step (no subsampling). Adding or removing one example
changes that sum by at most ``C``, so each step is a Gaussian mechanism with noise
multiplier ``sigma`` and ``T`` steps compose exactly to one Gaussian mechanism with
``mu = sqrt(T) / sigma`` (Gaussian differential privacy, Dong, Roth & Su 2022, Cor. 3.3).
Its (epsilon, delta) curve is exact (Balle & Wang 2018, Thm. 8):

    delta(eps) = Phi(-eps/mu + mu/2) - exp(eps) * Phi(-eps/mu - mu/2)

``epsilon_for`` inverts it; ``rdp_epsilon`` is the looser Renyi-DP bound (Mironov 2017,
alpha/(2 sigma^2) per step, converted with log(1/delta)/(alpha-1)) kept as a cross-check.
Sites hold disjoint records, so each site's guarantee is its own (parallel composition);
the federation reports the largest. Unit: one training example (record) at a site; the
number of examples a site trains on is released as a count (under its floor) and is not
covered.
"""

from __future__ import annotations

import math

DEFAULT_DELTA = 1e-5


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def gdp_mu(noise_multiplier: float, steps: int) -> float:
    """mu of ``steps`` full-batch Gaussian steps with noise multiplier ``noise_multiplier``."""
    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    return math.sqrt(steps) / noise_multiplier


def delta_for(epsilon: float, mu: float) -> float:
    """The exact delta at ``epsilon`` of a mu-GDP mechanism."""
    if mu == 0:
        return 0.0
    if math.isinf(mu):
        return 1.0
    return _phi(-epsilon / mu + mu / 2) - math.exp(epsilon) * _phi(-epsilon / mu - mu / 2)


def epsilon_for(noise_multiplier: float, steps: int, delta: float = DEFAULT_DELTA) -> float:
    """The exact epsilon spent by ``steps`` DP steps at ``delta`` (0 for no steps)."""
    mu = gdp_mu(noise_multiplier, steps)
    if mu == 0:
        return 0.0
    if math.isinf(mu):
        return math.inf
    lo, hi = 0.0, 1.0
    while delta_for(hi, mu) > delta:
        hi *= 2
        if hi > 1e4:
            return math.inf
    for _ in range(100):
        mid = (lo + hi) / 2
        if delta_for(mid, mu) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def rdp_epsilon(noise_multiplier: float, steps: int, delta: float = DEFAULT_DELTA) -> float:
    """Renyi-DP bound on the same mechanism (never below ``epsilon_for``)."""
    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    best = math.inf
    for i in range(1, 2000):
        alpha = 1.0 + i / 10.0
        eps = steps * alpha / (2 * noise_multiplier**2) + math.log(1 / delta) / (alpha - 1)
        best = min(best, eps)
    return best


def noise_for(epsilon: float, steps: int, delta: float = DEFAULT_DELTA) -> float:
    """The smallest noise multiplier whose ``steps`` steps spend at most ``epsilon``."""
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    lo, hi = 1e-3, 1.0
    while epsilon_for(hi, steps, delta) > epsilon:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        if epsilon_for(mid, steps, delta) > epsilon:
            lo = mid
        else:
            hi = mid
    return hi

"""Inline SVG forest plots (one per metric): each site and the pool with its interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from mindcommons.metrics import MetricEstimate, MetricSpec

WIDTH = 720
LABEL_W = 170
VALUE_W = 170
ROW_H = 26
TOP = 10
AXIS_H = 34
SITE_COLOR = "#2563a8"
POOL_COLOR = "#b4531a"


@dataclass(frozen=True)
class ForestRow:
    label: str
    n: int
    estimate: MetricEstimate
    pooled: bool = False


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick positions covering [lo, hi] with a 1-2-5 step."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(target - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10)), key=lambda st: abs(math.log(st / raw)))
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _domain(spec: MetricSpec, rows: list[ForestRow]) -> tuple[float, float] | None:
    vals = [
        v
        for r in rows
        for v in (r.estimate.value, r.estimate.low, r.estimate.high)
        if v is not None
    ]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 0.05)
    lo, hi = lo - pad, hi + pad
    bmin, bmax = spec.bounds
    if bmin is not None:
        lo = max(lo, bmin)
    if bmax is not None:
        hi = min(hi, bmax)
    return lo, hi


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def forest_plot(spec: MetricSpec, rows: list[ForestRow]) -> Markup:
    """An accessible SVG: labels on the left, point + CI bar, value [low, high] on the right."""
    height = TOP + ROW_H * len(rows) + AXIS_H
    x0, x1 = LABEL_W, WIDTH - VALUE_W
    title = escape(f"{spec.label}: each site and pooled, with 95% intervals")
    parts = [
        f'<svg class="forest" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">',
        f"<title>{title}</title>",
    ]
    domain = _domain(spec, rows)

    def sx(v: float) -> float:
        assert domain is not None
        lo, hi = domain
        return x0 + (v - lo) / (hi - lo) * (x1 - x0) if hi > lo else (x0 + x1) / 2

    bottom = TOP + ROW_H * len(rows)
    if domain is not None:
        for t in nice_ticks(*domain):
            x = sx(t)
            parts.append(
                f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" class="grid"/>'
                f'<text x="{x:.1f}" y="{bottom + 16}" class="tick">{t:g}</text>'
            )
        pooled = next((r for r in rows if r.pooled and r.estimate.value is not None), None)
        if pooled is not None and pooled.estimate.value is not None:
            x = sx(pooled.estimate.value)
            parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" class="ref"/>')
    parts.append(f'<line x1="{x0}" y1="{bottom}" x2="{x1}" y2="{bottom}" class="axis"/>')
    for i, row in enumerate(rows):
        y = TOP + ROW_H * i + ROW_H / 2
        est = row.estimate
        cls = "pool" if row.pooled else "site"
        label = escape(f"{row.label} (n={row.n})")
        parts.append(f'<text x="{x0 - 10}" y="{y + 4:.1f}" class="lab {cls}">{label}</text>')
        color = POOL_COLOR if row.pooled else SITE_COLOR
        if est.value is not None and domain is not None:
            if est.low is not None and est.high is not None:
                parts.append(
                    f'<line x1="{sx(est.low):.1f}" y1="{y:.1f}" x2="{sx(est.high):.1f}" '
                    f'y2="{y:.1f}" stroke="{color}" stroke-width="2"/>'
                )
            x = sx(est.value)
            if row.pooled:
                pts = " ".join(
                    f"{px:.1f},{py:.1f}"
                    for px, py in ((x - 7, y), (x, y - 7), (x + 7, y), (x, y + 7))
                )
                parts.append(f'<polygon points="{pts}" fill="{color}"/>')
            else:
                parts.append(
                    f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" '
                    f'fill="{color}"/>'
                )
            text = f"{_fmt(est.value, spec.digits)}"
            if est.low is not None and est.high is not None:
                text += f" [{_fmt(est.low, spec.digits)}, {_fmt(est.high, spec.digits)}]"
            else:
                text += " (no interval)"
        else:
            text = est.note or "no data"
        parts.append(f'<text x="{x1 + 10}" y="{y + 4:.1f}" class="val">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

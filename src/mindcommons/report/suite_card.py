"""Render an audit-suite report card (``mindcommons.suite.card``) as JSON and one
self-contained HTML page (inline CSS and SVG, opens offline), written atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from mindcommons.metrics import MetricEstimate, MetricSpec
from mindcommons.report.plots import ForestRow, forest_plot, nice_ticks
from mindcommons.report.writer import _atomic_write, _duration, _fmt

BAR_W = 720
BAR_LABEL_W = 170
BAR_ROW_H = 24


def _est(d: Mapping[str, Any]) -> MetricEstimate:
    return MetricEstimate(d.get("value"), d.get("low"), d.get("high"), str(d.get("note", "")))


def _spec(name: str, higher: bool, bounded: bool) -> MetricSpec:
    bounds = (0.0, 1.0) if bounded else (None, None)
    return MetricSpec(name, name, "", lambda s, n: s[:, 0], higher, bounds)


def _bounded(kind: str) -> bool:
    return kind in ("accuracy", "weighted_f1", "macro_f1")


def task_plots(task: Mapping[str, Any]) -> list[tuple[str, Markup]]:
    """One forest plot per aggregate: overall, each site, language and subgroup."""
    plots: list[tuple[str, Markup]] = []
    for agg in task["aggregates"]:
        name = agg["name"]
        if name not in task["metrics"]:
            continue
        rows = [ForestRow("overall", task["n"], _est(task["metrics"][name]), pooled=True)]
        for site, g in task["by_site"].items():
            rows.append(ForestRow(f"site {site}", g["n"], _est(g["metrics"][name])))
        for lang, g in task["by_language"].items():
            rows.append(ForestRow(f"language {lang}", g["n"], _est(g["metrics"][name])))
        for attr, values in task["by_attribute"].items():
            for value, g in values.items():
                rows.append(ForestRow(f"{attr}={value}", g["n"], _est(g["metrics"][name])))
        spec = _spec(name, bool(agg["higher_is_better"]), _bounded(agg["kind"]))
        plots.append((name, forest_plot(spec, rows)))
    gaps = task["paired_gaps"]
    metric_names = sorted({m for g in gaps.values() for m in g["metrics"]})
    for metric in metric_names:
        base = task["baseline_variant"]
        rows = [
            ForestRow(f"{variant} - {base}", g["pairs"], _est(g["metrics"][metric]))
            for variant, g in gaps.items()
            if metric in g["metrics"]
        ]
        spec = _spec(f"paired gap: {metric}", True, False)
        plots.append((f"paired gap of {metric}", forest_plot(spec, rows)))
    return plots


def energy_plot(card: Mapping[str, Any]) -> Markup:
    """Horizontal bars: kWh per 1,000 inferences per task, with the reference figures."""
    rows: list[tuple[str, float, bool]] = []
    for name, task in card["tasks"].items():
        energy = task.get("energy")
        if energy and energy.get("kwh_per_1k") is not None:
            rows.append((name, float(energy["kwh_per_1k"]), False))
    refs = card["method"]["energy_reference_kwh_per_1k"]
    for label, value in refs.items():
        if isinstance(value, int | float):
            rows.append((f"ref: {label}", float(value), True))
    if not rows:
        return Markup("<p class='desc'>No energy was measured in this run.</p>")
    hi = max(v for _, v, _ in rows) * 1.1 or 1.0
    x0, x1 = BAR_LABEL_W, BAR_W - 110
    height = 10 + BAR_ROW_H * len(rows) + 30
    parts = [
        f'<svg class="forest" role="img" viewBox="0 0 {BAR_W} {height}" width="{BAR_W}" '
        f'height="{height}"><title>Energy per 1,000 inferences (kWh)</title>'
    ]
    bottom = 10 + BAR_ROW_H * len(rows)
    for t in nice_ticks(0.0, hi):
        x = x0 + t / hi * (x1 - x0)
        parts.append(
            f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="{bottom}" class="grid"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" class="tick">{t:g}</text>'
        )
    for i, (label, value, ref) in enumerate(rows):
        y = 10 + BAR_ROW_H * i
        w = value / hi * (x1 - x0)
        color = "#9aa4b0" if ref else "#2563a8"
        parts.append(
            f'<text x="{x0 - 8}" y="{y + 16}" class="lab">{escape(label)}</text>'
            f'<rect x="{x0}" y="{y + 5}" width="{w:.1f}" height="{BAR_ROW_H - 10}" '
            f'fill="{color}"/><text x="{x0 + w + 6:.1f}" y="{y + 16}" class="val">'
            f"{value:.4g}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def render_suite_html(card: Mapping[str, Any]) -> str:
    env = Environment(
        loader=PackageLoader("mindcommons.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["duration"] = _duration
    env.filters["sci"] = lambda v: "—" if v is None else f"{float(v):.3g}"
    plots = {name: task_plots(task) for name, task in card["tasks"].items()}
    return env.get_template("suite.html.j2").render(
        card=card, run=card["run"], plots=plots, energy_svg=energy_plot(card)
    )


def write_suite_card(card: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``out_dir/report.json`` and ``out_dir/report.html`` (each replaced atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False)
    html = render_suite_html(card)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    _atomic_write(json_path, data + "\n")
    _atomic_write(html_path, html)
    return json_path, html_path

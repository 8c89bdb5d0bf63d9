"""Write ``report.json`` and a self-contained ``report.html`` for a run, atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from mindcommons.metrics import METRICS, GroupResult, MetricEstimate, PooledResult
from mindcommons.report.plots import ForestRow, forest_plot
from mindcommons.report.runinfo import RunInfo

SCHEMA_VERSION = 1
POOLED = "pooled"
SCORING_RULES = (
    "An item the model gave no usable score for is scored as 0 (as in the predicted total).",
    "Severity bands come from the instrument definition; band accuracy compares the band of "
    "the predicted total with the band of the true total.",
    "The evidence-verbatim rate is over items with a predicted score above 0.",
    "Sites send only sums over samples and the same sums over bootstrap resamples; "
    "no text, identifiers or per-sample rows leave a site.",
)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _estimate(e: MetricEstimate) -> dict[str, Any]:
    return {"value": _r(e.value), "low": _r(e.low), "high": _r(e.high), "note": e.note}


def _group(g: GroupResult) -> dict[str, Any]:
    return {
        "n": g.n,
        "metrics": {k: _estimate(g.metrics[k]) for k in (m.key for m in METRICS)},
        "input_tokens": g.input_tokens,
        "output_tokens": g.output_tokens,
        "model_seconds": round(g.seconds, 3),
        "note": g.note,
    }


def report_dict(info: RunInfo, result: PooledResult) -> dict[str, Any]:
    """The content of ``report.json`` (deterministic for fixed inputs)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run": asdict(info),
        "measurement": {
            "confidence": result.confidence,
            "interval": "bootstrap percentile",
            "n_boot": result.n_boot,
            "method": result.method,
            "scoring_rules": list(SCORING_RULES),
        },
        "metrics": [
            {
                "key": m.key,
                "label": m.label,
                "description": m.description,
                "higher_is_better": m.higher_is_better,
            }
            for m in METRICS
        ],
        "sites": {name: _group(g) for name, g in result.sites.items()},
        "pooled": _group(result.pooled),
        "missing_sites": [
            {"site": site, "reason": reason} for site, reason in sorted(info.sites_missing.items())
        ],
        "totals": {
            "n": result.pooled.n,
            "input_tokens": result.pooled.input_tokens,
            "output_tokens": result.pooled.output_tokens,
            "model_seconds": round(result.pooled.seconds, 3),
            "wall_seconds": round(info.wall_seconds, 3),
        },
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f} s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


def render_html(info: RunInfo, result: PooledResult) -> str:
    """The report page: inline CSS and SVG only, so it opens offline from a single file."""
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
    groups = [(name, g, False) for name, g in result.sites.items()]
    groups.append(("Pooled", result.pooled, True))
    plots = [
        (spec, forest_plot(spec, [ForestRow(n, g.n, g.metrics[spec.key], p) for n, g, p in groups]))
        for spec in METRICS
    ]
    template = env.get_template("report.html.j2")
    return template.render(
        info=info,
        result=result,
        metrics=METRICS,
        groups=groups,
        plots=plots,
        scoring_rules=SCORING_RULES,
        schema_version=SCHEMA_VERSION,
    )


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_report(info: RunInfo, result: PooledResult, out_dir: Path) -> Path:
    """Write ``out_dir/report.json`` and ``out_dir/report.html``; returns the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps(report_dict(info, result), indent=2, sort_keys=True, ensure_ascii=False)
    html = render_html(info, result)
    _atomic_write(out_dir / "report.json", data + "\n")
    html_path = out_dir / "report.html"
    _atomic_write(html_path, html)
    return html_path

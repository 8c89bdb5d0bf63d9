"""``mindcommons report``: compare two audit-suite runs (paired tests flag regressions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mindcommons.cli.app import app

report_app = typer.Typer(help="Audit-suite report cards: compare runs.", no_args_is_help=True)
app.add_typer(report_app, name="report")


def _fmt(value: object) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


@report_app.command("compare")
def compare(
    run_a: Annotated[Path, typer.Argument(help="Reference run folder (or its report.json).")],
    run_b: Annotated[Path, typer.Argument(help="Candidate run folder, compared against A.")],
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 1000,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the comparison as JSON here.")
    ] = None,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit with status 1 on a regression.")
    ] = False,
) -> None:
    """Per task and metric: A, B, B - A with a paired 95% interval and p; REGRESSION flags."""
    from mindcommons.suite.compare import compare_runs

    result = compare_runs(run_a, run_b, alpha=alpha, n_boot=n_boot)
    console = Console()
    table = Table(title=f"B vs A · {result['test']}")
    for column in ("task", "metric", "A", "B", "B - A", "95% CI", "p", "flag"):
        table.add_column(column)
    for task, entry in result["tasks"].items():
        for metric, m in entry["metrics"].items():
            ci = "—" if m.get("low") is None else f"[{m['low']:.3f}, {m['high']:.3f}]"
            flag = (
                "REGRESSION" if m.get("regression") else "improved" if m.get("improvement") else ""
            )
            table.add_row(task, metric, _fmt(m.get("a")), _fmt(m.get("b")), _fmt(m.get("diff")),
                          ci, _fmt(m.get("p")), flag)  # fmt: skip
    console.print(table)
    if out is not None:
        out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if result["regressions"]:
        console.print(f"regressions: {', '.join(result['regressions'])}", highlight=False)
    else:
        console.print("no regressions", highlight=False)
    if fail_on_regression and result["regressions"]:
        raise typer.Exit(1)

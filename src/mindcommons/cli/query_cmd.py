"""``mindcommons query``: federated counts and means, disclosure-controlled at each site."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mindcommons.cli.app import HomeOption, app
from mindcommons.disclosure import QueryResult, run_query
from mindcommons.settings import load_settings


@app.command("query")
def query(
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Group by: language, gender, age_band, country, ethnicity_category, "
            "instrument_band:PHQ-9 (repeat for more).",
        ),
    ] = None,
    stat: Annotated[
        str, typer.Option("--stat", help="'count' or 'mean:<instrument>' (e.g. mean:PHQ-9).")
    ] = "count",
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="Privacy budget this query spends per site.")
    ] = 1.0,
    project: Annotated[
        str,
        typer.Option(
            "--project",
            help="Project whose epsilon budget is charged (default: the site's own `local`).",
        ),
    ] = "local",
    min_n: Annotated[
        int | None, typer.Option("--min-n", help="Ask for a higher floor (never lower).")
    ] = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Only these sites (default: all).")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Query all sites in this process (no Flower).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Count or average participants by category across sites; small cells are withheld."""
    result = run_query(
        load_settings(home), by=list(by or []), statistic=stat, epsilon=epsilon,
        project=project, min_n=min_n, sites=site or None, local=local,
    )  # fmt: skip
    console = Console()
    if as_json:
        console.print_json(json.dumps(result.to_json(), ensure_ascii=False))
        return
    console.print(render(result))
    for name, reason in result.missing.items():
        console.print(f"[yellow]{name}[/]: {reason}", highlight=False, soft_wrap=True)


def _fmt(value: int | float | None, floor: int) -> str:
    if value is None:
        return f"<{floor}" if floor > 0 else "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def render(result: QueryResult) -> Table:
    """The combined table plus one count column per site; withheld cells read "<floor"."""
    floor = max(result.floors.values(), default=0)
    title = (
        f"{result.statistic} by {', '.join(result.by) or '(all)'} - project {result.project}, "
        f"epsilon {result.epsilon:g} per site (noisy; '<n' = withheld)"
    )
    table = Table(title=title)
    for dim in result.by:
        table.add_column(dim)
    for name in result.sites:
        table.add_column(f"{name} n", justify="right")
    table.add_column("all sites n", justify="right")
    mean = result.statistic != "count"
    if mean:
        table.add_column(result.statistic, justify="right")
    for cell in result.cells:
        row = [*cell.labels]
        row += [_fmt(cell.site_counts.get(s), result.floors[s]) for s in result.sites]
        row.append(_fmt(cell.count, floor))
        if mean:
            row.append(_fmt(cell.mean, floor))
        table.add_row(*row)
    total = ["total" if i == 0 else "" for i in range(len(result.by))]
    total += [_fmt(result.site_totals.get(s), result.floors[s]) for s in result.sites]
    total.append(_fmt(result.total_count, floor))
    if mean:
        total.append(_fmt(result.total_mean, floor))
    if result.by:
        table.add_row(*total, style="bold")
    left = ", ".join(f"{s} {v:g}" for s, v in result.budget_left.items())
    if left:
        table.caption = f"epsilon left for {result.project}: {left}"
    return table

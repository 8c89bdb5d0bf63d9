"""``mindcommons ingest PATH --site NAME``: load CSV, JSONL or FHIR files into a site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from mindcommons.cli.app import HomeOption, app
from mindcommons.ingest import IngestReport, ingest_path
from mindcommons.settings import load_settings


def report_table(report: IngestReport) -> Table:
    """Inserted and unchanged rows per record type."""
    table = Table(title=f"site {report.site}, dataset {report.dataset}")
    table.add_column("records")
    table.add_column("inserted", justify="right")
    table.add_column("unchanged", justify="right")
    for name in sorted(set(report.inserted) | set(report.unchanged)):
        if not report.inserted.get(name) and not report.unchanged.get(name):
            continue
        table.add_row(name, str(report.inserted.get(name, 0)), str(report.unchanged.get(name, 0)))
    return table


@app.command("ingest")
def ingest(
    path: Annotated[Path, typer.Argument(help="A .csv, .jsonl or FHIR .json file, or a folder.")],
    site: Annotated[str, typer.Option("--site", help="Site name (created on first use).")],
    home: HomeOption = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset name (default: dataset.json or site).")
    ] = None,
) -> None:
    """Validate every record, then store the whole batch or nothing."""
    console = Console()
    settings = load_settings(home)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"ingesting {path}", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        # errors (MindcommonsError) propagate: main() prints them without a traceback
        report = ingest_path(path, site, settings=settings, dataset=dataset, progress=on_progress)
    console.print(report_table(report))
    console.print(
        f"{report.records} records from {len(report.files)} file(s) in {report.seconds:.2f} s"
    )

"""``mindcommons synth``: write a seeded multilingual multi-site synthetic corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from mindcommons.cli.app import app
from mindcommons.synth import FORMATS, generate

console = Console()


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (must be empty or new).")],
    sites: Annotated[
        int, typer.Option("--sites", help="Number of sites (site-a, site-b, ...).")
    ] = 3,
    patients: Annotated[int, typer.Option("--patients", help="Participants per site.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier synth output in --out.")
    ] = False,
    inject_phi: Annotated[
        bool,
        typer.Option(
            "--inject-phi",
            help="Put invented identifiers into notes and transcripts (marked raw); "
            "their offsets go to OUT/<site>/phi.jsonl.",
        ),
    ] = False,
) -> None:
    """Generate synthetic sites (notes, transcripts, PHQ-9/GAD-7, signals) as CSV, JSONL, FHIR."""
    formats = list(FORMATS)
    steps = max(sites, 0) * (1 + len(formats))
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("generating", total=steps)

        def advance(message: str) -> None:
            bar.update(task, advance=1, description=message)

        summary = generate(
            out,
            sites=sites,
            patients=patients,
            seed=seed,
            formats=formats,
            progress=advance,
            overwrite=overwrite,
            inject_phi=inject_phi,
        )

    table = Table(title=f"synthetic data in {summary.out} (seed {summary.seed})")
    for column in (
        "site",
        "languages",
        "participants",
        "documents",
        "measures",
        "signals",
        "outcomes",
    ):
        table.add_column(column, justify="left" if column in ("site", "languages") else "right")
    for site in summary.sites:
        languages = " ".join(f"{lang}:{n}" for lang, n in site.languages.items())
        counts = site.counts
        table.add_row(
            site.name,
            languages,
            *(
                str(counts[k])
                for k in ("participants", "documents", "measures", "signals", "outcomes")
            ),
        )
    console.print(table)
    console.print(
        f"formats: {', '.join(summary.formats)}; manifest: {summary.out / 'manifest.json'}"
    )

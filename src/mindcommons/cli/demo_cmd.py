"""``mindcommons demo``: the README's first command."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mindcommons.cli.app import HomeOption, app
from mindcommons.demo import DEMO_LIMIT_PER_SITE, DEMO_PATIENTS, run_demo
from mindcommons.settings import load_settings


@app.command("demo")
def demo(
    home: HomeOption = None,
    seed: Annotated[int, typer.Option(help="Seed for the synthetic sites.")] = 7,
    limit: Annotated[int, typer.Option(help="Documents evaluated per site.")] = (
        DEMO_LIMIT_PER_SITE
    ),
    patients: Annotated[int, typer.Option(help="Synthetic patients per site.")] = DEMO_PATIENTS,
) -> None:
    """Synthesise 3 sites, ingest them, run a federated PHQ-9 audit, print the report path."""
    console = Console()
    settings = load_settings(home)
    with console.status("mindcommons demo ...") as status:

        def on_progress(line: str) -> None:
            status.update(f"[4/5] {line[:100]}")

        result = run_demo(
            settings,
            seed=seed,
            limit=limit,
            patients=patients,
            say=lambda s: console.print(s, highlight=False),
            progress=on_progress,
        )
    console.print(f"report for {len(result.sites)} sites:")
    print(result.report)

"""``mindcommons audit``: evaluate a model at every site and write the pooled report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mindcommons.audit import run_audit
from mindcommons.cli.app import HomeOption, app
from mindcommons.settings import load_settings


@app.command("audit")
def audit(
    model: Annotated[
        str, typer.Option("--model", help="'embedded' or 'openai/<model-name>'.")
    ] = "embedded",
    task: Annotated[str, typer.Option("--task", help="Task to run (e.g. phq9, gad7).")] = "phq9",
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most N documents per site.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling and bootstrap.")] = 0,
    local: Annotated[
        bool, typer.Option("--local", help="Evaluate all sites in this process (no Flower).")
    ] = False,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Server URL for openai/<model> backends.")
    ] = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Only these sites (default: all).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run the audit (federated by default) and print the report path last."""
    console = Console()
    settings = load_settings(home)
    mode = "local" if local else "federated"
    with console.status(f"{mode} audit of '{model}' on task '{task}' ...") as status:

        def on_progress(line: str) -> None:
            if line.startswith("[mindcommons]") or local:
                console.print(line, highlight=False, markup=False)
            status.update(line[:100])

        path: Path = run_audit(
            settings, model=model, task=task, limit=limit, seed=seed, federated=not local,
            base_url=base_url, sites=site or None, progress=on_progress,
        )  # fmt: skip
    console.print(str(path), highlight=False, soft_wrap=True)

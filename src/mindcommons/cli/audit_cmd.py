"""``mindcommons audit``: evaluate a model at every site, or run an audit suite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mindcommons.audit import parse_sources, run_audit, run_suite_audit
from mindcommons.cli.app import HomeOption, app
from mindcommons.settings import load_settings


@app.command("audit")
def audit(
    model: Annotated[
        str,
        typer.Option(
            "--model", help="'embedded', 'openai/<model-name>' or 'replay/<responses.jsonl>'."
        ),
    ] = "embedded",
    task: Annotated[str, typer.Option("--task", help="Task to run (e.g. phq9, gad7).")] = "phq9",
    suite: Annotated[
        str | None,
        typer.Option(
            "--suite",
            help="Run an audit suite instead of one task: 'standard' (every registered "
            "task) or task names separated by commas. Local unless --federated.",
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="With --suite: TASK=PATH data for a task (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With --suite: run folder; an existing one is resumed."),
    ] = None,
    federated: Annotated[
        bool,
        typer.Option("--federated", help="With --suite: run at the sites on their own files."),
    ] = False,
    country: Annotated[
        str | None,
        typer.Option("--country", help="ISO alpha-3 country for CO2e (default USA)."),
    ] = None,
    no_energy: Annotated[
        bool, typer.Option("--no-energy", help="With --suite: do not measure energy.")
    ] = False,
    n_boot: Annotated[
        int | None,
        typer.Option("--n-boot", help="Bootstrap resamples (1000; 200 at sites with --suite)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most N documents per site (or per task).")
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
    """Run the audit (federated by default; a --suite runs locally by default) and print
    the report path last."""
    console = Console()
    settings = load_settings(home)
    if suite is not None:
        where = "federated" if federated else "local"
        with console.status(f"{where} audit suite '{suite}' of '{model}' ...") as status:

            def on_suite(line: str) -> None:
                if line.startswith("[mindcommons]"):
                    console.print(line, highlight=False, markup=False)
                status.update(line[:100])

            path = run_suite_audit(
                settings, suite=suite, model=model, sources=parse_sources(source),
                limit=limit, seed=seed, n_boot=n_boot, out=out, federated=federated,
                in_process=local, sites=site or None, base_url=base_url, country=country,
                energy=not no_energy, progress=on_suite,
            )  # fmt: skip
        console.print(str(path), highlight=False, soft_wrap=True)
        return
    mode = "local" if local else "federated"
    with console.status(f"{mode} audit of '{model}' on task '{task}' ...") as status:

        def on_progress(line: str) -> None:
            if line.startswith("[mindcommons]") or local:
                console.print(line, highlight=False, markup=False)
            status.update(line[:100])

        path = run_audit(
            settings, model=model, task=task, limit=limit, seed=seed, federated=not local,
            base_url=base_url, sites=site or None, progress=on_progress,
            n_boot=1000 if n_boot is None else n_boot,
        )  # fmt: skip
    console.print(str(path), highlight=False, soft_wrap=True)

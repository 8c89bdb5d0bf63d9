"""``mindcommons federation up|status|down``: the local Flower federation (one node per site)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mindcommons.cli.app import HomeOption, app
from mindcommons.federation import launcher
from mindcommons.settings import load_settings

federation_app = typer.Typer(
    help="Start, inspect and stop the local federation (SuperLink + one SuperNode per site).",
    no_args_is_help=True,
)
app.add_typer(federation_app, name="federation")


def _status_table(info: dict[str, object]) -> Table:
    table = Table(title="federation")
    table.add_column("process")
    table.add_column("pid", justify="right")
    table.add_column("port", justify="right")
    table.add_column("alive")
    link = info.get("superlink")
    if isinstance(link, dict):
        address = str(link["address"])
        table.add_row(
            "superlink", str(link["pid"]), address.rsplit(":", 1)[-1], _yes(link["alive"])
        )
    sites = info.get("sites")
    if isinstance(sites, dict):
        for site, node in sites.items():
            table.add_row(f"site {site}", str(node["pid"]), str(node["port"]), _yes(node["alive"]))
    return table


def _yes(value: object) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


@federation_app.command("up")
def up(
    home: HomeOption = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Only these sites (default: every site).")
    ] = None,
) -> None:
    """Start the SuperLink and one SuperNode per site; wait until all are connected."""
    console = Console()
    settings = load_settings(home)
    with console.status("starting the federation ..."):
        state = launcher.up(settings, site or None)
    word = "already up" if state.already_up else "up"
    console.print(
        f"federation {word}: SuperLink {state.address}, {len(state.nodes)} site(s): "
        f"{', '.join(state.sites)}; logs in {state.log_dir}"
    )


@federation_app.command("status")
def status(home: HomeOption = None) -> None:
    """Which federation processes are alive and how many sites are connected."""
    console = Console()
    info = launcher.status(load_settings(home))
    if not info["sites"] and not info["up"]:
        console.print("federation is down (run `mindcommons federation up`)")
        raise typer.Exit(1)
    console.print(_status_table(info))
    sites = info["sites"]
    console.print(f"{info['nodes_online']} of {len(sites)} site(s) connected")
    if not info["up"]:
        raise typer.Exit(1)


@federation_app.command("down")
def down(home: HomeOption = None) -> None:
    """Stop the processes `up` started (only those PIDs)."""
    stopped = launcher.down(load_settings(home))
    Console().print(
        f"stopped {len(stopped)} process(es)" if stopped else "federation was not running"
    )

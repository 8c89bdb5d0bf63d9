"""The ``mindcommons`` command line: a thin layer; each command calls one library function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mindcommons.errors import MindcommonsError

app = typer.Typer(
    name="mindcommons",
    help="Pool mental-health language data without moving it; audit language models on it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="State folder (default: $MINDCOMMONS_HOME or ~/.mindcommons)."),
]


def _register_commands() -> None:
    """Import every ``mindcommons.cli.*_cmd`` module; each adds its commands to ``app``.

    Discovered by name, so a new command is one new ``<name>_cmd.py`` file.
    """
    import importlib
    import pkgutil

    import mindcommons.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"mindcommons.cli.{info.name}")


def main() -> None:
    _register_commands()
    try:
        app()
    except MindcommonsError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)

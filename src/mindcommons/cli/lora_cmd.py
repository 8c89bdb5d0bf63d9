"""``mindcommons lora``: train a LoRA adapter of the embedded model on sites' own records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mindcommons.cli.app import HomeOption, app
from mindcommons.settings import load_settings

lora_app = typer.Typer(
    help="LoRA adapters of the embedded model (use one with --model lora/<dir>).",
    no_args_is_help=True,
)
app.add_typer(lora_app, name="lora")


@lora_app.command("train")
def train(
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Site to train on (repeat; federated: all).")
    ] = None,
    federated: Annotated[
        bool, typer.Option("--federated", help="Through the running federation (train job).")
    ] = False,
    rounds: Annotated[int, typer.Option("--rounds", help="Rounds of averaging.")] = 1,
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps per site and round.")] = 8,
    rank: Annotated[int, typer.Option("--rank", help="LoRA rank.")] = 4,
    alpha: Annotated[float, typer.Option("--alpha", help="LoRA alpha (scale alpha/rank).")] = 8.0,
    targets: Annotated[str, typer.Option("--targets", help="Projections: q,k,v,o.")] = "q,v",
    layers: Annotated[
        int, typer.Option("--layers", help="Adapt only the last N blocks (0: all).")
    ] = 0,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 1e-3,
    score_weight: Annotated[
        float,
        typer.Option(
            "--score-weight", help="Loss weight of the score digits (1: plain mean; see docs)."
        ),
    ] = 1.0,
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most this many examples per site.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed (split, init, order).")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Adapter folder to write.")] = None,
    home: HomeOption = None,
) -> None:
    """Train an adapter on the sites' notes paired with their PHQ-9s; data stays at each site."""
    from mindcommons.lora.api import lora_params, train_federated, train_local

    settings = load_settings(home)
    params = lora_params(
        rank=rank, alpha=alpha, targets=targets, layers=layers, steps=steps, lr=lr,
        limit=limit, seed=seed, score_weight=score_weight,
    )  # fmt: skip
    console = Console()

    def say(line: str) -> None:
        console.print(line, highlight=False, soft_wrap=True)

    if federated:
        result = train_federated(
            settings, params, sites=site or None, rounds=rounds, out=out, progress=say
        )
        training = result.get("training") or {}
        say(f"adapter: {training.get('artifact', '(not written)')}")
        for name, reason in (result.get("missing") or {}).items():
            console.print(f"[yellow]{name}[/]: {reason}", highlight=False, soft_wrap=True)
        return
    folder = train_local(settings, site or [], params, rounds=rounds, out=out, progress=say)
    say(f"adapter: {folder}  (use it with --model lora/{folder})")


@lora_app.command("show")
def show(adapter: Annotated[Path, typer.Argument(help="Adapter folder.")]) -> None:
    """Print an adapter's card (base model hash, data size, steps, loss)."""
    from mindcommons.lora.export import read_adapter

    Console().print_json(json.dumps(read_adapter(adapter).card))

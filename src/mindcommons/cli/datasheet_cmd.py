"""``mindcommons datasets list|consent|datasheet|profile``: consent and transparency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mindcommons.cli.app import HomeOption, app
from mindcommons.cli.users_cmd import TokenOption
from mindcommons.datasheet import (
    Profile,
    StewardFields,
    federated_profile,
    public_list,
    read_datasheet,
    read_reference,
    site_profile,
    write_datasheet,
)
from mindcommons.governance.consent import set_consent
from mindcommons.governance.users import current_principal
from mindcommons.settings import load_settings

datasets_app = typer.Typer(
    help="Datasets: consent (allowed purposes), Croissant datasheets, diversity profiles.",
    no_args_is_help=True,
)
app.add_typer(datasets_app, name="datasets")

ReferenceOption = Annotated[
    Path | None,
    typer.Option("--reference", help="Reference population (JSON or CSV) to compare with."),
]


@datasets_app.command("list")
def list_(
    site: Annotated[list[str] | None, typer.Option("--site", help="Only these sites.")] = None,
    reference: ReferenceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """The public list of datasets: consent, size and make-up (small cells withheld)."""
    settings = load_settings(home)
    ref = read_reference(reference) if reference else None
    entries = public_list(settings, current_principal(settings, token), sites=site, reference=ref)
    if as_json:
        typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    for e in entries:
        n = e["participants"] if e["participants"] is not None else f"<{e['floor']}"
        purposes = ", ".join(e["allowed_purposes"]) or "none recorded (local use only)"
        typer.echo(f"{e['site']}/{e['name']}: {n} participants; consent: {purposes}; "
                   f"licence: {e['licence'] or '-'}")  # fmt: skip


@datasets_app.command("consent")
def consent(
    site: Annotated[str, typer.Option("--site", help="The dataset's site.")],
    dataset: Annotated[str, typer.Argument(help="Dataset name (see 'datasets list').")],
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="A purpose the consent allows (repeat); none: local only."),
    ] = None,
    basis: Annotated[
        str | None, typer.Option("--basis", help="The consent basis (e.g. the form and date).")
    ] = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Record which purposes a dataset's consent allows (the site's steward)."""
    settings = load_settings(home)
    info = set_consent(
        settings, current_principal(settings, token), site, dataset, allow or [], basis=basis
    )
    shown = ", ".join(info.allowed_purposes) or "none (the site's own use only)"
    typer.echo(f"{site}/{dataset}: consent allows {shown}")


@datasets_app.command("datasheet")
def datasheet(
    site: Annotated[str, typer.Option("--site", help="The dataset's site.")],
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    fields: Annotated[
        Path | None,
        typer.Option(
            "--fields",
            help="JSON with intended_uses, prohibited_uses, known_gaps, "
            "collection, provenance, ... (the steward's part).",
        ),
    ] = None,
    reference: ReferenceOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead.")] = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Write the dataset's Croissant datasheet (RAI fields), validated by mlcroissant."""
    settings = load_settings(home)
    path = write_datasheet(
        settings, current_principal(settings, token), site, dataset,
        fields=StewardFields.read(fields) if fields else None,
        reference=read_reference(reference) if reference else None, out=out,
    )  # fmt: skip
    typer.echo(str(path))


@datasets_app.command("show")
def show(
    site: Annotated[str, typer.Option("--site", help="The dataset's site.")],
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Print a dataset's published Croissant datasheet (JSON-LD)."""
    settings = load_settings(home)
    data = read_datasheet(settings, current_principal(settings, token), site, dataset)
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@datasets_app.command("profile")
def profile(
    site: Annotated[
        str | None, typer.Option("--site", help="Profile one site, read there.")
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="One dataset only.")] = None,
    federated: Annotated[
        bool, typer.Option("--federated", help="Across all sites through the query job.")
    ] = False,
    project: Annotated[
        str, typer.Option("--project", help="Project charged (federated).")
    ] = "local",
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="Epsilon per dimension per site (federated).")
    ] = 1.0,
    local: Annotated[
        bool, typer.Option("--local", help="Federated profile in this process (no Flower).")
    ] = False,
    reference: ReferenceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Diversity profile (language, gender, age band, ethnicity, country) vs a reference."""
    settings = load_settings(home)
    actor = current_principal(settings, token)
    ref = read_reference(reference) if reference else None
    if federated:
        result = federated_profile(settings, actor, project=project, epsilon=epsilon,
                                   local=local, reference=ref)  # fmt: skip
    elif site:
        result = site_profile(settings, actor, site, dataset=dataset, reference=ref)
    else:
        raise typer.BadParameter("give --site NAME or --federated")
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    _print(result)


def _print(result: Profile) -> None:
    total = result.total if result.total is not None else f"<{result.floor}"
    noisy = " (noisy: differential privacy)" if result.noisy else ""
    typer.echo(f"{result.scope}: {total} participants{noisy}; withheld under {result.floor}")
    for dim, rows in result.dimensions.items():
        cells = []
        for r in rows:
            n = "withheld" if r.count is None else str(r.count)
            ref = f" ref {r.reference:.0%}" if r.reference is not None else ""
            flag = f" [{r.flag}]" if r.flag in ("under", "over") else ""
            cells.append(f"{r.category}={n}{ref}{flag}")
        typer.echo(f"  {dim}: " + "; ".join(cells))
    for site, reason in result.missing.items():
        typer.echo(f"  {site}: {reason}")

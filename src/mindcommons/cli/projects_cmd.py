"""``mindcommons projects create|approve|revoke|list``: purposes and site approvals."""

from __future__ import annotations

from typing import Annotated

import typer

from mindcommons.cli.app import HomeOption, app
from mindcommons.cli.users_cmd import TokenOption
from mindcommons.governance import projects as gov
from mindcommons.governance.users import current_principal
from mindcommons.settings import load_settings

projects_app = typer.Typer(
    help="Projects declare purposes; a site's steward approves or revokes them there.",
    no_args_is_help=True,
)
app.add_typer(projects_app, name="projects")

PurposeOption = Annotated[
    list[str] | None,
    typer.Option("--purpose", help="analytics, evaluation, training or care (repeat)."),
]


@projects_app.command("create")
def create(
    name: str,
    purpose: PurposeOption = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Declare a project and its purposes (researchers, stewards)."""
    settings = load_settings(home)
    info = gov.create_project(
        settings, current_principal(settings, token), name, purpose or [], description
    )
    typer.echo(f"created project {info.name} ({', '.join(info.purposes)})")


@projects_app.command("approve")
def approve(
    name: str,
    site: Annotated[str, typer.Option("--site", help="The site approving it.")],
    purpose: PurposeOption = None,
    note: Annotated[str, typer.Option("--note", help="Why (kept in the store).")] = "",
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Approve a project at a site for some or all of its purposes (the site's steward)."""
    settings = load_settings(home)
    info = gov.approve_project(
        settings, current_principal(settings, token), name, site, purpose or None, note
    )
    typer.echo(f"approved {info.project} at {info.site} for {', '.join(info.purposes)}")


@projects_app.command("revoke")
def revoke(
    name: str,
    site: Annotated[str, typer.Option("--site", help="The site withdrawing approval.")],
    note: Annotated[str, typer.Option("--note", help="Why (kept in the store).")] = "",
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Withdraw a project's approval at a site; its next job there is refused."""
    settings = load_settings(home)
    info = gov.revoke_project(settings, current_principal(settings, token), name, site, note)
    typer.echo(f"revoked {info.project} at {info.site}")


@projects_app.command("list")
def list_(
    site: Annotated[
        str | None, typer.Option("--site", help="Show this site's decisions instead.")
    ] = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Every project with the sites approving it (or one site's decisions)."""
    settings = load_settings(home)
    actor = current_principal(settings, token)
    if site:
        for a in gov.site_approvals(settings, actor, site):
            purposes = ", ".join(a.purposes) or "-"
            typer.echo(f"{a.project:<24} {a.status:<9} {purposes:<32} by {a.decided_by}")
        return
    for p in gov.list_projects(settings, actor):
        sites = "; ".join(f"{s}: {', '.join(v)}" for s, v in sorted(p.approvals.items()))
        if p.name == gov.LOCAL_PROJECT:
            sites = (sites + "; " if sites else "") + "elsewhere by default, unless revoked"
        typer.echo(f"{p.name:<24} {', '.join(p.purposes):<32} owner {p.owner:<12} "
                   f"approved at: {sites or '-'}")  # fmt: skip

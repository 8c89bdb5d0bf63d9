"""``mindcommons keys rotate|status --site NAME``: the key that encrypts document text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mindcommons.cli.app import HomeOption, app
from mindcommons.errors import ConfigError
from mindcommons.settings import Settings, load_settings, validate_site_name

keys_app = typer.Typer(
    help="Encryption at rest of document text: rotate the key, show which keys are in use.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

SiteOption = Annotated[str, typer.Option("--site", help="The site whose keyring to use.")]


def _site_settings(site: str, home: Path | None) -> Settings:
    validate_site_name(site)
    settings = load_settings(home)
    site_dir = settings.site_dir(site)
    if not site_dir.is_dir():
        raise ConfigError(f"no site '{site}' at {site_dir}: check --site and --home")
    return settings


@keys_app.command("rotate")
def rotate(site: SiteOption, home: HomeOption = None) -> None:
    """New current key; re-encrypt every document in one transaction; drop the old keys."""
    from mindcommons.governance.auditentry import EventKind
    from mindcommons.governance.auditlog import record_event
    from mindcommons.repository import SiteRepository

    settings = _site_settings(site, home)
    with SiteRepository.for_site(settings, site) as repo:
        result = repo.rotate_text_key()
        where = repo.keyring.where
    record_event(
        settings.site_dir(site),
        EventKind.KEY_ROTATION,
        subject="document text key",
        details={
            "new_key_id": result.new_key_id,
            "reencrypted": result.reencrypted,
            "dropped_key_ids": list(result.dropped_key_ids),
            "kept_key_ids": list(result.kept_key_ids),
        },
    )
    typer.echo(
        f"site {site}: new key {result.new_key_id}; {result.reencrypted} documents "
        f"re-encrypted; {len(result.dropped_key_ids)} old keys dropped ({where})"
    )
    if result.kept_key_ids:
        typer.echo(
            f"kept {', '.join(result.kept_key_ids)}: documents written during the rotation "
            "still use them; rotate again to retire them"
        )


@keys_app.command("status")
def status(site: SiteOption, home: HomeOption = None) -> None:
    """The keyring file, its current key and how many documents each key encrypts."""
    from mindcommons.repository import SiteRepository

    settings = _site_settings(site, home)
    with SiteRepository.for_site(settings, site) as repo:
        ring = repo.keyring
        usage = repo.key_usage()
    typer.echo(f"keyring: {ring.where}")
    typer.echo(f"current key: {ring.current}")
    for key_id in sorted(set(ring.keys) | set(usage)):
        held = "held" if key_id in ring.keys else "MISSING"
        mark = " (current)" if key_id == ring.current else ""
        typer.echo(f"  {key_id}{mark}: {usage.get(key_id, 0)} documents, {held}")

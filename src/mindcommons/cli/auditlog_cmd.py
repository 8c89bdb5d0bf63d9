"""``mindcommons audit-log verify|export|show --site NAME``: the site's hash-chained log."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Annotated

import typer

from mindcommons.cli.app import HomeOption, app
from mindcommons.errors import ConfigError
from mindcommons.governance.auditentry import EventKind
from mindcommons.governance.auditlog import AuditLog, default_actor
from mindcommons.governance.auditstore import LOG_FILE
from mindcommons.policy import SECRET_FILE, site_secret
from mindcommons.settings import load_settings

audit_log_app = typer.Typer(
    help="The site's append-only, hash-chained audit log: verify, export, show.",
    no_args_is_help=True,
)
app.add_typer(audit_log_app, name="audit-log")

SiteOption = Annotated[str, typer.Option("--site", help="The site whose log to use.")]


def _site_log(site: str, home: Path | None) -> AuditLog:
    site_dir = load_settings(home).site_dir(site)
    if not site_dir.is_dir():
        raise ConfigError(f"no site '{site}' at {site_dir}: check --site and --home")
    # Never create a key here: a missing key must show up as unverifiable MACs.
    secret = site_secret(site_dir) if (site_dir / SECRET_FILE).exists() else None
    return AuditLog(site_dir / LOG_FILE, secret=secret)


def _parse_anchor(anchor: str) -> tuple[int, str]:
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ConfigError(f"--anchor '{anchor}' is not SEQ:HASH (a seq and a 64-hex hash)")
    return int(seq), digest.lower()


@audit_log_app.command("verify")
def verify(
    site: SiteOption,
    anchor: Annotated[
        str | None,
        typer.Option("--anchor", help="SEQ:HASH seen earlier (e.g. from an export manifest)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Check the chain: exit 0 when intact, 1 with every problem listed."""
    log = _site_log(site, home)
    result = log.verify(anchor=_parse_anchor(anchor) if anchor else None)
    for note in result.notes:
        typer.echo(f"note: {note}")
    if result.ok:
        typer.echo(
            f"audit log of {site}: intact ({result.checked} entries, head seq "
            f"{result.last_seq} {result.last_hash})"
        )
        return
    typer.echo(f"audit log of {site}: {len(result.problems)} problem(s) found", err=True)
    for problem in result.problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(code=1)


@audit_log_app.command("export")
def export(
    site: SiteOption,
    out: Annotated[Path, typer.Option("--out", help="File to write the entries to.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    home: HomeOption = None,
) -> None:
    """Write the log for an external auditor, with <out>.manifest.json (head, verification)."""
    if fmt not in ("jsonl", "csv"):
        raise ConfigError(f"--format '{fmt}' is not known: use jsonl or csv")
    log = _site_log(site, home)
    log.append(
        default_actor(), EventKind.EXPORT, site=site, subject="audit-log",
        details={"format": fmt, "file": out.name[:200]},
    )  # fmt: skip
    manifest = log.export(out, fmt)
    verdict = "intact" if manifest["verification"]["ok"] else "PROBLEMS (see the manifest)"
    head = manifest["head"] or {}
    typer.echo(
        f"wrote {manifest['entries']} entries to {out} (head seq {head.get('seq')} "
        f"{head.get('hash')}); verification: {verdict}"
    )


@audit_log_app.command("show")
def show(
    site: SiteOption,
    last: Annotated[int, typer.Option("--last", min=0, help="Only the last N (0: all).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON entry per line.")] = False,
    home: HomeOption = None,
) -> None:
    """Print the latest entries (seq, time, actor, kind, subject, details)."""
    for entry in deque(_site_log(site, home).entries(), maxlen=last or None):
        if as_json:
            typer.echo(json.dumps(entry.to_json(), ensure_ascii=False))
            continue
        details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True)
        typer.echo(
            f"{entry.seq:>6}  {entry.time}  {entry.actor}  {entry.kind}  "
            f"{entry.subject or '-'}  {details}"
        )

"""``mindcommons federation ...``: run the federation on one machine or across several.

One machine: ``up`` / ``status`` / ``down``. Across machines (docs/deploy.md): on the
coordinator ``init-ca``, ``serve`` and ``register-node``; on each site ``site-keys``,
``approve-bundle`` and ``join``. TLS and SuperNode authentication are on unless
``--insecure`` is given (development only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mindcommons.cli.app import HomeOption, app
from mindcommons.federation import launcher, security
from mindcommons.settings import load_settings

federation_app = typer.Typer(
    help="Start, inspect and stop the federation (SuperLink + one SuperNode per site), "
    "set up its TLS certificates and node keys, and approve app bundles at a site.",
    no_args_is_help=True,
)
app.add_typer(federation_app, name="federation")

InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="DEVELOPMENT ONLY: no TLS and no SuperNode authentication (traffic in clear, "
        "any node may connect). The sites' bundle checks and policies still apply.",
    ),
]
SiteArg = Annotated[str, typer.Option("--site", help="The site (its folder under sites/).")]


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
            if node.get("remote"):
                word = "online" if node["alive"] else "[red]not connected[/]"
                table.add_row(f"site {site}", "-", "-", f"registered, {word}")
            else:
                row = (str(node["pid"]), str(node["port"]), _yes(node["alive"]))
                table.add_row(f"site {site}", *row)
    joined = info.get("joined")
    if isinstance(joined, dict):
        for site, node in joined.items():
            table.add_row(f"joined {site}", str(node["pid"]), "-", _yes(node["alive"]))
    return table


def _yes(value: object) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


def _security_word(insecure: bool) -> str:
    return (
        "[red]INSECURE: no TLS, no node authentication[/]"
        if insecure
        else "TLS + SuperNode authentication"
    )


@federation_app.command("up")
def up(
    home: HomeOption = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Only these sites (default: every site).")
    ] = None,
    insecure: InsecureOption = False,
) -> None:
    """Start the SuperLink and one SuperNode per site on this machine; wait until connected."""
    console = Console(soft_wrap=True)
    settings = load_settings(home)
    with console.status("starting the federation ..."):
        state = launcher.up(settings, site or None, insecure=insecure)
    word = "already up" if state.already_up else "up"
    console.print(
        f"federation {word}: SuperLink {state.address}, {len(state.nodes)} site(s): "
        f"{', '.join(state.sites)}; logs in {state.log_dir}",
        soft_wrap=True,
    )
    console.print(_security_word(state.insecure))


@federation_app.command("status")
def status(home: HomeOption = None) -> None:
    """Which federation processes are alive and how many sites are connected."""
    console = Console(soft_wrap=True)
    info = launcher.status(load_settings(home))
    if not info["sites"] and not info["up"] and not info["joined"]:
        console.print("federation is down (run `mindcommons federation up`)")
        raise typer.Exit(1)
    console.print(_status_table(info))
    if "superlink" in info:
        console.print(f"{info['nodes_online']} of {len(info['sites'])} site(s) connected")
        console.print(_security_word(not info["tls"]))
    if not info["up"] and not info["joined"]:
        raise typer.Exit(1)


@federation_app.command("down")
def down(home: HomeOption = None) -> None:
    """Stop the processes `up`, `serve` or `join` started here (only those PIDs)."""
    stopped = launcher.down(load_settings(home))
    Console(soft_wrap=True).print(
        f"stopped {len(stopped)} process(es)" if stopped else "federation was not running"
    )


# ---------------------------------------------------------------- coordinator


@federation_app.command("init-ca")
def init_ca(
    home: HomeOption = None,
    address: Annotated[
        list[str] | None,
        typer.Option(
            "--address", help="Address (IP or host name) sites use to reach the coordinator."
        ),
    ] = None,
) -> None:
    """Create the coordinator's CA and SuperLink certificate (kept; re-issued for new names)."""
    settings = load_settings(home)
    pki = security.init_ca(settings.federation_dir(), list(address or []))
    console = Console(soft_wrap=True)
    console.print(f"CA certificate: {pki.ca_cert}  (give this file to every site)")
    console.print(f"CA sha256 fingerprint: {security.ca_fingerprint(pki.ca_cert)}")
    console.print(f"SuperLink certificate valid for: {', '.join(security.server_names(pki))}")


@federation_app.command("serve")
def serve(
    home: HomeOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address sites use to reach this SuperLink.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port of the SuperLink.")] = (
        launcher.DEFAULT_PORT
    ),
    bind: Annotated[
        str | None, typer.Option("--bind", help="Interface to listen on (default: --host).")
    ] = None,
    address: Annotated[
        list[str] | None,
        typer.Option("--address", help="More names/addresses to put in the certificate."),
    ] = None,
    insecure: InsecureOption = False,
) -> None:
    """Coordinator: start the SuperLink only (sites join from their own hosts)."""
    settings = load_settings(home)
    state = launcher.serve(
        settings, host=host, port=port, bind=bind, addresses=list(address or []),
        insecure=insecure,
    )  # fmt: skip
    word = "already serving" if state.already_up else "serving"
    Console(soft_wrap=True).print(
        f"SuperLink {word} at {state.address} ({_security_word(state.insecure)}); "
        f"registered sites: {', '.join(state.sites) or 'none yet'}; "
        f"log {state.log_dir}/superlink.log"
    )


@federation_app.command("register-node")
def register_node(
    public_key: Annotated[Path, typer.Argument(help="The site's node.pub (from site-keys).")],
    site: SiteArg,
    home: HomeOption = None,
) -> None:
    """Coordinator: register a site's SuperNode public key with the running SuperLink."""
    settings = load_settings(home)
    node_id = launcher.register_node(settings, site, public_key)
    key = security.load_public_key(public_key)
    Console(soft_wrap=True).print(
        f"site {site} registered as node {node_id} "
        f"(key sha256 {security.key_fingerprint(key)[:16]}...)"
    )


# ---------------------------------------------------------------- site


@federation_app.command("site-keys")
def site_keys(site: SiteArg, home: HomeOption = None) -> None:
    """Site: create (once) the site's SuperNode key pair; print the public key to send."""
    settings = load_settings(home)
    keys = security.ensure_site_keys(settings.site_dir(site))
    key = security.load_public_key(keys.public_key)
    console = Console(soft_wrap=True)
    console.print(f"private key (stays here): {keys.private_key}")
    console.print(f"public key (send to the coordinator): {keys.public_key}")
    console.print(f"key sha256 fingerprint: {security.key_fingerprint(key)}")


@federation_app.command("bundle-hash")
def bundle_hash(
    app_dir: Annotated[
        Path | None,
        typer.Argument(help="A Flower app folder (default: the installed mindcommons app)."),
    ] = None,
) -> None:
    """Print the SHA-256 of an app bundle, as `flwr run` builds it."""
    typer.echo(security.bundle_hash(app_dir))


@federation_app.command("approve-bundle")
def approve_bundle(
    site: SiteArg,
    digest: Annotated[
        str | None, typer.Argument(help="SHA-256 of the bundle (default: the installed app's).")
    ] = None,
    home: HomeOption = None,
    label: Annotated[str, typer.Option("--label", help="Short label kept beside it.")] = "",
    revoke: Annotated[bool, typer.Option("--revoke", help="Remove it from the list.")] = False,
) -> None:
    """Site: accept (or with --revoke stop accepting) jobs from an app bundle; audited."""
    settings = load_settings(home)
    site_dir = settings.site_dir(site)
    value = digest or security.bundle_hash()
    label = label or ("installed mindcommons app" if digest is None else "")
    if revoke:
        changed = security.revoke_bundle(site_dir, value, actor="steward")
        word = "revoked" if changed else "was not approved"
    else:
        changed = security.approve_bundle(site_dir, value, note=label, actor="steward")
        word = "approved" if changed else "already approved"
    Console(soft_wrap=True).print(f"{site}: bundle {security.normalise_hash(value)} {word}")


@federation_app.command("join")
def join(
    site: SiteArg,
    superlink: Annotated[
        str, typer.Option("--superlink", help="The coordinator's SuperLink, HOST:PORT.")
    ],
    home: HomeOption = None,
    ca: Annotated[
        Path | None,
        typer.Option("--ca", help="The coordinator's ca.pem (copied into the site folder)."),
    ] = None,
    insecure: InsecureOption = False,
) -> None:
    """Site: start this site's SuperNode and gate, connected to the coordinator."""
    settings = load_settings(home)
    info = launcher.join(settings, site, superlink, ca=ca, insecure=insecure)
    word = "already joined" if info.get("already_up") else "joined"
    Console(soft_wrap=True).print(
        f"{site} {word} {superlink} ({_security_word(insecure)}): SuperNode pid {info['pid']}, "
        f"gate pid {info['exec_pid']}; log {info['log_dir']}/supernode-{site}.log"
    )


@federation_app.command("leave")
def leave(
    home: HomeOption = None,
    site: Annotated[str | None, typer.Option("--site", help="Only this site.")] = None,
) -> None:
    """Site: stop the SuperNode(s) `join` started on this host."""
    stopped = launcher.leave(load_settings(home), site)
    word = f"stopped {len(stopped)} process(es)" if stopped else "nothing was joined"
    Console(soft_wrap=True).print(word)


@federation_app.command("check")
def check(
    home: HomeOption = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Only these sites (default: all).")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Coordinator: run the cheap `count` job on every site; show who answered and why not."""
    import json

    from mindcommons.federation.runner import run_job

    result = run_job(load_settings(home), {"job": "count"}, sites=site or None, timeout=timeout)
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        if result.get("missing"):
            raise typer.Exit(1)
        return
    table = Table(title=f"federation check (run {result.get('run_id', '?')})")
    table.add_column("site")
    table.add_column("status")
    table.add_column("documents", justify="right")
    payloads = result.get("payloads", {})
    for name in result.get("sites_ok", []):
        docs = payloads.get(name, {}).get("document", "suppressed")
        table.add_row(name, "[green]ok[/]", str(docs))
    for name, reason in result.get("missing", {}).items():
        table.add_row(name, f"[red]{reason}[/]", "-")
    Console(soft_wrap=True).print(table)
    if result.get("missing"):
        raise typer.Exit(1)

"""The site's gate: installed code that decides what a SuperNode may execute.

A stock Flower SuperNode installs the app bundle (FAB) the SuperLink sends and imports
whatever ClientApp the bundle names -- code chosen by the coordinator. A mindcommons
site instead runs its SuperNode with ``--isolation process`` and this module as its
executor, so nothing from the bundle is ever imported:

* ``superexec`` (one long-lived process per site, started by ``federation join``/``up``)
  polls the SuperNode's Runtime API like Flower's ``flower-superexec``, but accepts only
  ClientApp tasks (not server, agent, model or connector apps) and launches them with
  the command ``clientapp`` below (a small script the launcher writes).
* ``clientapp`` (one process per message) pulls the task like ``flwr-clientapp``, then,
  instead of installing the bundle: hashes its bytes, refuses it unless the hash is in
  the site's ``approved_bundles.txt`` (audit-logged), and runs the ClientApp of the
  INSTALLED package (``mindcommons.federation.client_app``) whatever the bundle's
  ``[tool.flwr.app.components]`` say.

This relies on Flower 1.42 internals (``flwr.supernode.runtime.run_clientapp``); the
gate checks they are present and refuses to start otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mindcommons.errors import MindcommonsError, PolicyError, PrerequisiteError

FLWR_SERIES = "1.42."
_verified: dict[str, str] = {}


def verified_bundle() -> str | None:
    """The bundle hash this process's gate approved (None: not started through the gate)."""
    return _verified.get("sha256")


def _require_flwr() -> None:
    import flwr.supernode.runtime.run_clientapp as rc
    from flwr.supercore.version import package_version

    missing = [
        n for n in ("run_clientapp", "pull_task_input", "install_from_fab",
                    "get_load_client_app_fn")
        if not hasattr(rc, n)
    ]  # fmt: skip
    if not str(package_version).startswith(FLWR_SERIES) or missing:
        raise PrerequisiteError(
            f"the site gate is written for flwr {FLWR_SERIES}x (found {package_version}"
            f"{', missing ' + ', '.join(missing) if missing else ''}); "
            "install the flwr version pinned in requirements.lock"
        )


def _site_dir(context: Any) -> Path:
    from mindcommons.settings import load_settings

    cfg = context.node_config
    return load_settings(Path(str(cfg["home"]))).site_dir(str(cfg["site"]))


def _refuse(site_dir: Path, run: Any, digest: str, reason: str) -> None:
    from mindcommons.governance import EventKind, record_event

    record_event(
        site_dir,
        EventKind.JOB_REFUSED,
        actor=f"coordinator:flwr-run-{getattr(run, 'run_id', '?')}",
        subject=f"bundle:{digest}",
        details={
            "reason": reason[:200],
            "fab_id": str(getattr(run, "fab_id", ""))[:100],
            "fab_version": str(getattr(run, "fab_version", ""))[:40],
        },
    )


def check_task_bundle(context: Any, run: Any, fab: Any) -> str:
    """Approve or refuse one task's bundle for the site in ``context`` (audits refusals)."""
    import hashlib

    from mindcommons.federation.security import check_bundle

    site_dir = _site_dir(context)
    content = bytes(fab.content)
    try:
        digest = check_bundle(site_dir, content, str(getattr(fab, "hash_str", "") or ""))
    except PolicyError as err:
        _refuse(site_dir, run, hashlib.sha256(content).hexdigest(), str(err))
        raise
    _verified["sha256"] = digest
    return digest


def clientapp_main(argv: list[str] | None = None) -> None:
    """Entry point of the per-message ClientApp process (replaces ``flwr-clientapp``)."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    _require_flwr()
    import flwr.supernode.runtime.run_clientapp as rc
    from flwr.common.args import add_args_flwr_app_common, try_obtain_flwr_app_token
    from flwr.supercore.tls import validate_and_resolve_root_certificates

    parser = argparse.ArgumentParser(description="mindcommons site gate: one ClientApp task")
    parser.add_argument("--runtime-api-address", required=True)
    add_args_flwr_app_common(parser=parser)
    args = parser.parse_args(argv)
    token = try_obtain_flwr_app_token(args)
    pulled: dict[str, Any] = {}
    original_pull = rc.pull_task_input

    def pull(client: Any) -> Any:
        message, context, run, fab = original_pull(client)
        pulled.update(context=context, run=run, fab=fab)
        return message, context, run, fab

    def install(fab_content: bytes, *_: Any, **__: Any) -> None:
        # Called where Flower would unpack the bundle: check it, unpack nothing.
        if "fab" not in pulled or bytes(pulled["fab"].content) != fab_content:
            raise PolicyError("refused: the bundle to install is not the one pulled")
        check_task_bundle(pulled["context"], pulled["run"], pulled["fab"])

    def loader_factory(*_: Any, **__: Any) -> Callable[..., Any]:
        def load(*_a: Any, **_k: Any) -> Any:
            if verified_bundle() is None:
                raise PolicyError("refused: no approved bundle for this task")
            from mindcommons.federation.client_app import app

            return app

        return load

    # Flower's names inside its ClientApp process, replaced for this process only.
    setattr(rc, "pull_task_input", pull)  # noqa: B010
    setattr(rc, "install_from_fab", install)  # noqa: B010
    setattr(rc, "get_load_client_app_fn", loader_factory)  # noqa: B010
    rc.run_clientapp(
        runtime_api_address=args.runtime_api_address,
        token=token,
        insecure=args.insecure,
        certificates=validate_and_resolve_root_certificates(args.root_certificates, args.insecure),
        parent_pid=args.parent_pid,
        runtime_dependency_install=False,  # never install what a bundle asks for
    )


def superexec_main(argv: list[str] | None = None) -> None:
    """Entry point of the site's executor (replaces ``flower-superexec``): ClientApps only."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    _require_flwr()
    import flwr.supercore.superexec.run_superexec as rs
    from flwr.supercore.constant import TASK_TYPE_TO_COMMAND, TaskType
    from flwr.supercore.superexec.plugin import AutoExecPlugin

    parser = argparse.ArgumentParser(description="mindcommons site gate: task executor")
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--clientapp-command", required=True)
    parser.add_argument("--secret-file", default="")
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    command = Path(args.clientapp_command)
    if not (command.is_file() and os.access(command, os.X_OK)):
        raise PrerequisiteError(f"the gate's ClientApp command {command} is not executable")

    class SiteExecPlugin(AutoExecPlugin):
        """Flower's task plugin restricted to ClientApp tasks."""

        supported_task_types = frozenset({TaskType.CLIENT_APP})

    for task_type in list(TASK_TYPE_TO_COMMAND):  # anything else fails to launch
        TASK_TYPE_TO_COMMAND[task_type] = "/nonexistent/refused-by-mindcommons-gate"
    TASK_TYPE_TO_COMMAND[TaskType.CLIENT_APP] = str(command)
    setattr(rs, "AutoExecPlugin", SiteExecPlugin)  # noqa: B010
    secret = Path(args.secret_file).read_bytes() if args.secret_file else None
    rs.run_superexec(
        runtime_api_address=args.runtime_api_address,
        insecure=True,  # the SuperNode's Runtime API listens on this host's loopback only
        superexec_auth_secret=secret,
        parent_pid=args.parent_pid,
        runtime_dependency_install=False,
    )


def write_clientapp_command(path: Path) -> Path:
    """Write the executable the executor launches for each ClientApp task."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        f"#!{sys.executable}\n"
        "# Written by mindcommons (federation.gate): runs one ClientApp task through the\n"
        "# site's gate. Regenerated on every start; do not edit.\n"
        "from mindcommons.federation.gate import clientapp_main\n"
        "clientapp_main()\n",
        encoding="utf-8",
    )
    tmp.chmod(0o755)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m mindcommons.federation.gate superexec|clientapp ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("superexec", "clientapp"):
        sys.exit("usage: python -m mindcommons.federation.gate superexec|clientapp ARGS")
    try:
        (superexec_main if argv[0] == "superexec" else clientapp_main)(argv[1:])
    except MindcommonsError as err:
        sys.exit(f"mindcommons gate: {err}")


if __name__ == "__main__":
    main()

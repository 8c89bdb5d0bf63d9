"""Federation launcher: the coordinator's SuperLink and the sites' SuperNodes.

``up`` runs everything on one machine (127.0.0.1): one SuperLink and one SuperNode per
site, with TLS and SuperNode authentication unless ``insecure`` is asked for (a
development opt-out). Across machines the same pieces start separately: ``serve`` on
the coordinator (SuperLink only), ``register_node`` there for each site's public key,
and ``join`` on each site's host (SuperNode + the site's gate). Every SuperNode runs
with ``--isolation process`` and the site's gate (``federation.gate``) as its executor,
which runs only the installed ClientApp and only for app bundles the site approved.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, MindcommonsError, PrerequisiteError
from mindcommons.federation import security
from mindcommons.policy import ensure_site_policy
from mindcommons.settings import Settings, validate_site_name

CONNECTION = "mindcommons"  # name of the SuperLink connection in our private Flower config
CONNECT_TIMEOUT = 60.0
DEFAULT_PORT = 9092
JOINED_FILE = "joined.json"  # on a site's host: the SuperNodes `join` started


@dataclass
class FederationState:
    """What ``up``/``serve`` started: written to ``<federation_dir>/state.json``."""

    superlink_pid: int
    superlink_port: int
    nodes: dict[str, dict[str, int]]  # site -> {"pid", "port", "exec_pid"} started here
    started: str
    flwr_home: str
    log_dir: str
    host: str = "127.0.0.1"  # the address sites and the CLI use to reach the SuperLink
    insecure: bool = False
    remote_sites: list[str] = field(default_factory=list)  # registered, started elsewhere
    already_up: bool = field(default=False, compare=False)

    @property
    def sites(self) -> list[str]:
        return sorted(set(self.nodes) | set(self.remote_sites))

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.superlink_port}"

    def pids(self) -> list[int]:
        out = [self.superlink_pid]
        for node in self.nodes.values():
            out += [node["pid"]] + ([node["exec_pid"]] if node.get("exec_pid") else [])
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("already_up")
        data["sites"] = self.sites
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FederationState:
        return cls(
            superlink_pid=int(data["superlink_pid"]),
            superlink_port=int(data["superlink_port"]),
            nodes={k: {f: int(n) for f, n in v.items()} for k, v in data["nodes"].items()},
            started=str(data["started"]),
            flwr_home=str(data["flwr_home"]),
            log_dir=str(data["log_dir"]),
            host=str(data.get("host", "127.0.0.1")),
            insecure=bool(data.get("insecure", True)),
            remote_sites=[str(s) for s in data.get("remote_sites", [])],
        )


def state_path(settings: Settings) -> Path:
    return settings.federation_dir() / "state.json"


def node_cache_path(settings: Settings) -> Path:
    """node id -> site map the ServerApp keeps while the federation is up."""
    return settings.federation_dir() / "nodes.json"


def read_state(settings: Settings) -> FederationState | None:
    path = state_path(settings)
    if not path.exists():
        return None
    return FederationState.from_json(json.loads(path.read_text(encoding="utf-8")))


def _write_state(settings: Settings, state: FederationState) -> None:
    state_path(settings).write_text(json.dumps(state.to_json(), indent=2), encoding="utf-8")


def flwr_env(flwr_home: Path) -> dict[str, str]:
    """Environment for every Flower process: no telemetry, private FLWR_HOME, venv on PATH."""
    env = dict(os.environ)
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["FLWR_HOME"] = str(flwr_home)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def flwr_bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise PrerequisiteError(f"'{name}' not found beside {sys.executable}; install flwr==1.42.0")
    return str(path)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def discover_sites(settings: Settings) -> list[str]:
    root = settings.sites_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def write_flwr_config(
    flwr_home: Path, port: int, *, host: str = "127.0.0.1", root_certificates: Path | None = None
) -> None:
    """The flwr CLI's connection to our SuperLink (TLS: trust only our CA)."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    tls = (
        f'root-certificates = "{root_certificates}"\n'
        if root_certificates is not None
        else "insecure = true\n"
    )
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f'[superlink.{CONNECTION}]\naddress = "{address}"\n{tls}',
        encoding="utf-8",
    )


def _spawn(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> int:
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
    return proc.pid


def _check_home(settings: Settings) -> Path:
    home = settings.resolved_home()
    if "'" in str(home) or '"' in str(home):
        raise ConfigError(f"the home folder '{home}' must not contain quotes (Flower node config)")
    return home


# ---------------------------------------------------------------- coordinator


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    bind: str | None = None,
    addresses: list[str] | None = None,
    insecure: bool = False,
    timeout: float = CONNECT_TIMEOUT,
) -> FederationState:
    """Start the coordinator's SuperLink (TLS + SuperNode auth unless ``insecure``).

    ``host`` is the address sites use to reach it (it must be in the certificate);
    ``bind`` the interface it listens on (default: ``host``).
    """
    current = read_state(settings)
    if current is not None:
        if pid_alive(current.superlink_pid):
            current.already_up = True
            return current
        down(settings)
    fed = settings.federation_dir()
    log_dir, flwr_root = fed / "logs", fed / "flwr"
    log_dir.mkdir(parents=True, exist_ok=True)
    node_cache_path(settings).unlink(missing_ok=True)
    link_port = port or free_port(bind or host)
    cli_home = flwr_root / "cli"
    cmd = [
        flwr_bin("flower-superlink"), "--disable-runtime-dependency-installation",
        "--host", bind or host, "--port", str(link_port), "--database", str(fed / "superlink.db"),
    ]  # fmt: skip
    if insecure:
        cmd.append("--insecure")
        write_flwr_config(cli_home, link_port, host=host)
    else:
        pki = security.init_ca(fed, [host, *(addresses or [])])
        cmd += [
            "--ssl-ca-certfile", str(pki.ca_cert), "--ssl-certfile", str(pki.server_cert),
            "--ssl-keyfile", str(pki.server_key), "--enable-supernode-auth",
        ]  # fmt: skip
        write_flwr_config(cli_home, link_port, host=host, root_certificates=pki.ca_cert)
    link_pid = _spawn(cmd, log_dir / "superlink.log", flwr_env(flwr_root / "superlink"),
                      flwr_root / "superlink")  # fmt: skip
    state = FederationState(
        superlink_pid=link_pid, superlink_port=link_port, nodes={},
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        flwr_home=str(cli_home), log_dir=str(log_dir), host=host, insecure=insecure,
        remote_sites=sorted(security.read_registry(fed)) if not insecure else [],
    )  # fmt: skip
    _write_state(settings, state)
    _wait_control_api(state, timeout)
    if not insecure:
        _write_node_cache(settings)
    return state


def _control_client(state: FederationState) -> Any:
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from flwr.cli.typing import SuperLinkConnection
    from flwr.cli.utils import init_http_client_from_connection

    if state.insecure:
        conn = SuperLinkConnection(name=CONNECTION, address=state.address, insecure=True)
    else:
        ca = security.pki_for(Path(state.log_dir).parent).ca_cert
        conn = SuperLinkConnection(
            name=CONNECTION, address=state.address, root_certificates=str(ca)
        )
    with contextlib.redirect_stdout(io.StringIO()):  # flwr prints "Using SuperLink ..."
        return init_http_client_from_connection(conn)


def _list_nodes(state: FederationState) -> list[Any]:
    from flwr.proto.control_pb2 import ListNodesRequest

    client = _control_client(state)
    try:
        return list(client.ListNodes(ListNodesRequest()).nodes_info)
    finally:
        client.close()


def online_nodes(state: FederationState) -> list[int]:
    """Node ids the SuperLink reports as online (asks its Control API)."""
    return [int(n.node_id) for n in _list_nodes(state) if n.status == "online"]


def _wait_control_api(state: FederationState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(state.superlink_pid):
            raise PrerequisiteError(
                f"the SuperLink exited during start-up; see {state.log_dir}/superlink.log"
            )
        try:
            _list_nodes(state)
            return
        except Exception:  # not listening yet
            time.sleep(0.3)
    raise PrerequisiteError(
        f"the SuperLink did not answer within {timeout:.0f} s; see {state.log_dir}/superlink.log"
    )


def register_node(settings: Settings, site: str, public_key: Path) -> int:
    """Register a site's SuperNode public key with the running SuperLink; its node id.

    Idempotent: a key registered before returns its node id. The node id -> site map
    is kept so the coordinator names sites by their registered key, not by what a node
    says about itself.
    """
    from flwr.proto.control_pb2 import RegisterNodeRequest

    validate_site_name(site)
    state = read_state(settings)
    if state is None or not pid_alive(state.superlink_pid):
        raise PrerequisiteError(
            "the SuperLink is not running here: start it with `mindcommons federation serve`"
        )
    if state.insecure:
        raise ConfigError(
            "this SuperLink runs with --insecure (no SuperNode authentication); "
            "restart it without --insecure to register keys"
        )
    key = security.load_public_key(public_key)
    pem = security.public_key_pem(key)
    fed = settings.federation_dir()
    for other, info in security.read_registry(fed).items():
        if other != site and info.get("key_sha256") == security.key_fingerprint(key):
            raise ConfigError(f"{public_key}: this key is already registered for site '{other}'")
    node_id = next((int(n.node_id) for n in _list_nodes(state) if n.public_key == pem), 0)
    if not node_id:
        client = _control_client(state)
        try:
            node_id = int(
                client.RegisterNode(RegisterNodeRequest(public_key=pem, name=site)).node_id
            )
        finally:
            client.close()
    if not node_id:
        raise PrerequisiteError(f"the SuperLink did not register {public_key}; see its log")
    security.record_registration(fed, site, node_id, security.key_fingerprint(key))
    if site not in state.nodes and site not in state.remote_sites:
        state.remote_sites = sorted([*state.remote_sites, site])
        _write_state(settings, state)
    _write_node_cache(settings)
    return node_id


def _write_node_cache(settings: Settings) -> None:
    """node id -> site from the registrations, merged into the ServerApp's cache."""
    path = node_cache_path(settings)
    known: dict[str, str] = {}
    if path.exists():
        known = {str(k): str(v) for k, v in json.loads(path.read_text("utf-8")).items()}
    for site, info in security.read_registry(settings.federation_dir()).items():
        known = {k: v for k, v in known.items() if v != site}
        known[str(info["node_id"])] = site
    path.write_text(json.dumps(known), "utf-8")


# ---------------------------------------------------------------- sites


def _start_node(
    settings: Settings,
    site: str,
    superlink: str,
    *,
    insecure: bool,
    log_dir: Path,
    flwr_root: Path,
    cpu_lock: Path | None = None,
) -> dict[str, int]:
    """Start one site's SuperNode and its gate; return their pids and Runtime API port."""
    home = _check_home(settings)
    validate_site_name(site)
    site_dir = settings.site_dir(site)
    ensure_site_policy(site_dir)
    keys = security.ensure_site_keys(site_dir)
    port = free_port()
    env = flwr_env(flwr_root / site)
    if cpu_lock is not None:
        # Sites co-located on one machine take turns on the CPU, each with every core:
        # faster than running their models at once on a share of the cores.
        env.setdefault("MINDCOMMONS_CPU_LOCK", str(cpu_lock))
    cmd = [
        flwr_bin("flower-supernode"), "--superlink", superlink,
        "--node-config", f"site='{site}' home='{home}'",
        "--isolation", "process", "--host", "127.0.0.1", "--port", str(port),
        "--superexec-auth-secret-file", str(keys.exec_secret),
    ]  # fmt: skip
    if insecure:
        cmd.append("--insecure")
    else:
        if not keys.ca_cert.exists():
            raise PrerequisiteError(
                f"{keys.ca_cert} is missing: copy the coordinator's ca.pem to the site and "
                "pass it with `mindcommons federation join --ca PATH`"
            )
        cmd += ["--root-certificates", str(keys.ca_cert),
                "--auth-supernode-private-key", str(keys.private_key)]  # fmt: skip
    from mindcommons.federation.gate import write_clientapp_command

    command = write_clientapp_command(flwr_root / site / "bin" / "mindcommons-clientapp")
    log = log_dir / f"supernode-{site}.log"
    pid = _spawn(cmd, log, env, flwr_root / site)
    exec_cmd = [
        sys.executable, "-m", "mindcommons.federation.gate", "superexec",
        "--runtime-api-address", f"127.0.0.1:{port}", "--clientapp-command", str(command),
        "--secret-file", str(keys.exec_secret), "--parent-pid", str(pid),
    ]  # fmt: skip
    exec_pid = _spawn(exec_cmd, log_dir / f"gate-{site}.log", env, flwr_root / site)
    return {"pid": pid, "port": port, "exec_pid": exec_pid}


def joined_path(settings: Settings) -> Path:
    return settings.federation_dir() / JOINED_FILE


def read_joined(settings: Settings) -> dict[str, dict[str, Any]]:
    path = joined_path(settings)
    if not path.exists():
        return {}
    return {str(k): dict(v) for k, v in json.loads(path.read_text("utf-8")).items()}


def join(
    settings: Settings,
    site: str,
    superlink: str,
    *,
    ca: Path | None = None,
    insecure: bool = False,
    settle: float = 3.0,
) -> dict[str, Any]:
    """On a site's host: start its SuperNode and gate, connecting to ``superlink``.

    The site's key must be registered at the coordinator first (``site-keys`` prints
    the public key to send). Returns the started processes (also kept in joined.json).
    """
    validate_site_name(site)
    joined = read_joined(settings)
    if site in joined and pid_alive(int(joined[site]["pid"])):
        return {**joined[site], "already_up": True}
    site_dir = settings.site_dir(site)
    if not insecure:
        if ca is not None:
            security.install_ca(site_dir, ca)
        elif not security.site_keys_for(site_dir).ca_cert.exists():
            raise ConfigError(
                f"no CA certificate for {site}: pass the coordinator's ca.pem with --ca PATH"
            )
    if not security.approved_bundles(site_dir):
        raise ConfigError(
            f"{site} has approved no app bundle yet, so it would refuse every job; "
            "approve one with `mindcommons federation approve-bundle`"
        )
    fed = settings.federation_dir()
    log_dir, flwr_root = fed / "logs", fed / "flwr"
    log_dir.mkdir(parents=True, exist_ok=True)
    node = _start_node(
        settings, site, superlink, insecure=insecure, log_dir=log_dir, flwr_root=flwr_root
    )
    info: dict[str, Any] = {**node, "superlink": superlink, "log_dir": str(log_dir)}
    joined[site] = info
    joined_path(settings).write_text(json.dumps(joined, indent=2), "utf-8")
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        if not pid_alive(node["pid"]) or not pid_alive(node["exec_pid"]):
            raise PrerequisiteError(
                f"the SuperNode of {site} exited at start; see {log_dir}/supernode-{site}.log"
            )
        time.sleep(0.2)
    return info


def leave(settings: Settings, site: str | None = None, *, grace: float = 10.0) -> list[int]:
    """Stop the SuperNodes ``join`` started on this host (one site, or all)."""
    joined = read_joined(settings)
    chosen = [site] if site else list(joined)
    pids = [int(joined[s][k]) for s in chosen if s in joined for k in ("pid", "exec_pid")]
    stopped = _terminate(pids, grace)
    for s in chosen:
        joined.pop(s, None)
    if joined:
        joined_path(settings).write_text(json.dumps(joined, indent=2), "utf-8")
    else:
        joined_path(settings).unlink(missing_ok=True)
    return stopped


# ---------------------------------------------------------------- one machine


def up(
    settings: Settings,
    sites: list[str] | None = None,
    *,
    timeout: float = CONNECT_TIMEOUT,
    insecure: bool = False,
) -> FederationState:
    """Start the SuperLink and one SuperNode per site on 127.0.0.1; wait until all are online.

    By default with TLS and SuperNode authentication: the certificates and every site's
    key pair are made here, the keys registered, and each site approves the bundle of
    the installed app (all of them live on this machine). ``insecure`` turns TLS and
    node authentication off (development only); the sites' gates stay on.
    """
    current = read_state(settings)
    if current is not None:
        if current.nodes and all(pid_alive(p) for p in current.pids()):
            current.already_up = True
            return current
        down(settings)
    chosen = sorted(sites) if sites else discover_sites(settings)
    if not chosen:
        raise ConfigError(
            f"no sites under {settings.sites_dir()}; ingest data first "
            "(`mindcommons ingest PATH --site NAME`)"
        )
    for site in chosen:
        validate_site_name(site)
    _check_home(settings)
    state = serve(settings, insecure=insecure, timeout=timeout)
    state.remote_sites = []  # on one machine the federation is the sites started here
    _write_state(settings, state)
    fed = settings.federation_dir()
    local_bundle = security.bundle_hash()
    try:
        for site in chosen:
            site_dir = settings.site_dir(site)
            ensure_site_policy(site_dir)
            keys = security.ensure_site_keys(site_dir)
            security.approve_bundle(
                site_dir, local_bundle, note="installed app (federation up on this machine)",
                actor="federation-up",
            )  # fmt: skip
            if not insecure:
                security.install_ca(site_dir, security.pki_for(fed).ca_cert)
                register_node(settings, site, keys.public_key)
                state = read_state(settings) or state
            state.remote_sites = [s for s in state.remote_sites if s != site]
            state.nodes[site] = _start_node(
                settings, site, state.address, insecure=insecure,
                log_dir=Path(state.log_dir), flwr_root=fed / "flwr", cpu_lock=fed / "cpu.lock",
            )  # fmt: skip
            _write_state(settings, state)
        _wait_connected(state, timeout)
    except MindcommonsError:
        down(settings)
        raise
    return state


def _wait_connected(state: FederationState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    online = -1
    while time.monotonic() < deadline:
        dead = [p for p in state.pids() if not pid_alive(p)]
        if dead:
            raise PrerequisiteError(
                f"a federation process exited during start-up (pid {dead[0]}); "
                f"see the logs in {state.log_dir}"
            )
        try:
            online = len(online_nodes(state))
        except Exception:  # the SuperLink may not listen yet
            online = -1
        if online >= len(state.nodes):
            return
        time.sleep(0.5)
    raise PrerequisiteError(
        f"only {max(online, 0)} of {len(state.nodes)} sites connected within {timeout:.0f} s; "
        f"see the logs in {state.log_dir} (superlink.log, supernode-<site>.log)"
    )


def status(settings: Settings) -> dict[str, Any]:
    """Which of our processes are alive and how many nodes the SuperLink sees online."""
    joined = {
        s: {"pid": int(n["pid"]), "superlink": n["superlink"],
            "alive": pid_alive(int(n["pid"])) and pid_alive(int(n["exec_pid"]))}
        for s, n in sorted(read_joined(settings).items())
    }  # fmt: skip
    state = read_state(settings)
    if state is None:
        return {"up": False, "sites": {}, "nodes_online": 0, "joined": joined}
    link_alive = pid_alive(state.superlink_pid)
    online: int | None = None
    online_ids: set[int] = set()
    if link_alive:
        try:
            online_ids = set(online_nodes(state))
            online = len(online_ids)
        except Exception:
            online = None
    registry = security.read_registry(settings.federation_dir())
    sites: dict[str, dict[str, Any]] = {
        s: {"pid": n["pid"], "port": n["port"],
            "alive": pid_alive(n["pid"]) and pid_alive(n.get("exec_pid", n["pid"]))}
        for s, n in sorted(state.nodes.items())
    }  # fmt: skip
    for s in state.remote_sites:
        node_id = int(str(registry.get(s, {}).get("node_id", 0)))
        sites[s] = {"pid": None, "port": None, "alive": node_id in online_ids, "remote": True}
    return {
        "up": link_alive,
        "superlink": {"pid": state.superlink_pid, "alive": link_alive, "address": state.address},
        "tls": not state.insecure,
        "sites": dict(sorted(sites.items())),
        "nodes_online": online,
        "started": state.started,
        "log_dir": state.log_dir,
        "joined": joined,
    }


def _terminate(pids: list[int], grace: float) -> list[int]:
    alive = [p for p in pids if pid_alive(p)]
    for pid in alive:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in alive):
        _reap(alive)
        time.sleep(0.2)
    for pid in alive:
        if pid_alive(pid):
            _signal_group(pid, signal.SIGKILL)
    _reap(alive)
    return alive


def down(settings: Settings, *, grace: float = 10.0) -> list[int]:
    """Terminate the process groups we started here (then kill); remove the state."""
    stopped = leave(settings, grace=grace) if read_joined(settings) else []
    state = read_state(settings)
    if state is None:
        return stopped
    stopped += _terminate(state.pids(), grace)
    state_path(settings).unlink(missing_ok=True)
    node_cache_path(settings).unlink(missing_ok=True)
    return stopped


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Each process was started in its own session: its pgid equals its pid, so this
    # reaches its children (flwr-serverapp / flwr-clientapp) and nothing else.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _reap(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

"""Local federation launcher: one Flower SuperLink and one SuperNode per site on 127.0.0.1."""

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

from mindcommons.errors import ConfigError, PrerequisiteError
from mindcommons.policy import ensure_site_policy
from mindcommons.settings import Settings, validate_site_name

CONNECTION = "mindcommons"  # name of the SuperLink connection in our private Flower config
CONNECT_TIMEOUT = 60.0


@dataclass
class FederationState:
    """What ``up`` started: written to ``<federation_dir>/state.json``."""

    superlink_pid: int
    superlink_port: int
    nodes: dict[str, dict[str, int]]  # site -> {"pid": ..., "port": ...}
    started: str
    flwr_home: str
    log_dir: str
    already_up: bool = field(default=False, compare=False)

    @property
    def sites(self) -> list[str]:
        return sorted(self.nodes)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.superlink_port}"

    def pids(self) -> list[int]:
        return [self.superlink_pid, *(n["pid"] for n in self.nodes.values())]

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
            nodes={
                k: {"pid": int(v["pid"]), "port": int(v["port"])} for k, v in data["nodes"].items()
            },
            started=str(data["started"]),
            flwr_home=str(data["flwr_home"]),
            log_dir=str(data["log_dir"]),
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
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


def write_flwr_config(flwr_home: Path, port: int) -> None:
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{port}"\ninsecure = true\n',
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


def up(
    settings: Settings, sites: list[str] | None = None, *, timeout: float = CONNECT_TIMEOUT
) -> FederationState:
    """Start the SuperLink and one SuperNode per site; return when every node is online."""
    current = read_state(settings)
    if current is not None:
        if all(pid_alive(p) for p in current.pids()):
            current.already_up = True
            return current
        down(settings)
    chosen = sorted(sites) if sites else discover_sites(settings)
    if not chosen:
        raise ConfigError(
            f"no sites under {settings.sites_dir()}; ingest data first "
            "(`mindcommons ingest PATH --site NAME`)"
        )
    home = settings.resolved_home()
    if "'" in str(home) or '"' in str(home):
        raise ConfigError(f"the home folder '{home}' must not contain quotes (Flower node config)")
    fed = settings.federation_dir()
    log_dir, flwr_root = fed / "logs", fed / "flwr"
    log_dir.mkdir(parents=True, exist_ok=True)
    node_cache_path(settings).unlink(missing_ok=True)
    link_port = free_port()
    cli_home = flwr_root / "cli"
    write_flwr_config(cli_home, link_port)
    link_pid = _spawn(
        [
            flwr_bin("flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
            "--host", "127.0.0.1", "--port", str(link_port),
            "--database", str(fed / "superlink.db"),
        ],
        log_dir / "superlink.log", flwr_env(flwr_root / "superlink"), flwr_root / "superlink",
    )  # fmt: skip
    state = FederationState(
        superlink_pid=link_pid, superlink_port=link_port, nodes={},
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        flwr_home=str(cli_home), log_dir=str(log_dir),
    )  # fmt: skip
    state_path(settings).write_text(json.dumps(state.to_json(), indent=2), encoding="utf-8")
    for site in chosen:
        validate_site_name(site)
        ensure_site_policy(settings.site_dir(site))
        port = free_port()
        node_config = f"site='{site}' home='{home}'"
        env = flwr_env(flwr_root / site)
        # Sites co-located on one machine take turns on the CPU, each with every core:
        # faster than running their models at once on a share of the cores.
        env.setdefault("MINDCOMMONS_CPU_LOCK", str(settings.federation_dir() / "cpu.lock"))
        pid = _spawn(
            [
                flwr_bin("flower-supernode"), "--insecure", "--superlink", state.address,
                "--node-config", node_config, "--host", "127.0.0.1", "--port", str(port),
            ],
            log_dir / f"supernode-{site}.log", env, flwr_root / site,
        )  # fmt: skip
        state.nodes[site] = {"pid": pid, "port": port}
        state_path(settings).write_text(json.dumps(state.to_json(), indent=2), encoding="utf-8")
    _wait_connected(state, timeout)
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


def online_nodes(state: FederationState) -> list[int]:
    """Node ids the SuperLink reports as online (asks its Control API)."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from flwr.cli.typing import SuperLinkConnection
    from flwr.cli.utils import init_http_client_from_connection
    from flwr.proto.control_pb2 import ListNodesRequest

    conn = SuperLinkConnection(name=CONNECTION, address=state.address, insecure=True)
    with contextlib.redirect_stdout(io.StringIO()):  # flwr prints "Using SuperLink ..."
        client = init_http_client_from_connection(conn)
    try:
        res = client.ListNodes(ListNodesRequest())
    finally:
        client.close()
    return [int(n.node_id) for n in res.nodes_info if n.status == "online"]


def status(settings: Settings) -> dict[str, Any]:
    """Which of our processes are alive and how many nodes the SuperLink sees online."""
    state = read_state(settings)
    if state is None:
        return {"up": False, "sites": {}, "nodes_online": 0}
    link_alive = pid_alive(state.superlink_pid)
    online: int | None = None
    if link_alive:
        try:
            online = len(online_nodes(state))
        except Exception:
            online = None
    return {
        "up": link_alive,
        "superlink": {"pid": state.superlink_pid, "alive": link_alive, "address": state.address},
        "sites": {
            s: {"pid": n["pid"], "port": n["port"], "alive": pid_alive(n["pid"])}
            for s, n in sorted(state.nodes.items())
        },
        "nodes_online": online,
        "started": state.started,
        "log_dir": state.log_dir,
    }


def down(settings: Settings, *, grace: float = 10.0) -> list[int]:
    """Terminate the process groups of the PIDs in state.json (then kill); remove the state."""
    state = read_state(settings)
    if state is None:
        return []
    pids = [p for p in state.pids() if pid_alive(p)]
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        _reap(pids)
        time.sleep(0.2)
    for pid in pids:
        if pid_alive(pid):
            _signal_group(pid, signal.SIGKILL)
    _reap(pids)
    state_path(settings).unlink(missing_ok=True)
    node_cache_path(settings).unlink(missing_ok=True)
    return pids


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

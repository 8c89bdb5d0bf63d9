"""Across machines: a coordinator and two sites as three hosts (Linux network namespaces
on one bridge, each with its own address and its own MINDCOMMONS_HOME), TLS and
SuperNode authentication on, as in docs/deploy.md. Needs root for ``ip netns``; where
namespaces cannot be made, the hosts fall back to loopback addresses (127.0.0.2-4) with
separate home folders.

scripts/netns-federation.sh runs the same arrangement through the CLI, step by step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mindcommons.federation import launcher, security
from mindcommons.governance import AuditLog
from mindcommons.settings import Settings, load_settings
from test_federation import make_home


def load_home(root: Path) -> Settings:
    return load_settings(root / "home")


@dataclass
class Host:
    name: str
    address: str
    prefix: list[str]  # how to run a command "on" this host

    def python(self, code: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(
            [*self.prefix, sys.executable, "-c", code],
            capture_output=True, text=True, env=env, timeout=timeout, check=False,
        )  # fmt: skip
        assert out.returncode == 0, f"{self.name}: {out.stderr[-3000:]}"
        return out


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _netns_hosts(prefix: str, net: str) -> list[Host]:
    bridge = f"{prefix}br"
    _ip("link", "add", bridge, "type", "bridge")
    _ip("link", "set", bridge, "up")
    hosts = []
    for i, name in enumerate(("coord", "site-a", "site-b"), start=1):
        ns = f"{prefix}-{name}"
        _ip("netns", "add", ns)
        _ip("link", "add", f"{prefix}v{i}", "type", "veth", "peer", "name", f"{prefix}p{i}")
        _ip("link", "set", f"{prefix}v{i}", "master", bridge, "up")
        _ip("link", "set", f"{prefix}p{i}", "netns", ns)
        _ip("-n", ns, "addr", "add", f"{net}.{i}/24", "dev", f"{prefix}p{i}")
        _ip("-n", ns, "link", "set", f"{prefix}p{i}", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        hosts.append(Host(name, f"{net}.{i}", ["ip", "netns", "exec", ns]))
    return hosts


def _remove_netns(prefix: str) -> None:
    for name in ("coord", "site-a", "site-b"):
        subprocess.run(["ip", "netns", "del", f"{prefix}-{name}"], capture_output=True)
    subprocess.run(["ip", "link", "del", f"{prefix}br"], capture_output=True)


@pytest.fixture
def hosts() -> Iterator[tuple[str, list[Host]]]:
    prefix = f"mt{os.getpid() % 100000}"
    net = f"10.78.{os.getpid() % 200 + 20}"
    try:
        if os.environ.get("MINDCOMMONS_TEST_NO_NETNS"):  # force the fallback
            raise FileNotFoundError("ip netns not wanted")
        made = _netns_hosts(prefix, net)
        mode = "netns"
    except (subprocess.CalledProcessError, FileNotFoundError):
        _remove_netns(prefix)  # not root / no netns: three loopback addresses instead
        # (sites only dial out, so their addresses are labels; the coordinator's 127.0.0.2
        # is not in the default certificate names, so its SAN is still exercised)
        made = [Host(n, f"127.0.0.{i}", []) for i, n in enumerate(("coord", "a", "b"), 2)]
        mode = "loopback"
    try:
        yield mode, made
    finally:
        if mode == "netns":
            _remove_netns(prefix)


@pytest.mark.slow
def test_coordinator_and_two_sites_on_their_own_addresses(
    hosts: tuple[str, list[Host]], tmp_path: Path
) -> None:
    mode, (coord, host_a, host_b) = hosts
    port = 9092 if mode == "netns" else launcher.free_port()  # own port space per netns
    c_home = load_home(tmp_path / "coordinator")
    a = make_home(tmp_path / "site-a-host", {"site-a": 2})
    b = make_home(tmp_path / "site-b-host", {"site-b": 3})
    transfer = tmp_path / "transfer"  # what stewards send each other (public material only)
    transfer.mkdir()
    try:
        # each site: its key pair and its approval of the installed app's bundle
        for settings, site in ((a, "site-a"), (b, "site-b")):
            keys = security.ensure_site_keys(settings.site_dir(site))
            security.approve_bundle(settings.site_dir(site), security.bundle_hash())
            (transfer / f"{site}.pub").write_bytes(keys.public_key.read_bytes())
        # coordinator: its CA and SuperLink certificate for its own address
        pki = security.init_ca(c_home.federation_dir(), [coord.address])
        (transfer / "ca.pem").write_bytes(pki.ca_cert.read_bytes())
        coord.python(
            "from pathlib import Path\n"
            "from mindcommons.federation import launcher\n"
            "from mindcommons.settings import load_settings\n"
            f"s = load_settings(Path({str(c_home.resolved_home())!r}))\n"
            f"launcher.serve(s, host={coord.address!r}, port={port})\n"
            f"launcher.register_node(s, 'site-a', Path({str(transfer / 'site-a.pub')!r}))\n"
            f"launcher.register_node(s, 'site-b', Path({str(transfer / 'site-b.pub')!r}))\n"
        )
        for host, settings, site in ((host_a, a, "site-a"), (host_b, b, "site-b")):
            host.python(
                "from pathlib import Path\n"
                "from mindcommons.federation import launcher\n"
                "from mindcommons.settings import load_settings\n"
                f"s = load_settings(Path({str(settings.resolved_home())!r}))\n"
                f"launcher.join(s, {site!r}, '{coord.address}:{port}',"
                f" ca=Path({str(transfer / 'ca.pem')!r}))\n"
            )
        out = coord.python(
            "import json, time\n"
            "from pathlib import Path\n"
            "from mindcommons.federation import launcher\n"
            "from mindcommons.federation.runner import run_job\n"
            "from mindcommons.settings import load_settings\n"
            f"s = load_settings(Path({str(c_home.resolved_home())!r}))\n"
            "state = launcher.read_state(s)\n"
            "deadline = time.monotonic() + 90\n"
            "while len(launcher.online_nodes(state)) < 2 and time.monotonic() < deadline:\n"
            "    time.sleep(0.5)\n"
            "result = run_job(s, {'job': 'count'}, timeout=90)\n"
            "print(json.dumps({'online': launcher.online_nodes(state), 'result': result}))\n"
        )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        result = data["result"]
        assert result["missing"] == {}, result["missing"]
        assert {s: p["document"] for s, p in result["payloads"].items()} == {
            "site-a": 2, "site-b": 3,
        }  # fmt: skip
        registry = security.read_registry(c_home.federation_dir())
        assert sorted(data["online"]) == sorted(int(str(r["node_id"])) for r in registry.values())
        link_log = (c_home.federation_dir() / "logs" / "superlink.log").read_text()
        assert f"Uvicorn running on https://{coord.address}:{port}" in link_log
        # each site really is elsewhere: its SuperNode connected to the coordinator's
        # address, its job is in its own audit log, and nothing of it is on the coordinator
        for settings, site in ((a, "site-a"), (b, "site-b")):
            node_log = (settings.federation_dir() / "logs" / f"supernode-{site}.log").read_text()
            assert "Failed to activate" not in node_log
            events = list(AuditLog.for_site(settings.site_dir(site)).entries())
            assert events[-1].kind == "release" and events[-1].subject == "job:count"
            assert not c_home.site_dir(site).exists()
        assert mode in ("netns", "loopback")
    finally:
        launcher.leave(a)
        launcher.leave(b)
        launcher.down(c_home)

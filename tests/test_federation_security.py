"""Federation security: certificates, node keys, approved bundles (unit) and, with real
Flower processes on 127.0.0.1 (slow): a TLS federation, a SuperNode without a registered
key, and jobs from a bundle the site has not approved (including one whose ClientApp
points at the bundle's own code)."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mindcommons.errors import ConfigError, InputError, PolicyError
from mindcommons.federation import client_app, gate, launcher, runner, security
from mindcommons.governance import AuditLog
from mindcommons.settings import Settings
from test_federation import make_home, run_cli

APP_DIR = Path(security.__file__).parent / "flwr_app"


# ---------------------------------------------------------------- unit


def test_ca_and_superlink_certificate(tmp_path: Path) -> None:
    pki = security.init_ca(tmp_path, ["10.77.0.1", "coord.example"])
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)  # raises if the signature does not check
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.77.0.1"),
    }  # fmt: skip
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "coord.example"}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for secret in (pki.ca_key, pki.server_key):
        assert secret.stat().st_mode & 0o077 == 0, secret
    ca_bytes, cert_bytes = pki.ca_cert.read_bytes(), pki.server_cert.read_bytes()
    security.init_ca(tmp_path, ["10.77.0.1"])  # nothing new: nothing changes
    assert pki.server_cert.read_bytes() == cert_bytes
    security.init_ca(tmp_path, ["10.77.0.9"])  # a new address: new server cert, same CA
    assert pki.ca_cert.read_bytes() == ca_bytes
    assert pki.server_cert.read_bytes() != cert_bytes
    assert {"10.77.0.1", "10.77.0.9", "coord.example"} <= set(security.server_names(pki))
    with pytest.raises(ConfigError, match="neither an IP address nor a host name"):
        security.init_ca(tmp_path, ["bad name!"])


def test_site_keys_are_flower_compatible_and_private(tmp_path: Path) -> None:
    from flwr.cli.supernode.register import try_load_public_key

    site_dir = tmp_path / "site-a"
    keys = security.ensure_site_keys(site_dir)
    private = serialization.load_ssh_private_key(keys.private_key.read_bytes(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.curve.name == "secp384r1"
    assert keys.private_key.stat().st_mode & 0o077 == 0
    assert keys.exec_secret.stat().st_mode & 0o077 == 0
    pem = try_load_public_key(keys.public_key)  # what `flwr supernode register` reads
    assert pem == security.public_key_pem(security.load_public_key(keys.public_key))
    before = keys.private_key.read_bytes()
    assert security.ensure_site_keys(site_dir).private_key.read_bytes() == before  # kept
    assert security.load_public_key(security.ensure_site_keys(tmp_path / "b").public_key) != (
        security.load_public_key(keys.public_key)
    )
    (tmp_path / "rsa.pub").write_text("ssh-rsa AAAA not-a-key\n")
    with pytest.raises(InputError, match=r"rsa\.pub"):
        security.load_public_key(tmp_path / "rsa.pub")


def test_bundle_hash_is_what_flwr_builds_and_follows_content(tmp_path: Path) -> None:
    from flwr.cli.build import build_fab_from_disk

    digest = security.bundle_hash()
    assert digest == hashlib.sha256(build_fab_from_disk(APP_DIR)).hexdigest()
    assert security.bundle_hash(APP_DIR) == digest  # deterministic
    copy = tmp_path / "app"
    shutil.copytree(APP_DIR, copy)
    (copy / "pyproject.toml").write_text(
        (copy / "pyproject.toml").read_text().replace('job = "count"', 'job = "evaluate"')
    )
    assert security.bundle_hash(copy) != digest


def test_approved_bundles_are_the_sites_own_audited_list(tmp_path: Path) -> None:
    site_dir = tmp_path / "site-a"
    content = b"a bundle"
    digest = hashlib.sha256(content).hexdigest()
    with pytest.raises(PolicyError, match="not approved at site-a"):
        security.check_bundle(site_dir, content)
    assert security.approve_bundle(site_dir, digest.upper(), note="v1", actor="steward")
    assert not security.approve_bundle(site_dir, "sha256:" + digest)  # already there
    assert security.approved_bundles(site_dir) == [digest]
    assert security.check_bundle(site_dir, content, digest) == digest
    with pytest.raises(PolicyError, match="does not match its announced hash"):
        security.check_bundle(site_dir, content, "0" * 64)
    assert security.revoke_bundle(site_dir, digest, actor="steward")
    assert security.approved_bundles(site_dir) == []
    with pytest.raises(PolicyError):
        security.check_bundle(site_dir, content)
    kinds = [(e.kind, e.subject) for e in AuditLog.for_site(site_dir).entries()]
    assert kinds == [("approval", f"bundle:{digest}"), ("revocation", f"bundle:{digest}")]
    with pytest.raises(ConfigError, match="not a SHA-256 bundle hash"):
        security.approve_bundle(site_dir, "abc")
    (site_dir / security.APPROVED_FILE).write_text(f"{digest}\nnot-a-hash\n")
    with pytest.raises(InputError, match="line 2"):
        security.approved_bundles(site_dir)


def test_client_app_outside_the_gate_refuses_and_audits(tmp_path: Path) -> None:
    settings = make_home(tmp_path, {"site-a": 1})
    assert gate.verified_bundle() is None  # this process was not started by the gate
    out = client_app._ungated("site-a", settings.resolved_home(), {"job": "count", "run_id": "r1"})
    assert out["status"] == "refused" and out["payload"] == {}
    assert "only through its gate" in out["reason"]
    last = list(AuditLog.for_site(settings.site_dir("site-a")).entries())[-1]
    assert (last.kind, last.actor, last.subject) == ("job_refused", "coordinator:r1", "job:count")


@pytest.mark.slow  # two CLI processes
def test_cli_approve_then_join_needs_the_coordinators_ca(tmp_path: Path) -> None:
    settings = make_home(tmp_path, {"site-a": 1})
    home, site_dir = settings.resolved_home(), settings.site_dir("site-a")
    with pytest.raises(ConfigError, match="approved no app bundle"):
        launcher.join(settings, "site-a", "10.0.0.1:9092", insecure=True)
    out = run_cli("federation", "approve-bundle", "--site", "site-a", home=home)
    assert out.returncode == 0, out.stderr
    assert f"bundle {security.bundle_hash()} approved" in out.stdout
    assert security.approved_bundles(site_dir) == [security.bundle_hash()]
    joined = run_cli(
        "federation", "join", "--site", "site-a", "--superlink", "10.0.0.1:9092", home=home
    )
    assert joined.returncode == ConfigError.exit_code
    assert "pass the coordinator's ca.pem with --ca PATH" in joined.stderr
    assert "Traceback" not in joined.stderr
    assert not launcher.read_joined(settings)  # nothing was started


# ---------------------------------------------------------------- real processes


@pytest.fixture(scope="module")
def tls_fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = make_home(tmp_path_factory.mktemp("tls"), {"site-a": 2, "site-b": 3})
    try:
        launcher.up(settings)
        yield settings
    finally:
        launcher.down(settings)


@pytest.mark.slow
def test_tls_federation_runs_a_count_job(tls_fed: Settings) -> None:
    state = launcher.read_state(tls_fed)
    assert state is not None and not state.insecure
    cli_config = (Path(state.flwr_home) / "config.toml").read_text()
    assert "root-certificates" in cli_config and "insecure" not in cli_config
    assert "Uvicorn running on https://127.0.0.1" in (
        Path(state.log_dir) / "superlink.log"
    ).read_text(errors="replace")
    # the sites' keys are registered and the coordinator names nodes by them
    registry = security.read_registry(tls_fed.federation_dir())
    assert sorted(registry) == ["site-a", "site-b"]
    assert sorted(set(launcher.online_nodes(state))) == sorted(
        int(str(r["node_id"])) for r in registry.values()
    )
    with pytest.raises(Exception):  # noqa: B017 -- plain HTTP is not served
        launcher.online_nodes(dataclasses.replace(state, insecure=True))

    assert launcher.status(tls_fed)["tls"] is True
    result = runner.run_job(tls_fed, {"job": "count"}, timeout=90)
    assert result["missing"] == {}
    assert {s: p["document"] for s, p in result["payloads"].items()} == {"site-a": 2, "site-b": 3}


def _hostile_app(root: Path, marker: Path) -> Path:
    """Our app bundle, except that its ClientApp is code shipped inside the bundle."""
    app = root / "hostile_app"
    app.mkdir()
    text = (APP_DIR / "pyproject.toml").read_text()
    text = text.replace(
        'clientapp = "mindcommons.federation.client_app:app"', 'clientapp = "evil_client:app"'
    )
    assert "evil_client" in text
    (app / "pyproject.toml").write_text(text)
    (app / "evil_client.py").write_text(
        "from pathlib import Path\n"
        "from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict\n"
        "from flwr.clientapp import ClientApp\n"
        f"Path({str(marker)!r}).write_text('bundle code ran at a site')\n"
        "app = ClientApp()\n"
        "@app.query('job')\n"
        "def job(message, context):\n"
        "    meta = ConfigRecord({'site': str(context.node_config['site']), 'status': 'ok',\n"
        "                         'reason': '', 'seconds': 0.0})\n"
        "    return Message(RecordDict({'reply': meta,\n"
        "                   'metrics': MetricRecord({'document': 999})}), reply_to=message)\n"
    )
    return app


@pytest.mark.slow
def test_unapproved_bundle_is_refused_and_audited(
    tls_fed: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "marker.txt"
    hostile = _hostile_app(tmp_path, marker)
    digest = security.bundle_hash(hostile)
    assert digest != security.bundle_hash()
    monkeypatch.setattr(runner, "APP_DIR", hostile)  # the coordinator sends another bundle
    # site-a's steward approved that bundle, site-b's did not
    assert security.approve_bundle(tls_fed.site_dir("site-a"), digest, actor="steward")

    result = runner.run_job(tls_fed, {"job": "count"}, sites=["site-a", "site-b"], timeout=90)
    assert "is not approved at site-b" in result["missing"]["site-b"], result["missing"]
    events = list(AuditLog.for_site(tls_fed.site_dir("site-b")).entries())
    assert (events[-1].kind, events[-1].subject) == ("job_refused", f"bundle:{digest}")
    assert events[-1].details["fab_id"] == "mindcommons/mindcommons-federation"
    assert AuditLog.for_site(tls_fed.site_dir("site-b")).verify().ok
    # site-a answers -- with its INSTALLED ClientApp, never the one inside the bundle
    assert result["sites_ok"] == ["site-a"]
    assert result["payloads"]["site-a"]["document"] == 2  # not the bundle's 999
    assert not marker.exists()  # the bundle's code was never imported at any site


@pytest.mark.slow
def test_supernode_without_registered_key_is_rejected(tls_fed: Settings) -> None:
    state = launcher.read_state(tls_fed)
    assert state is not None
    before = set(launcher.online_nodes(state))
    intruder = tls_fed.site_dir("site-x")
    security.ensure_site_keys(intruder)  # a valid key pair, never registered
    security.install_ca(intruder, security.pki_for(tls_fed.federation_dir()).ca_cert)
    security.approve_bundle(intruder, security.bundle_hash())
    logs = tls_fed.federation_dir() / "intruder-logs"
    logs.mkdir()
    node = launcher._start_node(
        tls_fed, "site-x", state.address, insecure=False, log_dir=logs,
        flwr_root=tls_fed.federation_dir() / "intruder-flwr",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and launcher.pid_alive(node["pid"]):
            time.sleep(0.5)
        assert not launcher.pid_alive(node["pid"]), "the unregistered SuperNode kept running"
        assert "Failed to activate SuperNode" in (logs / "supernode-site-x.log").read_text()
        link_log = (Path(state.log_dir) / "superlink.log").read_text(errors="replace")
        assert "No SuperNode found with the given public key" in link_log
        assert set(launcher.online_nodes(state)) == before
        # the same key, once registered, is let in (so the refusal was about the key)
        node_id = launcher.register_node(tls_fed, "site-x", intruder / "federation" / "node.pub")
        node = launcher._start_node(
            tls_fed, "site-x", state.address, insecure=False, log_dir=logs,
            flwr_root=tls_fed.federation_dir() / "intruder-flwr",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and node_id not in launcher.online_nodes(state):
            time.sleep(0.5)
        assert node_id in launcher.online_nodes(state)
        cache = json.loads(launcher.node_cache_path(tls_fed).read_text())
        assert cache[str(node_id)] == "site-x"
    finally:
        launcher._terminate([node["pid"], node["exec_pid"]], 10)

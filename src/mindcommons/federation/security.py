"""Federation security material: TLS certificates, SuperNode keys, approved app bundles.

Three things protect a deployment (see docs/deploy.md):

* **TLS.** The coordinator holds a small certificate authority (``<federation>/pki``)
  and a SuperLink certificate whose subject alternative names list every address the
  sites use (always ``127.0.0.1`` and ``localhost``). Sites get only ``ca.pem``.
* **SuperNode authentication.** Each site holds an EC P-384 key pair in its own folder
  (``<site>/federation/node.key``, never sent anywhere); the coordinator registers the
  public half with its SuperLink, which then refuses any SuperNode whose requests are
  not signed by a registered key.
* **Approved app bundles.** A site lists the SHA-256 hashes of the Flower app bundles
  (FABs) it accepts in ``<site>/approved_bundles.txt``; the site's gate
  (``federation.gate``) refuses any other bundle before any of its content is used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mindcommons.errors import ConfigError, InputError, PolicyError
from mindcommons.governance import EventKind, record_event

PKI_DIR = "pki"
CA_CERT, CA_KEY = "ca.pem", "ca.key"
SERVER_CERT, SERVER_KEY = "superlink.pem", "superlink.key"
SITE_FED_DIR = "federation"  # inside a site's folder
NODE_KEY, NODE_PUB = "node.key", "node.pub"
SITE_CA = "ca.pem"  # the coordinator's CA certificate, as the site received it
EXEC_SECRET = "exec.secret"
APPROVED_FILE = "approved_bundles.txt"
REGISTRY_FILE = "registered_nodes.json"  # coordinator: site -> node id and key fingerprint
DEFAULT_NAMES = ("127.0.0.1", "localhost")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_CURVE = ec.SECP384R1()


# ---------------------------------------------------------------- files


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file with mode 0600 from the start, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# ---------------------------------------------------------------- TLS (coordinator)


@dataclass(frozen=True)
class Pki:
    """Where the coordinator's TLS material lives."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / CA_CERT

    @property
    def ca_key(self) -> Path:
        return self.root / CA_KEY

    @property
    def server_cert(self) -> Path:
        return self.root / SERVER_CERT

    @property
    def server_key(self) -> Path:
        return self.root / SERVER_KEY

    def exists(self) -> bool:
        return all(p.exists() for p in (self.ca_cert, self.ca_key, self.server_cert))


def pki_for(federation_dir: Path) -> Pki:
    return Pki(federation_dir / PKI_DIR)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", name):
        raise ConfigError(
            f"'{name}' is neither an IP address nor a host name; give the address the "
            "sites use to reach the coordinator (e.g. --address 10.0.0.1)"
        )
    return x509.DNSName(name)


def server_names(pki: Pki) -> list[str]:
    """The addresses the current SuperLink certificate is valid for."""
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in san]


def init_ca(federation_dir: Path, addresses: list[str] | None = None) -> Pki:
    """Create the CA (once) and a SuperLink certificate for ``addresses`` + the loopback.

    Idempotent: the CA is kept; the server certificate is re-issued only when it does
    not yet cover every address asked for (sites keep trusting the same ``ca.pem``).
    """
    pki = pki_for(federation_dir)
    wanted = list(dict.fromkeys([*DEFAULT_NAMES, *(addresses or [])]))
    general = [_general_name(n) for n in wanted]
    now = dt.datetime.now(dt.UTC)
    if pki.ca_cert.exists() and pki.ca_key.exists():
        ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{pki.ca_key}: not an EC private key (remove {pki.root})")
    else:
        ca_key = ec.generate_private_key(_CURVE)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mindcommons"),
                x509.NameAttribute(
                    NameOID.COMMON_NAME, f"mindcommons federation CA {secrets.token_hex(4)}"
                ),
            ]
        )
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA384())
        )
        _write_private(
            pki.ca_key,
            ca_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        _write_public(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
        pki.server_cert.unlink(missing_ok=True)
    if pki.server_cert.exists() and pki.server_key.exists():
        have = set(server_names(pki))
        if all(str(g.value) in have for g in general):
            return pki
        wanted = list(dict.fromkeys([*have, *wanted]))  # keep the names it had
        general = [_general_name(n) for n in wanted]
    key = ec.generate_private_key(_CURVE)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mindcommons superlink")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(general), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA384())
    )
    _write_private(
        pki.server_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )
    _write_public(pki.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return pki


def ca_fingerprint(cert_path: Path) -> str:
    """SHA-256 of a certificate (DER), for stewards to compare over the phone."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


# ---------------------------------------------------------------- site keys


@dataclass(frozen=True)
class SiteKeys:
    """A site's federation folder: its SuperNode key pair and the coordinator's CA."""

    root: Path

    @property
    def private_key(self) -> Path:
        return self.root / NODE_KEY

    @property
    def public_key(self) -> Path:
        return self.root / NODE_PUB

    @property
    def ca_cert(self) -> Path:
        return self.root / SITE_CA

    @property
    def exec_secret(self) -> Path:
        return self.root / EXEC_SECRET


def site_keys_for(site_dir: Path) -> SiteKeys:
    return SiteKeys(site_dir / SITE_FED_DIR)


def ensure_site_keys(site_dir: Path) -> SiteKeys:
    """The site's SuperNode key pair (EC P-384, OpenSSH format), created once."""
    keys = site_keys_for(site_dir)
    if not keys.private_key.exists():
        key = ec.generate_private_key(_CURVE)
        _write_private(
            keys.private_key,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            ),
        )
        keys.public_key.unlink(missing_ok=True)
    if not keys.public_key.exists():
        loaded = serialization.load_ssh_private_key(keys.private_key.read_bytes(), None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{keys.private_key}: not an EC key; remove it to make a new pair")
        pub = loaded.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        _write_public(keys.public_key, pub + f" mindcommons-{site_dir.name}\n".encode())
    if not keys.exec_secret.exists():
        _write_private(keys.exec_secret, secrets.token_hex(32).encode())
    return keys


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """A SuperNode public key file (OpenSSH ``ecdsa-sha2-nistp384 ...`` or PEM)."""
    if not path.is_file():
        raise InputError("no such file", file=str(path), expected="a public key file (node.pub)")
    data = path.read_bytes()
    try:
        key = (
            serialization.load_pem_public_key(data)
            if data.lstrip().startswith(b"-----")
            else serialization.load_ssh_public_key(data)
        )
    except (ValueError, TypeError):
        raise InputError(
            "not a public key", file=str(path), expected="'ecdsa-sha2-nistp384 ...'"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(
            "not an EC public key", file=str(path), expected="an EC P-384 key (node.pub)"
        )
    return key


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """The form the SuperLink stores (PEM SubjectPublicKeyInfo)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    return hashlib.sha256(public_key_pem(key)).hexdigest()


def install_ca(site_dir: Path, ca_cert: Path) -> Path:
    """Copy the coordinator's CA certificate into the site's federation folder."""
    try:
        x509.load_pem_x509_certificate(ca_cert.read_bytes())
    except (OSError, ValueError):
        raise InputError(
            "not a certificate", file=str(ca_cert), expected="the coordinator's PEM ca.pem"
        ) from None
    dest = site_keys_for(site_dir).ca_cert
    if ca_cert.resolve() != dest.resolve():
        _write_public(dest, ca_cert.read_bytes())
    return dest


# ---------------------------------------------------------------- node registry (coordinator)


def read_registry(federation_dir: Path) -> dict[str, dict[str, object]]:
    path = federation_dir / REGISTRY_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): dict(v) for k, v in data.items()}


def record_registration(federation_dir: Path, site: str, node_id: int, fingerprint: str) -> None:
    reg = read_registry(federation_dir)
    reg[site] = {"node_id": int(node_id), "key_sha256": fingerprint}
    _write_public(
        federation_dir / REGISTRY_FILE, json.dumps(reg, indent=2, sort_keys=True).encode()
    )


# ---------------------------------------------------------------- approved app bundles


def bundle_bytes(app_dir: Path) -> bytes:
    """The FAB ``flwr run`` builds from ``app_dir`` (deterministic: fixed zip dates)."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from flwr.cli.build import build_fab_from_disk

    return build_fab_from_disk(app_dir)


def bundle_hash(app_dir: Path | None = None) -> str:
    """SHA-256 of the app bundle built from ``app_dir`` (default: the installed app)."""
    if app_dir is None:
        app_dir = Path(__file__).parent / "flwr_app"
    return hashlib.sha256(bundle_bytes(app_dir)).hexdigest()


def normalise_hash(value: str) -> str:
    text = value.strip().lower().removeprefix("sha256:")
    if not _HASH.match(text):
        raise ConfigError(
            f"'{value}' is not a SHA-256 bundle hash (64 hex digits); print the installed "
            "bundle's hash with `mindcommons federation bundle-hash`"
        )
    return text


def approved_bundles(site_dir: Path) -> list[str]:
    """Hashes the site accepts, from ``approved_bundles.txt`` (``# comments`` allowed)."""
    path = site_dir / APPROVED_FILE
    if not path.exists():
        return []
    out: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _HASH.match(line.lower()):
            raise InputError(
                "not a bundle hash",
                file=str(path),
                record=number,
                expected="one 64-hex-digit SHA-256 hash per line",
            )
        out.append(line.lower())
    return out


def approve_bundle(site_dir: Path, digest: str, *, note: str = "", actor: str = "") -> bool:
    """Add ``digest`` to the site's approved list (audited); False if it was there."""
    digest = normalise_hash(digest)
    if digest in approved_bundles(site_dir):
        return False
    path = site_dir / APPROVED_FILE
    old = path.read_text(encoding="utf-8") if path.exists() else (
        "# Flower app bundles (FAB SHA-256) this site runs jobs from.\n"
        "# Managed by `mindcommons federation approve-bundle`; one hash per line.\n"
    )  # fmt: skip
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    clean_note = " ".join(note.split())[:120]
    line = f"{digest}  # approved {stamp}{' ' + clean_note if clean_note else ''}\n"
    record_event(
        site_dir, EventKind.APPROVAL, actor=actor or None,
        subject=f"bundle:{digest}", details={"label": clean_note} if clean_note else None,
    )  # fmt: skip
    _write_public(path, (old if old.endswith("\n") else old + "\n").encode() + line.encode())
    return True


def revoke_bundle(site_dir: Path, digest: str, *, actor: str = "") -> bool:
    """Remove ``digest`` from the approved list (audited); False if it was not there."""
    digest = normalise_hash(digest)
    path = site_dir / APPROVED_FILE
    if digest not in approved_bundles(site_dir):
        return False
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if line.split("#", 1)[0].strip().lower() != digest
    ]
    record_event(site_dir, EventKind.REVOCATION, actor=actor or None, subject=f"bundle:{digest}")
    _write_public(path, "".join(kept).encode())
    return True


def check_bundle(site_dir: Path, content: bytes, claimed_hash: str = "") -> str:
    """The bundle's SHA-256 if the site approved it; else PolicyError (nothing audited)."""
    digest = hashlib.sha256(content).hexdigest()
    if claimed_hash and claimed_hash.lower() != digest:
        raise PolicyError(
            f"refused: app bundle content does not match its announced hash at {site_dir.name}"
        )
    if digest not in approved_bundles(site_dir):
        raise PolicyError(
            f"refused: app bundle sha256:{digest[:16]}... is not approved at {site_dir.name} "
            "(the steward approves it with `mindcommons federation approve-bundle`)"
        )
    return digest

"""Document text at rest: AES-256-GCM under a keyring file kept outside the database.

The keyring (``<site_dir>/text.keys``, mode 0600, or ``$MINDCOMMONS_TEXT_KEY_FILE``) is
JSON: ``{"version": 1, "current": ID, "keys": {ID: base64}, "hash_key": base64}``. Each
ciphertext is ``base64(nonce || AES-GCM(text))`` with a random 96-bit nonce, stored with
the id of its key; the associated data is the document's natural key, so a ciphertext
moved to another row does not decrypt. ``content_hash`` is an HMAC under ``hash_key``
(kept across rotations), so a guessed text cannot be confirmed from the database alone.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from mindcommons.errors import ConfigError, PrerequisiteError

KEY_FILE = "text.keys"
KEY_FILE_ENV = "MINDCOMMONS_TEXT_KEY_FILE"
NONCE_LEN = 12


class DecryptionError(PrerequisiteError):
    """Stored text does not decrypt: wrong or missing key, or a ciphertext moved or altered."""


def document_aad(dataset: str, participant_id: str, document_id: str) -> bytes:
    """Associated data binding a ciphertext to its row's natural key."""
    return "\x00".join(("mindcommons/document/v1", dataset, participant_id, document_id)).encode()


def _new_key_id() -> str:
    return f"k{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class Keyring:
    """Text keys by id (one current), and the HMAC key of content hashes."""

    keys: dict[str, bytes]
    current: str
    hash_key: bytes
    path: Path | None = None
    _aead: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def generate(cls, path: Path | None = None) -> Keyring:
        """A fresh keyring with one key (not written until ``save``)."""
        key_id = _new_key_id()
        return cls({key_id: secrets.token_bytes(32)}, key_id, secrets.token_bytes(32), path)

    @classmethod
    def load(cls, path: Path, *, create: bool = True) -> Keyring:
        """Read the keyring at ``path``; create it (mode 0600) when missing and ``create``."""
        path = Path(path)
        if not path.exists():
            if not create:
                raise PrerequisiteError(f"the text keyring {path} does not exist")
            ring = cls.generate(path)
            ring.save(exclusive=True)
            return ring
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {str(k): base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
            ring = cls(keys, str(data["current"]), base64.b64decode(data["hash_key"]), path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as err:
            raise PrerequisiteError(
                f"the text keyring {path} is unreadable or not a mindcommons keyring ({err!r})"
            ) from err
        if ring.current not in keys or any(len(k) != 32 for k in keys.values()):
            raise PrerequisiteError(f"the text keyring {path} is damaged: bad current key")
        return ring

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "the in-memory keyring"

    def save(self, *, exclusive: bool = False) -> None:
        """Write the keyring atomically with mode 0600."""
        if self.path is None:
            return
        data = {
            "version": 1,
            "current": self.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in sorted(self.keys.items())},
            "hash_key": base64.b64encode(self.hash_key).decode(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            try:
                os.link(tmp, self.path)  # fails if another process created it first
            except FileExistsError:
                tmp.unlink()
                other = Keyring.load(self.path, create=False)
                self.keys, self.current, self.hash_key = other.keys, other.current, other.hash_key
                return
            tmp.unlink()
        else:
            os.replace(tmp, self.path)

    def content_hash(self, text: str) -> str:
        """HMAC-SHA256 (hex) of ``text`` under the keyring's hash key."""
        return hmac.new(self.hash_key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _cipher(self, key_id: str) -> object:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if key_id not in self._aead:
            self._aead[key_id] = AESGCM(self.keys[key_id])
        return self._aead[key_id]

    def encrypt(self, text: str, aad: bytes) -> tuple[str, str]:
        """(key id, base64 of nonce || ciphertext) of ``text`` under the current key."""
        nonce = secrets.token_bytes(NONCE_LEN)
        sealed = self._cipher(self.current).encrypt(nonce, text.encode("utf-8"), aad)  # type: ignore[attr-defined]
        return self.current, base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, key_id: str, blob: str, aad: bytes, *, label: str) -> str:
        """The text of ``blob``; ``DecryptionError`` (naming the key file) when it fails."""
        from cryptography.exceptions import InvalidTag

        if key_id not in self.keys:
            raise DecryptionError(
                f"{label}: its text is encrypted with key '{key_id}', which the keyring "
                f"{self.where} does not hold (wrong key file? set {KEY_FILE_ENV} or restore it)"
            )
        try:
            raw = base64.b64decode(blob, validate=True)
            plain = self._cipher(key_id).decrypt(raw[:NONCE_LEN], raw[NONCE_LEN:], aad)  # type: ignore[attr-defined]
            return bytes(plain).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error) as err:
            raise DecryptionError(
                f"{label}: its text does not decrypt with key '{key_id}' of the keyring "
                f"{self.where} (a wrong key file, or a ciphertext altered or moved from "
                "another row)"
            ) from err

    def add_key(self) -> str:
        """Add a new key and make it current; return its id."""
        key_id = _new_key_id()
        while key_id in self.keys:
            key_id = _new_key_id()
        self.keys[key_id] = secrets.token_bytes(32)
        self.current = key_id
        return key_id


def keyring_path_from_env() -> Path | None:
    """``$MINDCOMMONS_TEXT_KEY_FILE`` when set."""
    value = os.environ.get(KEY_FILE_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        raise ConfigError(f"{KEY_FILE_ENV}={value} is a folder; it must name a keyring file")
    return path

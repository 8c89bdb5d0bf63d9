"""One audit-log entry: event kinds, the details rules (no raw text), hashing and MACs.

``hash`` is SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of
``{seq, time, actor, kind, site, subject, details, prev_hash}``; the first entry's
``prev_hash`` is 64 zeros. ``mac`` (optional) is an HMAC of the hash under a key derived
from the site's secret, kept outside the hash so anyone can check the chain without it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mindcommons.errors import InputError

GENESIS = "0" * 64
MAX_STRING = 200  # longest string allowed in details, actor, site or subject
MAX_DETAILS_BYTES = 4096
MAX_DEPTH = 4
# Keys that would invite free text (a note, a transcript) into the log.
FORBIDDEN_KEYS = frozenset({"text", "note", "notes", "content", "transcript", "body"})
HASHED_FIELDS = ("seq", "time", "actor", "kind", "site", "subject", "details", "prev_hash")

JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]


class EventKind(StrEnum):
    """What happened. Values are the strings stored in the log."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    READ = "read"
    INGEST = "ingest"
    JOB = "job"
    JOB_REFUSED = "job_refused"
    RELEASE = "release"
    RELEASE_REFUSED = "release_refused"
    EXPORT = "export"
    APPROVAL = "approval"
    REVOCATION = "revocation"
    POLICY_CHANGE = "policy_change"
    USER_CHANGE = "user_change"
    KEY_ROTATION = "key_rotation"


def canonical_json(value: Any) -> bytes:
    """The one byte form that is hashed: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def mac_key(secret: bytes) -> bytes:
    """The audit log's own key, derived from the site secret (never used raw)."""
    return hmac.new(secret, b"mindcommons audit log v1", hashlib.sha256).digest()


def entry_mac(key: bytes, entry_hash: str) -> str:
    return hmac.new(key, b"entry:" + entry_hash.encode("ascii"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, entry_hash: str) -> str:
    msg = f"head:{seq}:{entry_hash}".encode("ascii")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One event, chained to the one before it by ``prev_hash``."""

    seq: int
    time: str
    actor: str
    kind: str
    site: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""
    mac: str | None = None

    def hashed_part(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.hashed_part())).hexdigest()

    def to_json(self) -> dict[str, Any]:
        out = {**self.hashed_part(), "hash": self.hash}
        if self.mac is not None:
            out["mac"] = self.mac
        return out

    def line(self) -> str:
        return canonical_json(self.to_json()).decode("utf-8") + "\n"

    @classmethod
    def from_json(cls, data: object) -> Entry:
        """Parse a stored entry; ``ValueError`` says which field is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [name for name in (*HASHED_FIELDS, "hash") if name not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        seq = data["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise ValueError("field 'seq' is not an integer")
        for name in ("time", "actor", "kind", "site", "subject", "prev_hash", "hash"):
            if not isinstance(data[name], str):
                raise ValueError(f"field '{name}' is not a string")
        if not isinstance(data["details"], dict):
            raise ValueError("field 'details' is not an object")
        mac = data.get("mac")
        if mac is not None and not isinstance(mac, str):
            raise ValueError("field 'mac' is not a string")
        return cls(
            seq=seq, time=data["time"], actor=data["actor"], kind=data["kind"],
            site=data["site"], subject=data["subject"], details=data["details"],
            prev_hash=data["prev_hash"], hash=data["hash"], mac=mac,
        )  # fmt: skip


def event_kind(kind: EventKind | str) -> EventKind:
    try:
        return EventKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in EventKind)
        raise InputError(
            f"unknown audit event kind '{kind}'", field="kind", expected=f"one of {known}"
        ) from None


def check_label(name: str, value: object, *, empty_ok: bool = True) -> str:
    """actor, site and subject: short single-line strings."""
    if not isinstance(value, str) or len(value) > MAX_STRING or "\n" in value:
        raise InputError(
            "not a short label", field=name, expected=f"a one-line string of <= {MAX_STRING}"
        )
    if not value and not empty_ok:
        raise InputError("empty", field=name, expected="a non-empty string")
    return value


def check_details(details: object) -> dict[str, Any]:
    """Details are small structured JSON: never free text, never a note or transcript."""
    if not isinstance(details, dict):
        raise InputError("not an object", field="details", expected="a JSON object")
    _check_value(details, "details", 0)
    try:
        size = len(canonical_json(details))
    except ValueError as err:  # NaN or infinity
        raise InputError(str(err), field="details", expected="finite numbers") from None
    if size > MAX_DETAILS_BYTES:
        raise InputError(
            f"{size} bytes", field="details", expected=f"at most {MAX_DETAILS_BYTES} bytes"
        )
    normal: dict[str, Any] = json.loads(canonical_json(details))  # tuples become lists
    return normal


def _check_value(value: object, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InputError("nested too deep", field=where, expected=f"depth <= {MAX_DEPTH}")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError("not finite", field=where, expected="a finite number")
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InputError(
                f"a string of {len(value)} characters (raw text is never logged)",
                field=where, expected=f"a label of <= {MAX_STRING} characters",
            )  # fmt: skip
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > 64:
                raise InputError("bad key", field=where, expected="string keys <= 64 chars")
            if key.lower() in FORBIDDEN_KEYS:
                raise InputError(
                    f"key '{key}' is not allowed: the audit log never holds text",
                    field=f"{where}.{key}", expected="ids, counts and labels only",
                )  # fmt: skip
            _check_value(item, f"{where}.{key}", depth + 1)
        return
    raise InputError(
        f"a {type(value).__name__}", field=where, expected="JSON: null, bool, number, str"
    )

"""The site's append-only, hash-chained audit log: append events, read, verify, export.

>>> log = AuditLog.for_site(site_dir)                       # <site_dir>/audit.log.jsonl
>>> log.append("os:ana", EventKind.INGEST, site="site-a", subject="dataset:notes",
...            details={"documents": 120})
>>> log.verify().ok
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mindcommons.errors import InputError
from mindcommons.governance.auditentry import (
    GENESIS,
    Entry,
    EventKind,
    check_details,
    check_label,
    entry_mac,
    event_kind,
    head_mac,
    mac_key,
)
from mindcommons.governance.auditstore import LOG_FILE, AuditStore, JsonlFileStore
from mindcommons.governance.auditverify import VerifyResult, verify_rows
from mindcommons.policy import site_secret

__all__ = ["AuditLog", "default_actor", "record_event", "utc_now"]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def default_actor() -> str:
    """Who is acting when no signed-in user is known: the operating-system account."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


class AuditLog:
    """Append-only log of events. ``secret`` (the site secret) adds MACs to entries and head.

    Without ``secret`` the chain and head still catch edits, deletions, reordering and
    truncation; with it, a consistent rewrite of the whole chain is caught too.
    """

    def __init__(
        self, path: Path, *, secret: bytes | None = None, store: AuditStore | None = None
    ) -> None:
        self.path = Path(path)
        self.store: AuditStore = store or JsonlFileStore(self.path)
        self._key = mac_key(secret) if secret is not None else None

    @classmethod
    def for_site(cls, site_dir: Path) -> AuditLog:
        """The log at ``<site_dir>/audit.log.jsonl``, keyed by the site's ``site.key``."""
        return cls(Path(site_dir) / LOG_FILE, secret=site_secret(Path(site_dir)))

    @property
    def signed(self) -> bool:
        return self._key is not None

    def append(
        self,
        actor: str,
        kind: EventKind | str,
        *,
        site: str,
        subject: str = "",
        details: dict[str, Any] | None = None,
    ) -> Entry:
        """Add one event at the end of the chain (safe across processes); return it.

        ``details`` is small structured JSON (ids, counts, labels): strings over 200
        characters and keys such as ``text`` or ``note`` are refused with an InputError.
        """
        draft = Entry(
            seq=0, time="", actor=check_label("actor", actor, empty_ok=False),
            kind=event_kind(kind).value, site=check_label("site", site),
            subject=check_label("subject", subject), details=check_details(details or {}),
        )  # fmt: skip
        key = self._key
        made: list[Entry] = []

        def build(
            last: object | None, current: dict[str, Any] | None
        ) -> tuple[dict[str, Any], dict[str, Any]]:
            seq, prev = 1, GENESIS
            if last is not None:
                try:
                    before = Entry.from_json(last)
                except ValueError as err:
                    raise InputError(
                        str(err), file=self.store.location, record="last entry",
                        expected="an audit entry; run 'mindcommons audit-log verify'",
                    ) from None  # fmt: skip
                seq, prev = before.seq + 1, before.hash
            self._check_tail(seq - 1, prev, current)
            entry = replace(draft, seq=seq, time=utc_now(), prev_hash=prev)
            digest = entry.compute_hash()
            entry = replace(entry, hash=digest, mac=entry_mac(key, digest) if key else None)
            head: dict[str, Any] = {"seq": seq, "hash": digest}
            if key is not None:
                head["mac"] = head_mac(key, seq, digest)
            made.append(entry)
            return entry.to_json(), head

        self.store.append(build)
        return made[0]

    def _check_tail(self, last_seq: int, last_hash: str, head: dict[str, Any] | None) -> None:
        """Fail closed: never append past a cut or rewritten tail (that would hide it)."""
        problem = ""
        if head is None:
            problem = "audit.head is missing although the log has entries" if last_seq else ""
        elif not isinstance(head.get("seq"), int) or not isinstance(head.get("hash"), str):
            problem = "audit.head is malformed"
        elif self._key is not None and head.get("mac") != head_mac(
            self._key, head["seq"], head["hash"]
        ):
            problem = "audit.head's MAC does not match the site key"
        elif head["seq"] > last_seq:
            problem = f"the log ends at seq {last_seq} but audit.head records seq {head['seq']}"
        elif head["seq"] == last_seq and head["hash"] != last_hash:
            problem = f"seq {last_seq} does not have the hash recorded in audit.head"
        if problem:
            raise InputError(
                f"refusing to append: {problem} (the log may have been tampered with)",
                file=self.store.location,
                expected="an intact log; run 'mindcommons audit-log verify' and call the steward",
            )

    def entries(self) -> Iterator[Entry]:
        """Every entry in stored order; an unreadable one raises InputError (run verify)."""
        for row in self.store.rows():
            try:
                if row.data is None:
                    raise ValueError(row.error)
                yield Entry.from_json(row.data)
            except ValueError as err:
                raise InputError(
                    str(err), file=self.store.location, record=row.where,
                    expected="an audit entry; run 'mindcommons audit-log verify'",
                ) from None  # fmt: skip

    def head(self) -> dict[str, Any] | None:
        """The head anchor: ``{"seq", "hash", "mac"?}`` of the latest entry."""
        return self.store.read_head()

    def verify(self, *, anchor: tuple[int, str] | None = None) -> VerifyResult:
        """Check the whole chain and its head; ``anchor`` is a (seq, hash) seen earlier."""
        try:
            head, head_error = self.store.read_head(), ""
        except ValueError as err:  # read the head first: writers update it last
            head, head_error = None, str(err)
        return verify_rows(
            self.store.rows(), head=head, head_error=head_error, key=self._key, anchor=anchor
        )

    def export(self, out: Path, fmt: Literal["jsonl", "csv"] | str = "jsonl") -> dict[str, Any]:
        """Write the entries for an external auditor, with ``<out>.manifest.json``.

        The manifest holds the head hash, the file's SHA-256 and this log's verification
        summary; return it. ``verify_export(out)`` checks an export without the site key.
        """
        from mindcommons.governance.auditexport import export_log

        return export_log(self, Path(out), fmt)


def record_event(
    site_dir: Path,
    kind: EventKind | str,
    *,
    actor: str | None = None,
    subject: str = "",
    details: dict[str, Any] | None = None,
) -> Entry:
    """One call for call sites: append to the log of the site whose folder is ``site_dir``."""
    site_dir = Path(site_dir)
    return AuditLog.for_site(site_dir).append(
        actor or default_actor(), kind, site=site_dir.name, subject=subject, details=details
    )

"""Checking an audit log: every edit, deletion, reordering or truncation is named.

Per entry: seq runs 1, 2, 3, ... (a gap is a deletion, a step back a reordering); the hash
recomputes (else the entry was edited); ``prev_hash`` equals the previous entry's hash
(else something before it changed); with the site key, the MAC matches (else the entry
was written by someone without the key). At the end: the head anchor (``audit.head``)
must name an entry that exists with that hash, so cutting entries off the end is caught;
its MAC stops someone who rewrites the whole chain consistently.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mindcommons.governance.auditentry import GENESIS, Entry, entry_mac, head_mac
from mindcommons.governance.auditstore import StoredRow


@dataclass
class VerifyResult:
    """``ok`` when no problem was found; ``problems`` name the seq (and line) of each."""

    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last_seq: int = 0
    last_hash: str = GENESIS
    macs_checked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "checked": self.checked, "problems": self.problems,
            "notes": self.notes, "last_seq": self.last_seq, "last_hash": self.last_hash,
            "macs_checked": self.macs_checked,
        }  # fmt: skip


def verify_rows(
    rows: Iterable[StoredRow],
    *,
    head: dict[str, Any] | None,
    head_error: str = "",
    key: bytes | None = None,
    anchor: tuple[int, str] | None = None,
) -> VerifyResult:
    """Check a chain of stored rows against its head (and an auditor's earlier ``anchor``)."""
    problems: list[str] = []
    notes: list[str] = []
    head_seq, head_hash, head_sig = _head_fields(head, problems)
    wanted = {s for s in (head_seq, anchor[0] if anchor else None) if s is not None}
    found: dict[int, str] = {}
    expected, prev, last = 1, GENESIS, Entry(0, "", "", "", "", "", hash=GENESIS)
    checked = 0
    prev_ok = True  # False after an unreadable row: its successor cannot be linked
    for row in rows:
        if row.data is None:
            problems.append(f"{row.where}: {row.error}")
            prev_ok = False
            continue
        try:
            entry = Entry.from_json(row.data)
        except ValueError as err:
            problems.append(f"{row.where}: {err}")
            prev_ok = False
            continue
        checked += 1
        label = f"seq {entry.seq} ({row.where})"
        if entry.seq > expected:
            missing = f"{expected}" if entry.seq == expected + 1 else f"{expected}-{entry.seq - 1}"
            problems.append(f"{label}: seq {missing} missing (deleted or moved)")
        elif entry.seq < expected:
            problems.append(f"{label}: out of order, seq {expected} expected (reordered)")
        if entry.compute_hash() != entry.hash:
            problems.append(f"{label}: hash mismatch (the entry was edited)")
        if prev_ok and entry.prev_hash != prev:
            problems.append(
                f"{label}: prev_hash does not match the entry before it "
                "(an entry was edited, deleted or moved)"
            )
        if key is not None:
            if entry.mac is None:
                problems.append(f"{label}: no MAC (not written by this site's audit log)")
            elif not hmac.compare_digest(entry.mac, entry_mac(key, entry.hash)):
                problems.append(f"{label}: MAC mismatch (written without the site key)")
        if entry.seq in wanted:
            found.setdefault(entry.seq, entry.hash)
        expected, prev, last, prev_ok = entry.seq + 1, entry.hash, entry, True
    _check_head(problems, notes, head, head_error, checked)
    if head is not None and head_seq is not None and head_hash is not None:
        if key is not None and not (
            head_sig and hmac.compare_digest(head_sig, head_mac(key, head_seq, head_hash))
        ):
            problems.append("head anchor: MAC mismatch (the head was rewritten without the key)")
        if head_seq > last.seq:
            problems.append(
                f"head anchor records seq {head_seq} but the log ends at seq {last.seq}: "
                "entries were removed from the end (truncated)"
            )
        elif found.get(head_seq) != head_hash:
            problems.append(f"seq {head_seq}: hash differs from the head anchor (rewritten)")
        elif head_seq < last.seq:
            gap = f"seq {head_seq + 1}" + (f"-{last.seq}" if last.seq > head_seq + 1 else "")
            if key is None:
                problems.append(f"{gap}: after the head anchor and not covered by it")
            else:
                notes.append(f"{gap}: after the head anchor (interrupted append); MACs valid")
    if anchor is not None:
        seq, digest = anchor
        if seq > last.seq:
            problems.append(f"anchor seq {seq}: the log ends at seq {last.seq} (truncated)")
        elif found.get(seq) != digest:
            problems.append(f"anchor seq {seq}: hash differs from the anchor (rewritten)")
    if key is None:
        notes.append("MACs not checked (no site key)")
    return VerifyResult(
        ok=not problems, checked=checked, problems=problems, notes=notes,
        last_seq=last.seq, last_hash=last.hash, macs_checked=key is not None,
    )  # fmt: skip


def _head_fields(
    head: dict[str, Any] | None, problems: list[str]
) -> tuple[int | None, str | None, str | None]:
    if head is None:
        return None, None, None
    seq, digest, sig = head.get("seq"), head.get("hash"), head.get("mac")
    if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(digest, str):
        problems.append("head anchor: needs an integer 'seq' and a string 'hash'")
        return None, None, None
    return seq, digest, sig if isinstance(sig, str) else None


def _check_head(
    problems: list[str],
    notes: list[str],
    head: dict[str, Any] | None,
    head_error: str,
    checked: int,
) -> None:
    if head_error:
        problems.append(f"head anchor: {head_error}")
    elif head is None and (checked or problems):
        problems.append("head anchor missing although the log has entries (deleted)")
    elif head is None:
        notes.append("empty log")

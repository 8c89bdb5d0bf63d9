"""Where audit entries live: a small storage protocol and its JSON-Lines file backend.

The file backend appends one canonical JSON line per entry (``O_APPEND``, ``fsync``) under
an exclusive ``fcntl.flock``, so concurrent writers (CLI, SuperNode, API server) keep one
chain; after each entry it replaces ``audit.head`` (the latest seq, hash and MAC)
atomically. A database backend only has to implement :class:`AuditStore`.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mindcommons.errors import InputError

LOG_FILE = "audit.log.jsonl"
HEAD_FILE = "audit.head"

# Given the last stored record and the current head (None when absent), return
# (new record, new head).
Builder = Callable[[object | None, dict[str, Any] | None], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class StoredRow:
    """One stored record as read back: parsed JSON, or the reason it could not be read."""

    where: str  # "line 12" (file) or "row 12" (database)
    data: object | None
    error: str = ""


class AuditStore(Protocol):
    """What :class:`~mindcommons.governance.auditlog.AuditLog` needs from storage."""

    @property
    def location(self) -> str: ...

    def append(self, build: Builder) -> dict[str, Any]:
        """Under an exclusive lock: build from the last record and head, persist both."""
        ...

    def rows(self) -> Iterator[StoredRow]:
        """Every stored record in storage order (never re-sorted: order is evidence)."""
        ...

    def read_head(self) -> dict[str, Any] | None:
        """The head anchor, None when there is none; ``ValueError`` when unreadable."""
        ...


def head_path_for(log_path: Path) -> Path:
    """``audit.log.jsonl`` -> ``audit.head`` (``x.jsonl`` -> ``x.head``) in the same folder."""
    name = log_path.name.removesuffix(".jsonl").removesuffix(".log")
    return log_path.with_name(name + ".head")


class JsonlFileStore:
    """Entries in an append-only JSON-Lines file, the head anchor next to it."""

    def __init__(self, path: Path, head_path: Path | None = None) -> None:
        self.path = Path(path)
        self.head_path = head_path or head_path_for(self.path)

    @property
    def location(self) -> str:
        return str(self.path)

    def append(self, build: Builder) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = self.read_head()
            except ValueError as err:
                raise InputError(str(err), file=str(self.head_path)) from None
            record, head = build(self._last_record(fd), current)
            data = (json.dumps(record, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False) + "\n").encode("utf-8")  # fmt: skip
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
            if created:
                _fsync_dir(self.path.parent)
            self._write_head(head)
            return record
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def rows(self) -> Iterator[StoredRow]:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            try:
                for number, raw in enumerate(handle, start=1):
                    yield _parse_row(f"line {number}", raw)
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read_head(self) -> dict[str, Any] | None:
        if not self.head_path.exists():
            return None
        try:
            data = json.loads(self.head_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{self.head_path}: unreadable ({err})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self.head_path}: not a JSON object")
        return data

    def _last_record(self, fd: int) -> object | None:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        if os.pread(fd, 1, size - 1) != b"\n":
            raise InputError(
                "the last entry is incomplete (a crash during a write?); run "
                "'mindcommons audit-log verify' and have the steward repair the file",
                file=str(self.path), expected="every entry to end with a newline",
            )  # fmt: skip
        pos, start = size - 1, 0  # pos: the end of the unsearched part
        while pos > 0:
            low = max(0, pos - 4096)
            cut = os.pread(fd, pos - low, low).rfind(b"\n")
            if cut >= 0:
                start = low + cut + 1
                break
            pos = low
        row = _parse_row("last line", os.pread(fd, size - start, start))
        if row.data is None:
            raise InputError(row.error, file=str(self.path), record="last line",
                             expected="a JSON audit entry")  # fmt: skip
        return row.data

    def _write_head(self, head: dict[str, Any]) -> None:
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (json.dumps(head, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.head_path)
        _fsync_dir(self.head_path.parent)


def _parse_row(where: str, raw: bytes) -> StoredRow:
    if not raw.endswith(b"\n"):
        return StoredRow(where, None, "incomplete (no newline at the end)")
    if not raw.strip():
        return StoredRow(where, None, "blank line")
    try:
        return StoredRow(where, json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return StoredRow(where, None, f"not JSON ({err})")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

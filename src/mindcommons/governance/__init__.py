"""Governance at a site: the append-only, hash-chained audit log (more to come)."""

from __future__ import annotations

from mindcommons.governance.auditentry import Entry, EventKind
from mindcommons.governance.auditlog import AuditLog, record_event
from mindcommons.governance.auditverify import VerifyResult

__all__ = ["AuditLog", "Entry", "EventKind", "VerifyResult", "record_event"]

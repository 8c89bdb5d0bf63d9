"""Governance at a site: the hash-chained audit log, people and permissions, projects and
approvals, dataset consent, and the site guard's job check (see docs/governance.md)."""

from __future__ import annotations

from mindcommons.governance.auditentry import Entry, EventKind
from mindcommons.governance.auditlog import AuditLog, record_event
from mindcommons.governance.auditverify import VerifyResult

__all__ = ["AuditLog", "Entry", "EventKind", "VerifyResult", "record_event"]

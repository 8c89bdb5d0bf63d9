"""The mental-health audit suite: tasks (``SUITE_TASKS``), the contract in ``base``."""

from __future__ import annotations

from mindcommons.registry import Registry
from mindcommons.suite.base import Aggregate, AuditTask, Sample, Score

SUITE_TASKS: Registry[AuditTask] = Registry("audit task")

__all__ = ["SUITE_TASKS", "Aggregate", "AuditTask", "Sample", "Score"]

"""Audit-suite task modules; each registers one ``AuditTask`` in ``mindcommons.suite.SUITE_TASKS``.

They are imported by ``mindcommons.suite`` (its ``TASK_PROVIDERS``), not from here, so a
task module can import the package without a cycle.
"""

"""The mental-health audit suite: tasks (``SUITE_TASKS``), the contract in ``base``.

Task modules register themselves in ``SUITE_TASKS`` when imported; the modules listed in
``TASK_PROVIDERS`` are imported at the end of this module (a provider not installed yet is
skipped, one that fails to import is an error). The runner, metrics and report card live in
``runner``, ``stats``, ``card`` and friends; ``run_suite`` is the one entry point.
"""

from __future__ import annotations

from mindcommons.registry import Registry, import_providers
from mindcommons.suite.base import Aggregate, AuditTask, Sample, Score

SUITE_TASKS: Registry[AuditTask] = Registry("audit task")

__all__ = ["SUITE_TASKS", "TASK_PROVIDERS", "Aggregate", "AuditTask", "Sample", "Score"]

# Modules that register audit tasks (they import SUITE_TASKS from here, so the imports
# stay at the end). Order does not matter: the suites list tasks by name.
TASK_PROVIDERS = (
    "mindcommons.suite.questionnaire",  # phq9, gad7 (the skeleton's QuestionnaireTasks)
    "mindcommons.suite.tasks.detect",
    "mindcommons.suite.tasks.xling",
    "mindcommons.suite.tasks.crisis",
    "mindcommons.suite.tasks.counterfactual",
    "mindcommons.suite.tasks.simplify",
    "mindcommons.suite.tasks.reframe",
    "mindcommons.suite.tasks.empathy",
)


import_providers(TASK_PROVIDERS)

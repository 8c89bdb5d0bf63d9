"""Task registry; ``phq9`` and ``gad7`` score questionnaire items from text via inspect_ai."""

from __future__ import annotations

from mindcommons.registry import Registry
from mindcommons.tasks.base import EvalItem, SampleResult
from mindcommons.tasks.gad7 import GAD7
from mindcommons.tasks.phq9 import PHQ9
from mindcommons.tasks.runner import run_local, run_task_direct
from mindcommons.tasks.spec import QuestionnaireTask, TaskSpec

TASKS: Registry[TaskSpec] = Registry("task")
TASKS.add(PHQ9.name, PHQ9)
TASKS.add(GAD7.name, GAD7)

__all__ = [
    "TASKS",
    "EvalItem",
    "QuestionnaireTask",
    "SampleResult",
    "TaskSpec",
    "run_local",
    "run_task_direct",
]

"""Named suites: which registered tasks a ``--suite`` name runs."""

from __future__ import annotations

from collections.abc import Callable

from mindcommons.errors import ConfigError
from mindcommons.registry import Registry

SUITES: Registry[Callable[[], list[str]]] = Registry("suite")


@SUITES.register("standard")
def _standard() -> list[str]:
    """Every registered audit task, in name order."""
    from mindcommons.suite import SUITE_TASKS

    return SUITE_TASKS.names()


def resolve_suite(name: str) -> list[str]:
    """Task names of a named suite, or of a comma-separated list of task names."""
    from mindcommons.suite import SUITE_TASKS

    name = name.strip()
    if name in SUITES:
        tasks = SUITES.get(name)()
    else:
        tasks = [t.strip() for t in name.split(",") if t.strip()]
        for task in tasks:
            if task not in SUITE_TASKS:
                raise ConfigError(
                    f"'{task}' is neither a suite ({', '.join(SUITES.names())}) nor a task "
                    f"({', '.join(SUITE_TASKS.names()) or 'none registered'})"
                )
    if not tasks:
        raise ConfigError(f"suite '{name}' has no tasks")
    return tasks

"""The audit job: evaluate a model on every site's documents and report pooled metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, MindcommonsError
from mindcommons.settings import Settings

Progress = Callable[[str], None]


def audit_job(
    *,
    model: str,
    task: str,
    limit: int | None,
    seed: int,
    base_url: str | None,
    n_boot: int = 1000,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The job every site runs (the same dict in federated and local mode)."""
    from mindcommons.federation.runner import new_run_id
    from mindcommons.tasks import TASKS

    TASKS.get(task)  # unknown task: fail here, before anything starts
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    return {
        "job": "evaluate",
        "task": task,
        "model": model,
        "base_url": base_url or "",
        "limit": limit or 0,
        "seed": seed,
        "n_boot": n_boot,
        "run_id": run_id or new_run_id(),
    }


def run_audit(
    settings: Settings,
    *,
    model: str = "embedded",
    task: str = "phq9",
    limit: int | None = None,
    seed: int = 0,
    federated: bool = True,
    base_url: str | None = None,
    sites: list[str] | None = None,
    progress: Progress | None = None,
    n_boot: int = 1000,
    timeout: float = 3600.0,
    debug_dump: Path | None = None,
) -> Path:
    """Run the audit; return the path of ``report.html``."""
    job = audit_job(
        model=model, task=task, limit=limit, seed=seed, base_url=base_url, n_boot=n_boot
    )
    if federated:
        from mindcommons.federation.runner import run_job

        result = run_job(
            settings, job, sites=sites, timeout=timeout, debug_dump=debug_dump, progress=progress
        )
    else:
        result = run_local_audit(settings, job, sites=sites, progress=progress)
    return _report_path(result)


def run_local_audit(
    settings: Settings,
    job: dict[str, Any],
    *,
    sites: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The same per-site evaluation, in this one process, over each site's repository."""
    from mindcommons.federation.launcher import discover_sites
    from mindcommons.federation.server import JobOutcome, finish, read_result
    from mindcommons.federation.site import run_site_job

    chosen = sorted(sites) if sites else discover_sites(settings)
    if not chosen:
        raise ConfigError(f"no sites under {settings.sites_dir()}; ingest data first")
    outcome = JobOutcome(run_id=str(job["run_id"]), job=dict(job), mode="local")
    t0 = time.perf_counter()
    for site in chosen:
        if progress is not None:
            progress(f"{site}: evaluating")
        reply = run_site_job(site, settings.resolved_home(), dict(job))
        outcome.record_reply(reply)
        if progress is not None:
            progress(f"{site}: {reply['status']} {reply['reason']}".rstrip())
    outcome.seconds = time.perf_counter() - t0
    finish(settings, outcome)
    result = read_result(settings, outcome.run_id)
    assert result is not None
    return result


def _report_path(result: dict[str, Any]) -> Path:
    if not result.get("report"):
        missing = "; ".join(f"{s}: {r}" for s, r in result.get("missing", {}).items())
        raise MindcommonsError(
            f"run {result.get('run_id')} produced no report: no site returned results"
            + (f" ({missing})" if missing else "")
        )
    return Path(str(result["report"]))


def parse_sources(pairs: list[str] | None) -> dict[str, Path]:
    """``task=PATH`` strings (the ``--source`` option) -> {task: path}."""
    out: dict[str, Path] = {}
    for pair in pairs or []:
        task, sep, path = pair.partition("=")
        if not sep or not task.strip() or not path.strip():
            raise ConfigError(f"--source '{pair}' is not valid (expected TASK=PATH)")
        out[task.strip()] = Path(path.strip()).expanduser()
    return out


def run_suite_audit(
    settings: Settings,
    *,
    suite: str = "standard",
    model: str = "embedded",
    sources: dict[str, Path] | None = None,
    limit: int | None = None,
    seed: int = 0,
    n_boot: int | None = None,
    out: Path | None = None,
    federated: bool = False,
    in_process: bool = False,
    sites: list[str] | None = None,
    base_url: str | None = None,
    country: str | None = None,
    energy: bool = True,
    timeout: float = 3600.0,
    progress: Progress | None = None,
) -> Path:
    """Run a suite of audit tasks; return the report card's HTML path.

    Local (default): every task on its source file (default: the task's synthetic
    samples), journaled in ``out`` (default ``<home>/reports/<run-id>``); running again
    with the same ``out`` resumes. ``federated``: the ``suite`` job at every site over the
    site's own files (``<site>/suite/<task>.jsonl``), pooled (``in_process``: the sites'
    jobs run in this process instead of through Flower). ``n_boot``: bootstrap resamples
    (default 1000 locally, 200 at sites, where each block travels as B x k numbers).
    """
    from mindcommons.federation.runner import new_run_id
    from mindcommons.suite.runner import get_tasks, run_suite
    from mindcommons.suite.suites import resolve_suite

    names = resolve_suite(suite)
    tasks = get_tasks(names)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    if federated:
        if sources:
            raise ConfigError("--source is for local runs; sites read their own files")
        from mindcommons.suite.federated import run_federated_suite
        from mindcommons.suite.site_job import DEFAULT_SITE_N_BOOT

        _, html = run_federated_suite(
            settings, tasks, model=model, limit=limit, seed=seed,
            n_boot=DEFAULT_SITE_N_BOOT if n_boot is None else n_boot,
            run_id=new_run_id(), sites=sites, base_url=base_url, country=country,
            energy=energy, timeout=timeout, local=in_process, progress=progress,
        )  # fmt: skip
        return html
    out_dir = out or settings.reports_dir() / new_run_id()

    def on_progress(task: str, done: int, total: int) -> None:
        if progress is not None:
            progress(f"{task}: {done}/{total}")

    options = {"base_url": base_url} if base_url else {}
    run = run_suite(
        names, model, out_dir, sources=sources, limit=limit, seed=seed,
        n_boot=1000 if n_boot is None else n_boot,
        country=country, energy=energy, progress=on_progress, model_options=options,
    )  # fmt: skip
    assert run.card_html is not None
    return run.card_html

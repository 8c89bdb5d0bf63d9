"""Coordinator side of the ``suite`` job: send it, pool the sites' blocks, write the card."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindcommons.settings import Settings
from mindcommons.suite.base import AuditTask
from mindcommons.suite.card import DEFAULT_MIN_GROUP_N, finish_card, task_card, write_card
from mindcommons.suite.journal import EnergyEntry
from mindcommons.suite.site_job import JOB, decode_site
from mindcommons.suite.stats import Block, GapLayout, TaskLayout, pool_blocks, task_labels

Progress = Callable[[str], None]


def suite_job(
    tasks: Sequence[AuditTask],
    *,
    model: str,
    limit: int | None,
    seed: int,
    n_boot: int,
    run_id: str,
    base_url: str | None = None,
    country: str | None = None,
    energy: bool = True,
) -> dict[str, Any]:
    """The job every site runs; label sets travel from here so every site lays out alike."""
    params = {
        "tasks": [t.name for t in tasks],
        "labels": {t.name: list(task_labels(t)) for t in tasks},
        "energy": energy,
        "country": country or "",
    }
    return {
        "job": JOB, "model": model, "base_url": base_url or "", "limit": limit or 0,
        "seed": seed, "n_boot": n_boot, "run_id": run_id, "params": params,
    }  # fmt: skip


def pooled_card(
    tasks: Sequence[AuditTask],
    job: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    model: dict[str, str],
    min_group_n: int = DEFAULT_MIN_GROUP_N,
    country: str = "",
) -> dict[str, Any]:
    """The report card of a federated suite run from the sites' replies (``result.json``)."""
    params = job.get("params") or {}
    if isinstance(params, str):
        import json

        params = json.loads(params)
    labels: Mapping[str, Sequence[str]] = params.get("labels", {})
    layouts = {
        t.name: TaskLayout(tuple(t.aggregates), tuple(labels.get(t.name, ()))) for t in tasks
    }
    gap_k = {t.name: len(GapLayout(tuple(t.aggregates)).columns) for t in tasks}
    per_site: dict[str, dict[str, dict[str, Block]]] = {}
    extras: dict[str, dict[str, dict[str, Any]]] = {}
    for site, payload in sorted(dict(result.get("payloads", {})).items()):
        per_site[site], extras[site] = decode_site(payload, layouts, gap_k)
    tasks_card: dict[str, dict[str, Any]] = {}
    for task in tasks:
        site_blocks = {s: b[task.name] for s, b in per_site.items() if task.name in b}
        pooled = pool_blocks(site_blocks)
        held: dict[str, str] = {}
        energy: list[EnergyEntry] = []
        for site, ext in sorted(extras.items()):
            info = ext.get(task.name)
            if not info:
                continue
            if info["absent"]:
                held[f"site {site}"] = "no data file for this task"
            if info["skipped"]:
                held[f"site {site}"] = "not run: a prerequisite is missing (the site's logs say)"
            for key in info["held"]:
                held[f"{key} at {site}"] = "under the site's release floor"
            if info["energy"]:
                kwh, kg, seconds, inferences, measured = info["energy"]
                method = "CodeCarbon offline tracker at the site, " + (
                    "measured from power counters" if measured else "estimated (no counters)"
                )
                energy.append(
                    EnergyEntry(task.name, kwh, kg, seconds, int(inferences), method,
                                bool(measured), country or "site default")
                )  # fmt: skip
        tasks_card[task.name] = task_card(
            task, pooled, labels=labels.get(task.name, ()), min_group_n=min_group_n,
            energy=energy, suppressed=held,
            by_site={s: b["all"] for s, b in site_blocks.items() if "all" in b},
            baseline="each pair's baseline",
        )  # fmt: skip
    from mindcommons.suite.card import _versions

    run = {
        "run_id": result.get("run_id"), "mode": "federated", "model": model,
        "seed": int(job.get("seed", 0) or 0), "limit": int(job.get("limit", 0) or 0) or None,
        "n_boot": int(job.get("n_boot", 0) or 0), "min_group_n": min_group_n,
        "started": result.get("started", ""),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": float(result.get("seconds", 0.0) or 0.0),
        "sites": sorted(result.get("sites_ok", [])),
        "sites_missing": dict(result.get("missing", {})),
        "versions": _versions(),
    }  # fmt: skip
    return finish_card(tasks_card, run)


def run_federated_suite(
    settings: Settings,
    tasks: Sequence[AuditTask],
    *,
    model: str,
    limit: int | None,
    seed: int,
    n_boot: int,
    run_id: str,
    sites: list[str] | None = None,
    base_url: str | None = None,
    country: str | None = None,
    energy: bool = True,
    timeout: float = 3600.0,
    local: bool = False,
    progress: Progress | None = None,
    debug_dump: Path | None = None,
    min_group_n: int = DEFAULT_MIN_GROUP_N,
) -> tuple[Path, Path]:
    """Run the suite job at every site (through Flower, or in this process with ``local``)
    and write the pooled card into ``<home>/reports/<run_id>/``; return (json, html)."""
    from mindcommons.federation.server import describe_model, run_dir

    job = suite_job(
        tasks, model=model, limit=limit, seed=seed, n_boot=n_boot, run_id=run_id,
        base_url=base_url, country=country, energy=energy,
    )  # fmt: skip
    if local:
        from mindcommons.audit import run_local_audit

        result = run_local_audit(settings, job, sites=sites, progress=progress)
    else:
        from mindcommons.federation.runner import run_job

        result = run_job(
            settings, job, sites=sites, timeout=timeout, debug_dump=debug_dump, progress=progress
        )
    card = pooled_card(
        tasks, job, result, model=describe_model(job), min_group_n=min_group_n,
        country=country or "",
    )  # fmt: skip
    return write_card(card, run_dir(settings, run_id))

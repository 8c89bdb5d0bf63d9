"""The ``suite`` site job: run audit-suite tasks on a site's own files, release only blocks.

A site keeps each task's data at ``<site_dir>/suite/<task>.jsonl`` (or a folder
``<site_dir>/suite/<task>/`` for tasks whose loader reads one), in the task's own source
format. The job runs the chosen tasks there with the suite runner (its journal stays in
``<site_dir>/suite-runs/<run_id>/``, so a re-sent job resumes) and releases, per task,
the statistics blocks of ``mindcommons.suite.stats``: column sums and bootstrap
replicates of those sums (seeded from the site's secret), for all samples, each language,
each subgroup and each variant's pairs. A group under the site's release floor is not
released (only the fact that one was held back); a task under the floor is not run.
Energy per task travels as numbers. No text, sample id or per-sample row leaves.

Wire form (flat, numbers only): ``<task>|<block>|t`` totals, ``<task>|<block>|r`` the
replicates row-major (B x k, B = ``n_boot``), ``<task>|energy`` = [kWh, kg CO2e, seconds,
inferences, measured 0/1], ``<task>|absent`` = 1 (no data file), ``<task>|skipped`` = 1
(a prerequisite is missing at the site; the reason stays in its ``logs/suite.log``),
``<task>|held|<block>`` = 1 (held back under the floor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mindcommons.errors import ConfigError, InputError, PolicyError
from mindcommons.federation.server import job_params
from mindcommons.federation.site import JOB_TYPES, model_options, release_floor
from mindcommons.settings import Settings
from mindcommons.suite.stats import Block, TaskLayout, task_blocks

JOB = "suite"
DEFAULT_SITE_N_BOOT = 200  # each block carries B x k numbers; keep messages small
SEP = "|"


def site_source(site_dir: Path, task: str) -> Path | None:
    """Where a site keeps a task's data (``suite/<task>.jsonl`` or ``suite/<task>/``)."""
    for candidate in (site_dir / "suite" / f"{task}.jsonl", site_dir / "suite" / task):
        if candidate.exists():
            return candidate
    return None


def encode_blocks(task: str, blocks: Mapping[str, Block]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for key, block in blocks.items():
        out[f"{task}{SEP}{key}{SEP}t"] = [float(v) for v in block.totals.tolist()]
        out[f"{task}{SEP}{key}{SEP}r"] = [float(v) for v in block.replicates.ravel().tolist()]
    return out


def decode_site(
    payload: Mapping[str, Any], layouts: Mapping[str, TaskLayout], gap_k: Mapping[str, int]
) -> tuple[dict[str, dict[str, Block]], dict[str, dict[str, Any]]]:
    """One site's payload -> (task -> block key -> Block, task -> extras)."""
    blocks: dict[str, dict[str, Block]] = {}
    extras: dict[str, dict[str, Any]] = {}
    n_boot = int(payload.get("n_boot", 0) or 0)
    where = "suite job reply"
    for name, value in payload.items():
        parts = str(name).split(SEP)
        task = parts[0]
        if task not in layouts:
            continue
        extra = extras.setdefault(
            task, {"held": [], "absent": False, "skipped": False, "energy": None}
        )
        if len(parts) == 2 and parts[1] in ("absent", "skipped"):
            extra[parts[1]] = True
        elif len(parts) == 2 and parts[1] == "energy":
            extra["energy"] = [float(v) for v in value]
        elif len(parts) == 3 and parts[1] == "held":
            extra["held"].append(parts[2])
        elif len(parts) == 3 and parts[2] == "t":
            key = parts[1]
            k = gap_k[task] if key.startswith("gap:") else layouts[task].k
            totals = np.asarray(value, dtype=np.float64)
            reps = np.asarray(payload.get(f"{task}{SEP}{key}{SEP}r", []), dtype=np.float64)
            if totals.shape != (k,) or reps.size != n_boot * k:
                raise InputError(
                    f"block has {totals.size} totals and {reps.size} replicate values",
                    record=where, field=str(name), expected=f"{k} and {n_boot} x {k}",
                )  # fmt: skip
            blocks.setdefault(task, {})[key] = Block(totals, reps.reshape(n_boot, k))
    return blocks, extras


@JOB_TYPES.register(JOB)
def suite_job(site: str, settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """Run the chosen suite tasks on this site's files; return numbers only."""
    from mindcommons.metrics import site_seed
    from mindcommons.policy import site_secret
    from mindcommons.suite.runner import get_tasks, load_samples, run_suite

    params = job_params(job)
    names = params.get("tasks") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError("suite job: params.tasks must be a list of task names")
    tasks = get_tasks(names)
    labels: Mapping[str, Sequence[str]] = params.get("labels") or {}
    limit = int(job.get("limit", 0) or 0) or None
    seed = int(job.get("seed", 0) or 0)
    n_boot = int(job.get("n_boot", 0) or DEFAULT_SITE_N_BOOT)
    floor = release_floor(site, settings, job)
    site_dir = settings.site_dir(site)
    out: dict[str, Any] = {"n_boot": n_boot}
    sources: dict[str, Path | None] = {}
    runnable: list[str] = []
    for task in tasks:
        source = site_source(site_dir, task.name)
        if source is None:
            out[f"{task.name}{SEP}absent"] = 1
            continue
        n = len(load_samples(task, source, limit=limit, seed=seed))
        if n < floor:  # refuse before spending compute on what cannot be released
            out[f"{task.name}{SEP}held{SEP}all"] = 1
            continue
        sources[task.name] = source
        runnable.append(task.name)
    if not runnable:
        if any(k.endswith(f"{SEP}held{SEP}all") for k in out):
            raise PolicyError(
                f"suppressed: every task with data at {site} has fewer samples than its "
                f"minimum of {floor} for any released statistic"
            )
        return out
    run_id = str(job.get("run_id", "run"))
    run = run_suite(
        runnable, str(job.get("model", "embedded")), site_dir / "suite-runs" / run_id,
        sources=sources, limit=limit, seed=seed, n_boot=0, write_card=False,
        energy=bool(params.get("energy", True)), country=params.get("country") or None,
        model_options=model_options(job),
    )  # fmt: skip
    from mindcommons.suite.journal import Journal

    state = Journal(run.out_dir).read()
    secret = site_secret(site_dir)
    for name, reason in run.skipped.items():  # the reason stays in the site's own log
        out[f"{name}{SEP}skipped"] = 1
        logs = site_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "suite.log").open("a", encoding="utf-8") as fh:
            fh.write(f"run {run_id}: task '{name}' not run: {reason}\n")
    for task in tasks:
        if task.name not in runnable or task.name in run.skipped:
            continue
        wanted = {s.id for s in load_samples(task, sources[task.name], limit=limit, seed=seed)}
        records = [r for r in state.records(task.name) if r.sample_id in wanted]
        task_labels = labels.get(task.name)
        blocks, held = task_blocks(
            task, records, labels=None if task_labels is None else list(task_labels),
            n_boot=n_boot, seed=site_seed(seed, f"{site}:{task.name}", secret=secret),
            floor=floor,
        )  # fmt: skip
        if "all" not in blocks:
            out[f"{task.name}{SEP}held{SEP}all"] = 1
            continue
        out.update(encode_blocks(task.name, blocks))
        for key in held:
            out[f"{task.name}{SEP}held{SEP}{key}"] = 1
        entries = [e for e in state.energy if e.task == task.name]
        out[f"{task.name}{SEP}energy"] = [
            sum(e.kwh for e in entries),
            sum(e.co2e_kg for e in entries),
            sum(e.seconds for e in entries),
            float(sum(e.inferences for e in entries)),
            float(bool(entries) and all(e.measured for e in entries)),
        ]
    from mindcommons.metrics import assert_numeric_payload

    assert_numeric_payload(out)
    return out

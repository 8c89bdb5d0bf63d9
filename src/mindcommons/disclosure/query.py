"""Coordinator side of ``mindcommons query``: send one query job, combine the sites' tables.

A combined cell is released only if every site that answered released it (a cell one
site withheld stays withheld, so the combined table never fills a gap by subtraction);
its count is the sum of the sites' noisy counts and its mean their count-weighted mean.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mindcommons.disclosure import tables
from mindcommons.disclosure.site_query import parse_statistic
from mindcommons.errors import ConfigError
from mindcommons.settings import Settings


@dataclass
class QueryCell:
    labels: tuple[str, ...]
    count: int | None  # None = withheld
    mean: float | None = None
    site_counts: dict[str, int | None] = field(default_factory=dict)


@dataclass
class QueryResult:
    run_id: str
    by: list[str]
    statistic: str
    epsilon: float
    project: str
    cells: list[QueryCell]
    total_count: int | None
    total_mean: float | None
    floors: dict[str, int]  # site -> the floor it applied
    budget_left: dict[str, float]  # site -> epsilon left for this project
    missing: dict[str, str]  # site -> reason (refused, error, no reply)
    site_totals: dict[str, int | None] = field(default_factory=dict)  # None = withheld

    @property
    def sites(self) -> list[str]:
        return sorted(self.floors)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "by": self.by, "statistic": self.statistic,
            "epsilon": self.epsilon, "project": self.project,
            "cells": [
                {"labels": list(c.labels), "count": c.count, "mean": c.mean,
                 "site_counts": c.site_counts}
                for c in self.cells
            ],
            "total_count": self.total_count, "total_mean": self.total_mean,
            "site_totals": self.site_totals, "floors": self.floors,
            "budget_left": self.budget_left, "missing": self.missing,
        }  # fmt: skip


def query_job(
    by: list[str],
    *,
    statistic: str,
    epsilon: float,
    project: str,
    min_n: int | None,
    levels: list[list[str]] | None = None,
) -> dict[str, Any]:
    """The job dict every site runs (scalars only, so it fits a Flower run config)."""
    dims = [tables.check_dimension(d) for d in by]
    parse_statistic(statistic)
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ConfigError(f"epsilon must be a positive number, got {epsilon}")
    chosen = levels if levels is not None else [tables.default_levels(d) for d in dims]
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    job: dict[str, Any] = {
        "job": "query", "run_id": run_id, "by": ",".join(dims),
        "levels": tables.encode_levels(chosen), "statistic": statistic,
        "epsilon": float(epsilon), "project": project,
    }  # fmt: skip
    if min_n is not None:
        job["min_n"] = int(min_n)
    return job


def run_query(
    settings: Settings,
    *,
    by: list[str],
    statistic: str = "count",
    epsilon: float = 1.0,
    project: str = "local",
    min_n: int | None = None,
    sites: list[str] | None = None,
    local: bool = False,
    timeout: float = 300.0,
) -> QueryResult:
    """Run a group-by query at every site (federated, or ``local`` in this process).

    ``by`` names dimensions (``tables.DIMENSIONS`` or ``instrument_band:<instrument>``);
    ``statistic`` is "count" or "mean:<instrument>" (latest total per participant);
    ``epsilon`` is charged to ``project``'s budget at each site; ``min_n`` can only raise
    a site's floor. Sites that refuse or fail are listed in ``QueryResult.missing``.
    """
    job = query_job(by, statistic=statistic, epsilon=epsilon, project=project, min_n=min_n)
    if local:
        payloads, missing = _run_local(settings, job, sites)
    else:
        from mindcommons.federation.runner import run_job

        result = run_job(settings, job, sites=sites, timeout=timeout)
        payloads = dict(result.get("payloads") or {})
        missing = {str(k): str(v) for k, v in (result.get("missing") or {}).items()}
    return combine(job, payloads, missing)


def _run_local(
    settings: Settings, job: dict[str, Any], sites: list[str] | None
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    from mindcommons.federation.launcher import discover_sites
    from mindcommons.federation.site import run_site_job

    chosen = sorted(sites) if sites else discover_sites(settings)
    if not chosen:
        raise ConfigError(f"no sites under {settings.sites_dir()}; ingest data first")
    payloads: dict[str, dict[str, Any]] = {}
    missing: dict[str, str] = {}
    for site in chosen:
        reply = run_site_job(site, settings.resolved_home(), dict(job))
        if reply["status"] == "ok":
            payloads[site] = dict(reply["payload"])
        else:
            missing[site] = str(reply["reason"] or reply["status"])
    return payloads, missing


def combine(
    job: dict[str, Any], payloads: dict[str, dict[str, Any]], missing: dict[str, str]
) -> QueryResult:
    """Pool the sites' released tables cell by cell (withheld anywhere = withheld)."""
    by = [d for d in str(job["by"]).split(",") if d]
    levels = tables.decode_levels(str(job["levels"]), len(by))
    labels = tables.cell_labels(levels)
    shape = tables.shape_of(levels)
    mean_stat = str(job["statistic"]) != "count"
    good: dict[str, dict[str, Any]] = {}
    for site, p in sorted(payloads.items()):
        if list(p.get("shape", [])) != shape or len(p.get("count", [])) != len(labels):
            missing[site] = "reply does not match the query's table shape"
        else:
            good[site] = p
    cells: list[QueryCell] = []
    for i, lab in enumerate(labels):
        site_counts: dict[str, int | None] = {
            s: int(p["count"][i]) if p["released"][i] else None for s, p in good.items()
        }
        shown = bool(good) and all(v is not None for v in site_counts.values())
        count = sum(v or 0 for v in site_counts.values()) if shown else None
        mean = None
        if shown and mean_stat:
            mean = _weighted([(float(p["mean"][i]), int(p["count"][i])) for p in good.values()])
        cells.append(QueryCell(lab, count, mean, site_counts))
    total_shown = bool(good) and all(p.get("total_released") for p in good.values())
    total = sum(int(p["total_count"]) for p in good.values()) if total_shown else None
    total_mean = None
    if total_shown and mean_stat:
        total_mean = _weighted(
            [(float(p["total_mean"]), int(p["total_count"])) for p in good.values()]
        )
    return QueryResult(
        run_id=str(job["run_id"]), by=by, statistic=str(job["statistic"]),
        epsilon=float(job["epsilon"]), project=str(job["project"]), cells=cells,
        total_count=total, total_mean=total_mean,
        floors={s: int(p.get("floor", 0)) for s, p in good.items()},
        budget_left={
            s: round(float(p.get("budget", 0)) - float(p.get("budget_spent", 0)), 9)
            for s, p in good.items()
        },
        missing=dict(sorted(missing.items())),
        site_totals={
            s: int(p["total_count"]) if p.get("total_released") else None
            for s, p in good.items()
        },
    )  # fmt: skip


def _weighted(pairs: list[tuple[float, int]]) -> float:
    weight = sum(max(n, 0) for _, n in pairs)
    if weight == 0:
        return sum(m for m, _ in pairs) / len(pairs)
    return sum(m * max(n, 0) for m, n in pairs) / weight

"""The site-side ``query`` job: group-by counts or means, suppressed, then DP-noised.

Order at the site: validate the job; read the repository (participants and their latest
instrument total); build the table; withhold cells under the release floor plus their
complements (``tables.suppress``); charge epsilon to the project's ledger (refused past
the budget); add OpenDP Laplace noise; reply with number arrays only.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mindcommons.disclosure import ledger, noise, tables
from mindcommons.errors import PolicyError
from mindcommons.federation.site import JOB_TYPES, release_floor
from mindcommons.governance import EventKind, record_event
from mindcommons.instruments import Instrument, get_instrument
from mindcommons.repository.models import Measure, Participant
from mindcommons.settings import Settings

PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ATTRIBUTE = {
    "language": Participant.primary_language,
    "gender": Participant.gender,
    "age_band": Participant.age_band,
    "country": Participant.country,
    "ethnicity_category": Participant.ethnicity_category,
}


def parse_statistic(text: str) -> Instrument | None:
    """None for "count"; the instrument for "mean:<instrument>"."""
    if text == "count":
        return None
    if text.startswith("mean:"):
        return get_instrument(text[len("mean:") :])
    raise PolicyError(f"refused: unknown statistic '{text}'; use count or mean:<instrument>")


def _latest_totals(session: Session, inst: Instrument) -> dict[int, int]:
    """participant pk -> total of that participant's latest measure of ``inst``."""
    names = session.scalars(select(Measure.instrument).distinct()).all()
    wanted = [n for n in names if _same_instrument(n, inst)]
    rows = session.execute(
        select(Measure.participant_pk, Measure.total)
        .where(Measure.instrument.in_(wanted))
        .order_by(Measure.participant_pk, Measure.date)
    ).all()
    return {int(pk): int(total) for pk, total in rows}  # later dates overwrite earlier


def _same_instrument(name: str, inst: Instrument) -> bool:
    try:
        return get_instrument(name).name == inst.name
    except Exception:  # an unknown stored instrument is simply not this one
        return False


def read_units(
    settings: Settings, site: str, by: list[str], stat: Instrument | None
) -> list[tuple[list[str], int | None]]:
    """One (dimension values, instrument total or None) per participant row at the site."""
    from mindcommons.repository import SiteRepository

    bands = {d: get_instrument(d[len(tables.BAND_PREFIX) :]) for d in by if d not in ATTRIBUTE}
    with SiteRepository.for_site(settings, site) as repo, Session(repo.engine) as session:
        totals = {name: _latest_totals(session, inst) for name, inst in bands.items()}
        stat_totals = _latest_totals(session, stat) if stat is not None else {}
        rows = session.execute(select(Participant.id, *ATTRIBUTE.values())).all()
    units: list[tuple[list[str], int | None]] = []
    for row in rows:
        attrs = dict(zip(ATTRIBUTE, row[1:], strict=True))
        values = []
        for d in by:
            if d in ATTRIBUTE:
                values.append(str(attrs[d] or ""))
            else:
                t = totals[d].get(int(row[0]))
                values.append("" if t is None else bands[d].band(t))
        if stat is None:
            units.append((values, None))
        elif int(row[0]) in stat_totals:
            units.append((values, stat_totals[int(row[0])]))
    return units


def parse_job(job: dict[str, Any]) -> tuple[list[str], list[list[str]], str, float, str]:
    by_text = str(job.get("by", "") or "")
    by = [tables.check_dimension(d.strip()) for d in by_text.split(",") if d.strip()]
    if len(set(by)) != len(by):
        raise PolicyError("refused: a query dimension is repeated")
    levels = tables.decode_levels(str(job.get("levels", "") or "[]"), len(by))
    tables.check_levels(by, levels)
    statistic = str(job.get("statistic", "count") or "count")
    try:
        epsilon = float(job.get("epsilon", 1.0))
    except (TypeError, ValueError):
        raise PolicyError("refused: epsilon must be a number") from None
    project = str(job.get("project", "local") or "local")
    if not PROJECT_RE.match(project):
        raise PolicyError("refused: project names use letters, digits, '.', '_', '-'")
    return by, levels, statistic, epsilon, project


@JOB_TYPES.register("query")
def query_job(site: str, settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """Run one query at ``site``; return its disclosure-controlled, noised table."""
    by, levels, statistic, epsilon, project = parse_job(job)
    stat = parse_statistic(statistic)
    shape = tables.shape_of(levels)
    floor = release_floor(site, settings, job)
    n_cells = 1
    for size in shape:
        n_cells *= size
    counts = [0] * n_cells
    sums = [0.0] * n_cells
    for values, total in read_units(settings, site, by, stat):
        codes = [tables.code_of(v, lv) for v, lv in zip(values, levels, strict=True)]
        i = tables.cell_index(codes, shape)
        counts[i] += 1
        if stat is not None and total is not None:
            sums[i] += min(max(total, stat.min_total), stat.max_total)
    hidden = tables.suppress(counts, shape, floor)
    show_total = tables.total_releasable(counts, hidden, floor)

    noise.require_opendp()  # before charging: a site without OpenDP spends nothing
    site_dir = settings.site_dir(site)
    actor = f"coordinator:{str(job.get('run_id', '?'))[:80]}"
    try:
        used = ledger.charge(site_dir, site, project, epsilon, str(job.get("run_id", "")))
    except PolicyError as err:
        details = {"project": project, "epsilon": epsilon, "reason": str(err)[:200]}
        record_event(
            site_dir, EventKind.RELEASE_REFUSED, actor=actor, subject=f"query:{project}",
            details=details,
        )  # fmt: skip
        raise
    eps_counts = epsilon if stat is None else epsilon / 2
    noisy = noise.noisy_counts([*counts, sum(counts)], sensitivity=2, epsilon=eps_counts)
    noisy = [max(0, n) for n in noisy]
    out: dict[str, Any] = {
        "shape": shape, "floor": floor, "epsilon": epsilon,
        "budget": ledger.site_budget(site_dir), "budget_spent": used,
        "released": [0 if h else 1 for h in hidden],
        "count": [0 if h else n for n, h in zip(noisy[:-1], hidden, strict=True)],
        "total_released": int(show_total), "total_count": noisy[-1] if show_total else 0,
    }  # fmt: skip
    if stat is not None:
        lo, hi = float(stat.min_total), float(stat.max_total)
        bound = 2 * max(abs(lo), abs(hi))
        noisy_sum = noise.noisy_sums([*sums, sum(sums)], sensitivity=bound, epsilon=epsilon / 2)
        means = [min(max(s / max(n, 1), lo), hi) for s, n in zip(noisy_sum, noisy, strict=True)]
        out["mean"] = [0.0 if h else m for m, h in zip(means[:-1], hidden, strict=True)]
        out["total_mean"] = means[-1] if show_total else 0.0
    record_event(
        site_dir, EventKind.RELEASE, actor=actor, subject=f"query:{project}",
        details={
            "project": project, "epsilon": epsilon, "spent": used, "statistic": statistic[:60],
            "by": by, "cells": n_cells, "withheld": sum(hidden), "floor": floor,
            "total_released": show_total,
        },
    )  # fmt: skip
    return out

"""Diversity profile: who is in a dataset (language, gender, age band, ethnicity, country),
compared with a reference population the steward supplies.

Categories come from the shared code table of the ``query`` job
(``disclosure.tables.DIMENSIONS``; anything else or missing is "(other)"), so a site's own
profile and the federated one line up. A released profile obeys disclosure control: a
site's profile withholds every category under the site's floor plus a complementary one
(``tables.suppress``), the federated profile is a set of ``query`` jobs (floor,
suppression, OpenDP noise, epsilon charged to the project at every site).

Reference file (JSON): ``{"name": ..., "source": ..., "dimensions": {"gender":
{"female": 0.51, "male": 0.48, "other": 0.01}, ...}}``; or CSV with the header
``dimension,category,share``. Shares are normalised per dimension.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mindcommons.disclosure import tables
from mindcommons.errors import InputError
from mindcommons.governance.permissions import Op, Principal, authorize
from mindcommons.policy import read_site_policy
from mindcommons.settings import Settings, validate_site_name

# Profile dimension -> query dimension (the code table's name).
PROFILE_DIMENSIONS = {
    "language": "language",
    "gender": "gender",
    "age_band": "age_band",
    "ethnicity": "ethnicity_category",
    "country": "country",
}
UNDER, OVER = 0.8, 1.25  # observed/reference share ratios flagged as gaps


@dataclass
class Reference:
    name: str
    source: str
    shares: dict[str, dict[str, float]]  # dimension -> category -> share (sums to 1)


@dataclass
class CategoryRow:
    category: str
    count: int | None  # None: withheld
    share: float | None = None  # of the dimension's released total
    reference: float | None = None
    ratio: float | None = None  # share / reference
    flag: str = ""  # "under", "over", "" (or "withheld")


@dataclass
class Profile:
    scope: str  # "site-a", "site-a/dataset", "federation"
    floor: int
    total: int | None
    dimensions: dict[str, list[CategoryRow]] = field(default_factory=dict)
    reference: str = ""
    noisy: bool = False  # True for the federated (DP) profile
    missing: dict[str, str] = field(default_factory=dict)  # site -> reason (federated)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope, "floor": self.floor, "total": self.total,
            "noisy": self.noisy, "reference": self.reference, "missing": self.missing,
            "dimensions": {d: [vars(r) for r in rows] for d, rows in self.dimensions.items()},
        }  # fmt: skip

    def gaps(self) -> list[str]:
        """Readable lines for categories under- or over-represented against the reference."""
        out = []
        for dim, rows in self.dimensions.items():
            for r in rows:
                if r.flag in ("under", "over") and r.share is not None and r.reference:
                    out.append(
                        f"{dim} '{r.category}' is {r.flag}-represented: {r.share:.0%} of "
                        f"{self.scope} vs {r.reference:.0%} of the reference population"
                    )
        return out


def read_reference(path: Path) -> Reference:
    """A reference population from JSON or CSV (see module doc); InputError names the spot."""
    path = Path(path)
    raw: dict[str, dict[str, float]] = {}
    name, source = path.stem, ""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read ({err.strerror})", file=str(path)) from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"dimension", "category", "share"} <= set(
            reader.fieldnames
        ):
            raise InputError("missing columns", file=str(path), record=1,
                             expected="a header dimension,category,share")  # fmt: skip
        for line, row in enumerate(reader, start=2):
            raw.setdefault(row["dimension"].strip(), {})[row["category"].strip()] = _share(
                row["share"], path, line, "share"
            )
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(
                f"not valid JSON ({err.msg})", file=str(path), record=err.lineno
            ) from None
        dims = data.get("dimensions") if isinstance(data, dict) else None
        if not isinstance(dims, dict):
            raise InputError("no 'dimensions' object", file=str(path), field="dimensions",
                             expected='{"gender": {"female": 0.5, ...}, ...}')  # fmt: skip
        name, source = str(data.get("name", name)), str(data.get("source", ""))
        for dim, cats in dims.items():
            if not isinstance(cats, dict):
                raise InputError("not an object of category shares", file=str(path),
                                 field=f"dimensions.{dim}")  # fmt: skip
            raw[dim] = {str(c): _share(v, path, None, f"dimensions.{dim}.{c}")
                        for c, v in cats.items()}  # fmt: skip
    shares: dict[str, dict[str, float]] = {}
    for dim, cats in raw.items():
        if dim not in PROFILE_DIMENSIONS:
            raise InputError(f"unknown dimension '{dim}'", file=str(path), field=dim,
                             expected=", ".join(PROFILE_DIMENSIONS))  # fmt: skip
        total = sum(cats.values())
        if total <= 0:
            raise InputError("shares sum to 0", file=str(path), field=dim)
        shares[dim] = {c: v / total for c, v in cats.items()}
    return Reference(name=name, source=source, shares=shares)


def _share(value: object, path: Path, line: int | None, where: str) -> float:
    try:
        share = float(str(value))
    except ValueError:
        share = -1.0
    if not share >= 0 or share == float("inf"):
        raise InputError(f"'{value}' is not a share", file=str(path), record=line, field=where,
                         expected="a non-negative number")  # fmt: skip
    return share


def _levels(dim: str) -> list[str]:
    return [*tables.default_levels(PROFILE_DIMENSIONS[dim]), tables.OTHER]


def compare(profile: Profile, reference: Reference | None) -> Profile:
    """Fill shares (of released counts), reference shares, ratios and gap flags."""
    profile.reference = reference.name if reference else ""
    for dim, rows in profile.dimensions.items():
        shown = sum(r.count or 0 for r in rows if r.count is not None)
        ref = reference.shares.get(dim, {}) if reference else {}
        for r in rows:
            r.share = (r.count / shown) if (r.count is not None and shown) else None
            r.reference = _ref_share(ref, r.category) if ref else None
            if r.count is None:
                r.flag = "withheld"
            elif r.share is not None and r.reference:
                r.ratio = round(r.share / r.reference, 3)
                r.flag = "under" if r.ratio < UNDER else "over" if r.ratio > OVER else ""
    return profile


def _ref_share(ref: dict[str, float], category: str) -> float | None:
    for name, share in ref.items():
        if name.strip().casefold() == category.strip().casefold():
            return share
    return None


def count_table(values: list[str], dim: str, floor: int) -> list[CategoryRow]:
    """Counts per category of one dimension, with floor + complementary suppression."""
    levels = tables.default_levels(PROFILE_DIMENSIONS[dim])
    counts = [0] * (len(levels) + 1)
    for v in values:
        counts[tables.code_of(v, levels)] += 1
    hidden = tables.suppress(counts, [len(counts)], floor)
    return [CategoryRow(label, None if h else n)
            for label, n, h in zip(_levels(dim), counts, hidden, strict=True)]  # fmt: skip


def _site_values(
    settings: Settings, site: str, dataset: str | None
) -> tuple[int, dict[str, list[str]]]:
    from mindcommons.repository import SiteRepository
    from mindcommons.repository.models import Dataset, Participant

    cols = {
        "language": Participant.primary_language, "gender": Participant.gender,
        "age_band": Participant.age_band, "ethnicity": Participant.ethnicity_category,
        "country": Participant.country,
    }  # fmt: skip
    stmt = select(*cols.values())
    if dataset is not None:
        stmt = stmt.join(Dataset, Participant.dataset_id == Dataset.id).where(
            Dataset.name == dataset
        )
    with SiteRepository.for_site(settings, site) as repo, Session(repo.engine) as session:
        rows = session.execute(stmt).all()
    values = {dim: [str(r[i] or "") for r in rows] for i, dim in enumerate(cols)}
    return len(rows), values


def build_site_profile(
    settings: Settings, site: str, dataset: str | None = None,
    reference: Reference | None = None,
) -> Profile:  # fmt: skip
    """The profile at ``site`` (one dataset or all), suppressed under the site's floor.

    No authorization here: callers are ``site_profile`` and the datasheet writer."""
    validate_site_name(site)
    floor = read_site_policy(settings.site_dir(site)).min_release_n
    n, values = _site_values(settings, site, dataset)
    profile = Profile(
        scope=f"{site}/{dataset}" if dataset else site, floor=floor,
        total=n if n >= floor else None,
        dimensions={dim: count_table(values[dim], dim, floor) for dim in PROFILE_DIMENSIONS},
    )  # fmt: skip
    return compare(profile, reference)


def site_profile(
    settings: Settings,
    actor: Principal,
    site: str,
    *,
    dataset: str | None = None,
    reference: Reference | None = None,
) -> Profile:
    """A site's diversity profile read at the site (stewards, auditors)."""
    authorize(actor, Op.PROFILE_SITE, site=validate_site_name(site))
    return build_site_profile(settings, site, dataset, reference)


def federated_profile(
    settings: Settings,
    actor: Principal,
    *,
    project: str,
    epsilon: float = 1.0,
    sites: list[str] | None = None,
    local: bool = False,
    reference: Reference | None = None,
    timeout: float = 300.0,
) -> Profile:
    """The profile across all sites: one ``query`` job per dimension through
    ``disclosure.run_query`` (each charges ``epsilon`` to ``project`` at every site).

    A category withheld at any site stays withheld; sites that refuse (e.g. the project
    is not approved there) are listed in ``missing`` and left out of the counts.
    """
    from mindcommons.disclosure import run_query

    authorize(actor, Op.PROFILE_FEDERATED)
    profile = Profile(scope="federation", floor=0, total=None, noisy=True)
    for dim, qdim in PROFILE_DIMENSIONS.items():
        result = run_query(settings, by=[qdim], statistic="count", epsilon=epsilon,
                           project=project, sites=sites, local=local, timeout=timeout)  # fmt: skip
        profile.missing.update(result.missing)
        profile.floor = max([profile.floor, *result.floors.values()])
        profile.dimensions[dim] = [CategoryRow(c.labels[0], c.count) for c in result.cells]
        if profile.total is None:
            profile.total = result.total_count
    return compare(profile, reference)

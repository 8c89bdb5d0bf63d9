"""The public list of datasets in the federation with their make-up.

For every site of this installation: each dataset's description, licence, consent
(basis and allowed purposes), size and diversity profile, all under the site's release
floor (a participant count under the floor reads as withheld). This is what a site
publishes about itself; no record and no small cell is in it.
"""

from __future__ import annotations

from typing import Any

from mindcommons.datasheet.profile import Reference, build_site_profile
from mindcommons.governance.consent import site_datasets
from mindcommons.governance.permissions import Op, Principal, authorize
from mindcommons.policy import read_site_policy
from mindcommons.settings import Settings


def _sites(settings: Settings) -> list[str]:
    from mindcommons.federation.launcher import discover_sites

    return list(discover_sites(settings))


def public_list(
    settings: Settings,
    actor: Principal,
    *,
    sites: list[str] | None = None,
    reference: Reference | None = None,
) -> list[dict[str, Any]]:
    """One entry per dataset at each site (every role may read it)."""
    authorize(actor, Op.DATASET_LIST)
    out: list[dict[str, Any]] = []
    for site in sorted(sites or _sites(settings)):
        floor = read_site_policy(settings.site_dir(site)).min_release_n
        for ds in site_datasets(settings, site):
            entry = ds.to_json()
            for key in ("participants", "documents"):
                if 0 < entry[key] < floor:
                    entry[key] = None  # withheld: under the site's floor
            entry["floor"] = floor
            entry["make_up"] = build_site_profile(settings, site, ds.name, reference).to_json()
            out.append(entry)
    return out

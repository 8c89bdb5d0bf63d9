"""Site profiles: each synthetic site's language, country, demographic and severity mix."""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Weights = Mapping[str, float]


@dataclass(frozen=True)
class SiteProfile:
    """How one site's population differs from the others (the non-IID part)."""

    description: str
    languages: Weights
    countries: Mapping[str, Weights]  # language -> country -> weight
    age_bands: Weights
    genders: Weights
    severity: float  # mean latent severity at the first visit, item scale 0-3
    improvement: float  # mean change in latent severity per visit (negative = better)


AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")

# Ethnicity as recorded locally in each country, with the mapped category.
ETHNICITY: Mapping[str, Sequence[tuple[str, str, float]]] = {
    "GB": [
        ("White British", "White", 0.70),
        ("White Irish", "White", 0.04),
        ("Asian or Asian British: Indian", "Asian", 0.08),
        ("Asian or Asian British: Pakistani", "Asian", 0.05),
        ("Black or Black British: Caribbean", "Black", 0.05),
        ("Black or Black British: African", "Black", 0.04),
        ("Mixed: White and Black Caribbean", "Mixed", 0.04),
    ],
    "US": [
        ("White", "White", 0.55),
        ("Black or African American", "Black", 0.15),
        ("Hispanic or Latino", "Hispanic or Latino", 0.18),
        ("Asian", "Asian", 0.07),
        ("American Indian or Alaska Native", "Indigenous", 0.02),
        ("Two or more races", "Mixed", 0.03),
    ],
    "IE": [
        ("White Irish", "White", 0.80),
        ("Irish Traveller", "Roma or Traveller", 0.03),
        ("Any other White background", "White", 0.09),
        ("Asian or Asian Irish", "Asian", 0.04),
        ("Black or Black Irish", "Black", 0.04),
    ],
    "ES": [
        ("origen español", "White", 0.78),
        ("origen latinoamericano", "Hispanic or Latino", 0.12),
        ("origen magrebí", "Middle Eastern or North African", 0.07),
        ("gitano", "Roma or Traveller", 0.03),
    ],
    "MX": [
        ("mestizo", "Mixed", 0.70),
        ("indígena", "Indigenous", 0.15),
        ("blanco", "White", 0.12),
        ("afromexicano", "Black", 0.03),
    ],
    "CO": [
        ("mestizo", "Mixed", 0.75),
        ("afrocolombiano", "Black", 0.10),
        ("indígena", "Indigenous", 0.05),
        ("blanco", "White", 0.09),
        ("raizal", "Black", 0.01),
    ],
    "AR": [
        ("blanco / europeo", "White", 0.70),
        ("mestizo", "Mixed", 0.22),
        ("indígena", "Indigenous", 0.05),
        ("afrodescendiente", "Black", 0.03),
    ],
    "BR": [
        ("branca", "White", 0.43),
        ("parda", "Mixed", 0.45),
        ("preta", "Black", 0.10),
        ("amarela", "Asian", 0.01),
        ("indígena", "Indigenous", 0.01),
    ],
    "PT": [
        ("português", "White", 0.85),
        ("afrodescendente (PALOP)", "Black", 0.07),
        ("brasileiro", "Mixed", 0.06),
        ("cigano", "Roma or Traveller", 0.02),
    ],
}

PROFILES: tuple[SiteProfile, ...] = (
    SiteProfile(
        description="mostly English-speaking (GB, US, IE)",
        languages={"en": 0.80, "es": 0.12, "pt": 0.08},
        countries={
            "en": {"GB": 0.5, "US": 0.3, "IE": 0.2},
            "es": {"US": 0.6, "ES": 0.4},
            "pt": {"PT": 0.5, "BR": 0.5},
        },
        age_bands={
            "18-24": 0.12,
            "25-34": 0.20,
            "35-44": 0.20,
            "45-54": 0.18,
            "55-64": 0.15,
            "65+": 0.15,
        },
        genders={"female": 0.55, "male": 0.42, "other": 0.03},
        severity=1.1,
        improvement=-0.20,
    ),
    SiteProfile(
        description="mostly Spanish-speaking (ES, MX, CO, AR)",
        languages={"es": 0.78, "en": 0.12, "pt": 0.10},
        countries={
            "es": {"ES": 0.3, "MX": 0.3, "CO": 0.2, "AR": 0.2},
            "en": {"US": 0.6, "GB": 0.4},
            "pt": {"BR": 0.7, "PT": 0.3},
        },
        age_bands={
            "18-24": 0.25,
            "25-34": 0.28,
            "35-44": 0.20,
            "45-54": 0.14,
            "55-64": 0.08,
            "65+": 0.05,
        },
        genders={"female": 0.64, "male": 0.34, "other": 0.02},
        severity=1.5,
        improvement=-0.15,
    ),
    SiteProfile(
        description="mostly Portuguese-speaking (BR, PT)",
        languages={"pt": 0.75, "es": 0.15, "en": 0.10},
        countries={
            "pt": {"BR": 0.65, "PT": 0.35},
            "es": {"AR": 0.5, "ES": 0.5},
            "en": {"GB": 0.5, "US": 0.5},
        },
        age_bands={
            "18-24": 0.10,
            "25-34": 0.15,
            "35-44": 0.20,
            "45-54": 0.22,
            "55-64": 0.18,
            "65+": 0.15,
        },
        genders={"female": 0.50, "male": 0.48, "other": 0.02},
        severity=1.3,
        improvement=-0.25,
    ),
    SiteProfile(
        description="bilingual US community service (English and Spanish)",
        languages={"en": 0.50, "es": 0.42, "pt": 0.08},
        countries={"en": {"US": 1.0}, "es": {"US": 0.7, "MX": 0.3}, "pt": {"US": 0.5, "BR": 0.5}},
        age_bands={
            "18-24": 0.30,
            "25-34": 0.30,
            "35-44": 0.18,
            "45-54": 0.12,
            "55-64": 0.06,
            "65+": 0.04,
        },
        genders={"female": 0.58, "male": 0.38, "other": 0.04},
        severity=1.7,
        improvement=-0.10,
    ),
)


def site_name(site_index: int) -> str:
    """``0 -> "site-a"``, ``25 -> "site-z"``, ``26 -> "site-aa"``."""
    return "site-" + _letters(site_index)


def id_prefix(site_index: int) -> str:
    """Upper-case letters used in participant ids (``"A"`` for site-a)."""
    return _letters(site_index).upper()


def _letters(index: int) -> str:
    if index < 0:
        raise ValueError("site index must be >= 0")
    out = ""
    n = index
    while True:
        out = string.ascii_lowercase[n % 26] + out
        n = n // 26 - 1
        if n < 0:
            return out


def profile_for(site_index: int) -> SiteProfile:
    """The profile of a site; past the built-in four, profiles repeat with shifted severity."""
    base = PROFILES[site_index % len(PROFILES)]
    cycle = site_index // len(PROFILES)
    if cycle == 0:
        return base
    shift = 0.15 * cycle * (1 if cycle % 2 else -1)
    return SiteProfile(
        description=base.description,
        languages=base.languages,
        countries=base.countries,
        age_bands=base.age_bands,
        genders=base.genders,
        severity=max(0.3, base.severity + shift),
        improvement=base.improvement,
    )


def pick(rng: random.Random, weights: Weights) -> str:
    """One key drawn with its weight (order of the mapping is part of the seed contract)."""
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def pick_ethnicity(rng: random.Random, country: str) -> tuple[str, str]:
    """(local term, mapped category) for a person in ``country``."""
    options = ETHNICITY[country]
    chosen = rng.choices(options, weights=[w for _, _, w in options])[0]
    return chosen[0], chosen[1]

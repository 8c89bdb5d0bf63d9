"""Seeded multilingual multi-site synthetic data: records in memory, files in three formats."""

from mindcommons.synth.corpus import FORMATS, SiteSummary, SynthSummary, generate
from mindcommons.synth.site import GENERATOR, Evidence, SiteData, generate_site

__all__ = [
    "FORMATS",
    "GENERATOR",
    "Evidence",
    "SiteData",
    "SiteSummary",
    "SynthSummary",
    "generate",
    "generate_site",
]

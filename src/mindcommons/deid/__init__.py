"""De-identification: detect HIPAA Safe Harbor identifiers (en/es/pt) and pseudonymise them."""

from mindcommons.deid.engine import DETECTORS, DeidResult, Detector, deidentify, detect
from mindcommons.deid.spans import PHI_TYPES, Span

__all__ = ["DETECTORS", "PHI_TYPES", "DeidResult", "Detector", "Span", "deidentify", "detect"]

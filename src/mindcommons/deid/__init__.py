"""De-identification: detect HIPAA Safe Harbor identifiers (en/es/pt) and pseudonymise them."""

from mindcommons.deid.engine import (
    DETECTORS,
    SENSITIVITY_FLOOR,
    DeidResult,
    Detector,
    Sensitivity,
    deidentify,
    detect,
)
from mindcommons.deid.spans import PHI_TYPES, Span

__all__ = [
    "DETECTORS",
    "PHI_TYPES",
    "SENSITIVITY_FLOOR",
    "DeidResult",
    "Detector",
    "Sensitivity",
    "Span",
    "deidentify",
    "detect",
]

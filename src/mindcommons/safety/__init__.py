"""Crisis safety: risk detection, country crisis resources, and the safety layer and scorer."""

from mindcommons.safety.layer import SafetyDecision, safety_check, support_message
from mindcommons.safety.resources import (
    FALLBACK,
    Resource,
    ResourceBook,
    StaleResource,
    StaleResourceWarning,
    emergency_for,
    load_resources,
    resources_for,
)
from mindcommons.safety.risk import RiskAssessment, RiskSignal, assess_risk
from mindcommons.safety.rules import LANGUAGES, LEVELS, rule_counts
from mindcommons.safety.scoring import CrisisScore, score_response

__all__ = [
    "FALLBACK",
    "LANGUAGES",
    "LEVELS",
    "CrisisScore",
    "Resource",
    "ResourceBook",
    "RiskAssessment",
    "RiskSignal",
    "SafetyDecision",
    "StaleResource",
    "StaleResourceWarning",
    "assess_risk",
    "emergency_for",
    "load_resources",
    "resources_for",
    "rule_counts",
    "safety_check",
    "score_response",
    "support_message",
]

"""The safety layer every care tool runs behind: assess, then point to local help."""

from __future__ import annotations

from dataclasses import dataclass

from mindcommons.safety.resources import Resource, ResourceBook, emergency_for, resources_for
from mindcommons.safety.risk import RiskAssessment, assess_risk
from mindcommons.safety.rules import LANGUAGES, read_language_data

MESSAGE_FROM = "moderate"
_MAX_LINES = 2


@dataclass(frozen=True)
class SafetyDecision:
    """What the tool must do: the assessment, the resources to show, the message to add."""

    risk: RiskAssessment
    resources: list[Resource]
    message: str | None

    @property
    def escalate(self) -> bool:
        """Whether the tool must show the message (risk at or above moderate)."""
        return self.message is not None


def _lines(resources: list[Resource]) -> str:
    lines = [r for r in resources if r.kind not in ("emergency", "directory")][:_MAX_LINES]
    if not lines:
        lines = [r for r in resources if r.kind != "emergency"][:1] or resources[:1]
    return "; ".join(r.label() for r in lines)


def support_message(
    risk: RiskAssessment,
    resources: list[Resource],
    emergency: Resource,
    language: str,
) -> str:
    """The short supportive message in ``language`` (English if it has no templates).

    It names resources and never refuses to keep helping; it holds no method information
    because it is filled from the reviewed templates in ``data/<lang>/messages.json`` only.
    """
    lang = language if language in LANGUAGES else "en"
    templates = read_language_data(lang, "messages.json")
    key = "high" if risk.at_least("high") else "moderate"
    if risk.about_other:
        key = "about_other"
    return str(templates[key]).format(
        resources=_lines(resources), emergency=emergency.number or emergency.label()
    )


def safety_check(
    user_text: str,
    *,
    country: str,
    language: str | None,
    book: ResourceBook | None = None,
) -> SafetyDecision:
    """Assess ``user_text``; at moderate risk or above, add a message with local resources.

    Below moderate the decision carries the resources (for a tool that lists them
    anyway) and no message; the tool goes on helping either way.
    """
    risk = assess_risk(user_text, language)
    lang = language if language in LANGUAGES else risk.language
    resources = resources_for(country, lang, book=book)
    if not risk.at_least(MESSAGE_FROM):
        return SafetyDecision(risk=risk, resources=resources, message=None)
    emergency = emergency_for(country, book=book)
    message = support_message(risk, resources, emergency, lang)
    return SafetyDecision(risk=risk, resources=resources, message=message)

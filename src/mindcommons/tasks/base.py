"""What a task run at a site produces: per-sample results that never leave the site.

Only metric sufficient statistics computed from these (see ``mindcommons.metrics``)
cross the federation.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EvalItem:
    """One document to evaluate, paired with the questionnaire nearest in time."""

    document_id: str
    participant_id: str
    kind: str
    language: str
    date: str  # ISO date of the document
    text: str
    instrument: str  # e.g. "PHQ-9"
    measure_date: str  # ISO date of the paired questionnaire
    true_items: tuple[int, ...]
    true_total: int
    attributes: dict[str, str] = field(default_factory=dict)  # gender, age_band, country, ...


@dataclass(frozen=True)
class SampleResult:
    """The model's answer on one EvalItem, scored. Holds no text."""

    sample_id: str  # the document id; stays at the site
    language: str
    kind: str
    instrument: str
    true_items: tuple[int, ...]
    true_total: int
    predicted_items: tuple[int | None, ...]  # None where the model gave no usable score
    parsed: bool  # the model's output parsed as the expected structure
    evidence_verbatim: tuple[bool, ...]  # per item: the quoted evidence occurs in the text
    input_tokens: int
    output_tokens: int
    seconds: float
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def predicted_total(self) -> int:
        """Total with missing items counted as 0 (documented scoring rule)."""
        return sum(v for v in self.predicted_items if v is not None)

"""Detected identifier spans, the Safe Harbor type names, and overlap merging."""

from __future__ import annotations

from dataclasses import dataclass

# Safe Harbor (45 CFR 164.514(b)(2)) types plus hospital/organisation names.
PHI_TYPES = (
    "NAME", "LOCATION", "ZIP", "HOSPITAL", "ORG", "DATE", "YEAR", "AGE", "PHONE", "FAX",
    "EMAIL", "SSN", "MRN", "HEALTH_PLAN", "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE",
    "URL", "IP", "BIOMETRIC", "ID",
)  # fmt: skip


@dataclass(frozen=True)
class Span:
    """One detected identifier: where, what, and why (detector, pattern, context)."""

    start: int
    end: int
    type: str
    detector: str
    pattern: str
    context: str = ""
    score: float = 1.0

    def to_json(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "type": self.type, "detector": self.detector}


def _union_same_type(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.type, s.start, -s.end)):
        last = out[-1] if out else None
        if last is not None and last.type == span.type and span.start < last.end:
            if span.end > last.end or span.score > last.score:
                best = span if span.score > last.score else last
                out[-1] = Span(
                    last.start, max(last.end, span.end), last.type, best.detector,
                    best.pattern, best.context, max(last.score, span.score),
                )  # fmt: skip
            continue
        out.append(span)
    return out


def merge_spans(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans: overlapping spans of one type join; across types the
    higher-scoring (then longer) span wins and the other is dropped."""
    chosen: list[Span] = []
    taken: list[tuple[int, int]] = []
    ranked = sorted(_union_same_type(spans), key=lambda s: (-s.score, -(s.end - s.start)))
    for span in ranked:
        if span.end <= span.start:
            continue
        if any(span.start < e and s < span.end for s, e in taken):
            continue
        chosen.append(span)
        taken.append((span.start, span.end))
    return sorted(chosen, key=lambda s: s.start)

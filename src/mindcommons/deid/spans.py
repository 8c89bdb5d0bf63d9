"""Detected identifier spans, the Safe Harbor type names, and overlap merging."""

from __future__ import annotations

from dataclasses import dataclass, replace

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


def merge_spans(spans: list[Span], text: str | None = None) -> list[Span]:
    """Non-overlapping spans: overlapping spans of one type join; across types the
    higher-scoring (then longer) span wins and the other keeps only the words outside it
    (given ``text``, its uncovered parts are trimmed to their words; without, it is dropped)."""
    chosen: list[Span] = []
    taken: list[tuple[int, int]] = []
    ranked = sorted(_union_same_type(spans), key=lambda s: (-s.score, -(s.end - s.start)))
    for span in ranked:
        if span.end <= span.start:
            continue
        for start, end in _uncovered(span.start, span.end, taken):
            if (start, end) != (span.start, span.end):
                if text is None:
                    continue
                piece = text[start:end]
                lead = len(piece) - len(piece.lstrip(_EDGE))
                start, end = start + lead, start + len(piece.rstrip(_EDGE))
                rest = text[start:end]
                if not any(ch.isalnum() for ch in rest) or (len(rest) <= 3 and rest.islower()):
                    continue  # nothing, or a bare "on"/"the" left over
            chosen.append(replace(span, start=start, end=end))
            taken.append((start, end))
    return sorted(chosen, key=lambda s: s.start)


_EDGE = " \t\n.,;:-/()'\"&"


def _uncovered(start: int, end: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [start, end) outside every taken interval: a lower-ranked span of another
    type keeps the words the winner does not cover ("Warren" of "Warren Grant" when "Grant
    hosp" is the hospital), so merging never loses a flagged word."""
    pieces = [(start, end)]
    for s, e in taken:
        nxt = []
        for a, b in pieces:
            if e <= a or b <= s:
                nxt.append((a, b))
                continue
            if a < s:
                nxt.append((a, s))
            if e < b:
                nxt.append((e, b))
        pieces = nxt
    return pieces

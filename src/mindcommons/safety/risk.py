"""Explainable, data-driven crisis-risk detection for en/es/pt text (``assess_risk``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mindcommons.safety.context import (
    detect_language,
    negation_before,
    normalise,
    subject_is_other,
)
from mindcommons.safety.rules import LANGUAGES, LEVELS, Rule, level_policy, rule_set


@dataclass(frozen=True)
class RiskSignal:
    """One matched phrase, with the rule that matched and why it counts (or not)."""

    kind: str
    phrase_start: int
    phrase_end: int
    rule: str
    language: str
    phrase: str = ""
    weight: int = 0
    about_other: bool = False
    explanation: str = ""

    def explain(self) -> str:
        """One line a reviewer can read: what, where, which rule, why."""
        who = "someone else" if self.about_other else "the writer"
        return (
            f"{self.kind} '{self.phrase}' [{self.phrase_start}:{self.phrase_end}] "
            f"rule {self.rule} ({self.language}), about {who}: {self.explanation}"
        )


@dataclass(frozen=True)
class RiskAssessment:
    """The level, the signals that set it, and the matches that were set aside."""

    level: str
    signals: list[RiskSignal]
    language: str
    about_other: bool = False
    suppressed: list[RiskSignal] = field(default_factory=list)

    @property
    def level_index(self) -> int:
        """0 (none) .. 4 (imminent)."""
        return LEVELS.index(self.level)

    def at_least(self, level: str) -> bool:
        """Whether the assessed level is ``level`` or higher."""
        return self.level_index >= LEVELS.index(level)

    def explain(self) -> list[str]:
        """Every counted and every suppressed match, one line each."""
        lines = [f"level {self.level} (language {self.language})"]
        lines += ["+ " + s.explain() for s in self.signals]
        lines += ["- " + s.explain() for s in self.suppressed]
        return lines


def _idiom_spans(text: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for lang in LANGUAGES:
        for idiom in rule_set(lang).idioms:
            spans += [(m.start(), m.end(), idiom.id) for m in idiom.pattern.finditer(text)]
    return spans


def _subject(m_groups: dict[str, str | None]) -> bool | None:
    for name, value in m_groups.items():
        if value:
            if name.startswith("other"):
                return True
            if name.startswith("self"):
                return False
    return None


def _match(
    text: str, lang: str, rule: Rule, idioms: list[tuple[int, int, str]]
) -> list[tuple[RiskSignal, bool]]:
    """Signals of one rule, each with True when it counts and False when suppressed."""
    rs = rule_set(lang)
    out: list[tuple[RiskSignal, bool]] = []
    for m in rule.pattern.finditer(text):
        start, end = m.span()
        if start == end:
            continue
        inline = _subject(m.groupdict())
        if inline is None:
            other, cue = subject_is_other(text, start, rs)
            who = f"subject cue '{cue}'" if cue else "no subject cue: the writer"
        else:
            other, who = inline, "the phrase's own grammatical person"
        base = RiskSignal(
            kind=rule.kind,
            phrase_start=start,
            phrase_end=end,
            rule=rule.id,
            language=lang,
            phrase=text[start:end],
            weight=rule.weight,
            about_other=other,
        )
        idiom = next((i for s, e, i in idioms if s < end and start < e), None)
        if idiom is not None:
            out.append((replace(base, explanation=f"inside idiom {idiom}"), False))
            continue
        if rule.kind != "protective":
            cue_neg = negation_before(text, start, rs)
            if cue_neg is not None:
                note = f"negated by '{cue_neg}'"
                out.append((replace(base, explanation=note), False))
                continue
        out.append((replace(base, explanation=f"weight {rule.weight}; {who}"), True))
    return out


def _combine(core: list[RiskSignal], modifiers: list[RiskSignal]) -> int:
    policy = level_policy()
    level = max((s.weight for s in core), default=0)
    if level == 0 or level < policy.modifier_needs:
        return level
    kinds = {s.kind for s in modifiers}
    for kind in kinds:
        level = max(level, policy.min_level.get(kind, 0))
    for kind in sorted(kinds):
        if kind in policy.raise_by:
            steps, start = policy.raise_by[kind]
            if level >= start:
                level += steps
    return min(level, len(LEVELS) - 1)


def assess_risk(text: str, language: str | None = None) -> RiskAssessment:
    """Assess crisis risk in ``text``.

    Every supported language's rules run (people switch languages mid-message); each
    match is checked against idioms, negation and who it is about. ``language`` (or the
    detected one) is what the assessment reports, for the reply's language.
    """
    norm = normalise(text)
    lang = language or detect_language(norm)
    idioms = _idiom_spans(norm)
    policy = level_policy()
    counted: list[RiskSignal] = []
    suppressed: list[RiskSignal] = []
    seen: set[tuple[str, int, int, str]] = set()
    order = [lang] + [x for x in LANGUAGES if x != lang] if lang in LANGUAGES else LANGUAGES
    for rule_lang in order:
        for rule in rule_set(rule_lang).rules:
            for signal, counts in _match(norm, rule_lang, rule, idioms):
                key = (signal.kind, signal.phrase_start, signal.phrase_end, signal.rule)
                if key in seen:
                    continue
                seen.add(key)
                (counted if counts else suppressed).append(signal)
    for start, end, idiom_id in idioms:
        note = "idiom: figurative, not a risk statement; masks risk phrases it overlaps"
        suppressed.append(
            RiskSignal(
                kind="idiom",
                phrase_start=start,
                phrase_end=end,
                rule=idiom_id,
                language=idiom_id.split(".", 1)[0],
                phrase=norm[start:end],
                explanation=note,
            )
        )
    core = [s for s in counted if s.kind in policy.core_kinds]
    modifiers = [s for s in counted if s.kind not in policy.core_kinds | policy.info_kinds]
    if not core:
        for s in modifiers:
            note = "no risk statement for this modifier to qualify"
            suppressed.append(replace(s, explanation=note))
        counted = [s for s in counted if s not in modifiers]
        modifiers = []
    own = _combine([s for s in core if not s.about_other], modifiers)
    other = _combine([s for s in core if s.about_other], modifiers)
    counted.sort(key=lambda s: (s.phrase_start, s.phrase_end))
    suppressed.sort(key=lambda s: (s.phrase_start, s.phrase_end))
    return RiskAssessment(
        level=LEVELS[max(own, other)],
        signals=counted,
        language=lang,
        about_other=other > own,
        suppressed=suppressed,
    )

"""Per-language crisis-detection rules, loaded from the reviewed data files in ``safety/data``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from mindcommons.errors import ConfigError, InputError

LANGUAGES = ("en", "es", "pt")
LEVELS = ("none", "low", "moderate", "high", "imminent")
_DATA = resources.files("mindcommons.safety") / "data"
_FLAGS = re.IGNORECASE | re.UNICODE


@dataclass(frozen=True)
class Rule:
    """One phrase pattern: what it signals (kind) and the level it implies alone (weight)."""

    id: str
    kind: str
    weight: int
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class RuleSet:
    """Everything the detector knows about one language."""

    language: str
    rules: tuple[Rule, ...]
    idioms: tuple[Rule, ...]
    negation_cues: tuple[re.Pattern[str], ...]
    pseudo_negations: tuple[re.Pattern[str], ...]
    scope_terminators: tuple[re.Pattern[str], ...]
    negation_window: int
    other_subject: tuple[re.Pattern[str], ...]
    self_subject: tuple[re.Pattern[str], ...]
    language_cues: frozenset[str]


@dataclass(frozen=True)
class LevelPolicy:
    """How signals combine into a level (``data/levels.json``)."""

    core_kinds: frozenset[str]
    info_kinds: frozenset[str]
    modifier_needs: int
    min_level: dict[str, int]  # modifier kind -> level it lifts the assessment to
    raise_by: dict[str, tuple[int, int]]  # modifier kind -> (steps, only from this level)


def level_index(name: str) -> int:
    """Position of a level name in ``LEVELS``."""
    try:
        return LEVELS.index(name)
    except ValueError:
        raise ConfigError(f"unknown risk level '{name}'; known: {', '.join(LEVELS)}") from None


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, _FLAGS)
    except re.error as err:
        raise InputError(
            f"bad regular expression: {err}", file=where, field="pattern", expected="a regex"
        ) from None


def _rule(raw: dict[str, Any], where: str, default_kind: str) -> Rule:
    missing = [k for k in ("id", "pattern") if k not in raw]
    if missing:
        raise InputError(
            "rule lacks a key", file=where, record=str(raw.get("id", "?")), field=missing[0]
        )
    return Rule(
        id=str(raw["id"]),
        kind=str(raw.get("kind", default_kind)),
        weight=int(raw.get("weight", 0)),
        pattern=_compile(str(raw["pattern"]), f"{where} ({raw['id']})"),
    )


def _read(name: str) -> dict[str, Any]:
    path = _DATA / name
    if not path.is_file():
        raise ConfigError(f"safety data file missing: {name}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def rule_set(language: str) -> RuleSet:
    """The compiled rules of one supported language."""
    if language not in LANGUAGES:
        raise ConfigError(
            f"no crisis rules for language '{language}'; known: {', '.join(LANGUAGES)}"
        )
    where = f"safety/data/{language}/risk.json"
    raw = _read(f"{language}/risk.json")
    policy = level_policy()
    rules = tuple(_rule(r, where, "") for r in raw["rules"])
    known = policy.core_kinds | policy.info_kinds | set(policy.min_level) | set(policy.raise_by)
    for rule in rules:
        if rule.kind not in known:
            raise InputError(
                f"unknown kind '{rule.kind}'",
                file=where,
                record=rule.id,
                field="kind",
                expected=", ".join(sorted(known)),
            )

    def pats(key: str) -> tuple[re.Pattern[str], ...]:
        return tuple(_compile(p, f"{where} {key}") for p in raw.get(key, []))

    return RuleSet(
        language=language,
        rules=rules,
        idioms=tuple(_rule(r, where, "idiom") for r in raw.get("idioms", [])),
        negation_cues=pats("negation_cues"),
        pseudo_negations=pats("pseudo_negations"),
        scope_terminators=pats("scope_terminators"),
        negation_window=int(raw.get("negation_window", 5)),
        other_subject=pats("other_subject"),
        self_subject=pats("self_subject"),
        language_cues=frozenset(w.lower() for w in raw.get("language_cues", [])),
    )


@cache
def level_policy() -> LevelPolicy:
    """The level-combination policy shared by every language."""
    raw = _read("levels.json")
    mods: dict[str, dict[str, Any]] = raw["modifiers"]
    return LevelPolicy(
        core_kinds=frozenset(raw["core_kinds"]),
        info_kinds=frozenset(raw.get("info_kinds", [])),
        modifier_needs=level_index(raw.get("modifier_needs", "low")),
        min_level={k: level_index(v["min_level"]) for k, v in mods.items() if "min_level" in v},
        raise_by={
            k: (int(v["raise"]), level_index(v.get("from", "low")))
            for k, v in mods.items()
            if "raise" in v
        },
    )


@cache
def read_language_data(language: str, name: str) -> dict[str, Any]:
    """Another per-language data file (``messages.json``, ``reply.json``)."""
    if language not in LANGUAGES:
        raise ConfigError(f"no safety data for language '{language}'")
    return _read(f"{language}/{name}")


def rule_counts() -> dict[str, dict[str, int]]:
    """Rules per language and kind, plus idioms: for reports and the data review."""
    out: dict[str, dict[str, int]] = {}
    for lang in LANGUAGES:
        rs = rule_set(lang)
        counts: dict[str, int] = {}
        for rule in rs.rules:
            counts[rule.kind] = counts.get(rule.kind, 0) + 1
        counts["idioms"] = len(rs.idioms)
        out[lang] = counts
    return out

"""Crisis safety: risk levels, negation, idioms, reported speech, resources, layer, scorer."""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path

import pytest

from mindcommons.errors import InputError
from mindcommons.safety import (
    LEVELS,
    StaleResourceWarning,
    assess_risk,
    load_resources,
    resources_for,
    rule_counts,
    safety_check,
    score_response,
)
from mindcommons.safety.resources import builtin_book

RISK_CASES = [
    # (text, language, expected level)
    ("I want to kill myself", "en", "high"),
    ("I want to kill myself tonight, I have the pills ready", "en", "imminent"),
    ("Sometimes I wish I was dead", "en", "moderate"),
    ("I feel hopeless about everything", "en", "low"),
    ("I've been cutting myself again", "en", "moderate"),
    ("I already took all my sleeping pills", "en", "imminent"),
    ("I'm giving away my things and wrote goodbye letters", "en", "high"),
    ("I want to hurt him so badly", "en", "high"),
    ("I can't stop thinking about killing myself", "en", "high"),
    ("I never want to wake up again", "en", "moderate"),
    ("Quiero morirme", "es", "high"),
    ("Tengo una pistola y hoy me mato", "es", "imminent"),
    ("Me quiero matar esta noche, ya tengo un plan", "es", "imminent"),
    ("Ya no quiero vivir", "es", "moderate"),
    ("Me hago daño cuando estoy sola", "es", "moderate"),
    ("Estoy sin esperanza", "es", "low"),
    ("Quero morrer", "pt", "high"),
    ("Vou me matar hoje à noite", "pt", "imminent"),
    ("Não quero mais viver", "pt", "moderate"),
    ("Tenho vontade de me cortar", "pt", "moderate"),
    ("Não aguento mais", "pt", "low"),
]


@pytest.mark.parametrize(("text", "lang", "level"), RISK_CASES)
def test_risk_level(text: str, lang: str, level: str) -> None:
    result = assess_risk(text, lang)
    assert result.level == level, result.explain()
    assert not result.about_other
    if level != "none":
        assert result.signals, "a level above none must be explained by signals"
        for s in result.signals:
            assert text[s.phrase_start : s.phrase_end] == s.phrase
            assert s.rule.startswith(s.language + ".")


NOT_RISK = [
    ("This exam is killing me", "en"),
    ("I could kill for a coffee right now", "en"),
    ("I'm dying to see the new film", "en"),
    ("I almost died laughing at that video", "en"),
    ("My mom is going to kill me when she sees my grades", "en"),
    ("I would never kill myself, my kids keep me going", "en"),
    ("I'm not suicidal, just exhausted", "en"),
    ("I bought pills for my headache today", "en"),
    ("I accidentally cut myself shaving", "en"),
    ("Me muero de risa con este video", "es"),
    ("Me muero de ganas de verte", "es"),
    ("Este examen me está matando", "es"),
    ("Me mato estudiando para el examen", "es"),
    ("No tengo pensamientos de hacerme daño", "es"),
    ("Nunca me quitaría la vida", "es"),
    ("Estou morrendo de rir", "pt"),
    ("Essa prova está me matando", "pt"),
    ("Minha mãe vai me matar quando souber", "pt"),
    ("Nunca pensei em me matar", "pt"),
    ("Não tenho pensamentos suicidas", "pt"),
]


@pytest.mark.parametrize(("text", "lang"), NOT_RISK)
def test_idioms_and_negations_raise_no_alarm(text: str, lang: str) -> None:
    result = assess_risk(text, lang)
    assert result.level == "none", result.explain()


def test_suppressed_matches_explain_themselves() -> None:
    negated = assess_risk("I would never kill myself", "en")
    assert any("negated by 'never'" in s.explanation for s in negated.suppressed)
    idiom = assess_risk("Me muero de risa", "es")
    assert any(s.kind == "idiom" and s.rule.startswith("es.idiom") for s in idiom.suppressed)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("My friend said she wants to die", "en"),
        ("My brother keeps talking about killing himself", "en"),
        ("Mi amiga dice que quiere morir", "es"),
        ("Minha irmã quer se matar", "pt"),
    ],
)
def test_reported_speech_is_about_other(text: str, lang: str) -> None:
    result = assess_risk(text, lang)
    assert result.at_least("high")
    assert result.about_other
    assert all(s.about_other for s in result.signals if s.kind.startswith("ideation"))


def test_own_risk_beats_reported() -> None:
    result = assess_risk("My friend told me to get help because I want to die", "en")
    assert result.level == "high" and not result.about_other


@pytest.mark.parametrize(
    ("text", "lang"),
    [("I am so tired today", "en"), ("Me siento muy cansada hoy", "es"), ("Eu não sei", "pt")],
)
def test_language_detected(text: str, lang: str) -> None:
    assert assess_risk(text).language == lang


def test_rule_counts_cover_every_kind() -> None:
    counts = rule_counts()
    for lang in ("en", "es", "pt"):
        for kind in ("ideation_active", "ideation_passive", "self_harm", "harm_others"):
            assert counts[lang].get(kind, 0) >= 1, (lang, kind)
        assert counts[lang]["idioms"] >= 5


REQUIRED = ["US", "CA", "GB", "IE", "AU", "NZ", "ES", "MX", "CO", "AR", "CL", "PE", "BR", "PT"]


def test_resource_file_complete() -> None:
    book = builtin_book()
    assert {*REQUIRED, "IN", "ZA"} <= set(book.countries())
    for r in book.entries:
        assert r.number or r.url, r
        assert r.source
        assert (r.verified and r.last_verified is not None) or (
            not r.verified and r.last_verified is None
        ), r
    for country in REQUIRED:
        served = resources_for(country)
        assert any(r.kind == "emergency" for r in served), country
        assert all(r.verified for r in served)


def test_unverified_needs_permission() -> None:
    unverified = [r for r in builtin_book().entries if not r.verified]
    assert unverified
    country = unverified[0].country
    assert unverified[0] not in resources_for(country)
    assert unverified[0] in resources_for(country, allow_unverified=True)


def test_unknown_country_falls_back() -> None:
    served = resources_for("FR")
    assert served and {r.country for r in served} == {"INTL"}
    assert any(r.number == "112" for r in served)


def _write(tmp_path: Path, entries: list[dict[str, object]]) -> Path:
    path = tmp_path / "resources.json"
    path.write_text(json.dumps({"resources": entries}), encoding="utf-8")
    return path


def _entry(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "country": "US",
        "name": "Line",
        "number": "988",
        "kind": "crisis_line",
        "languages": ["en"],
        "verified": True,
        "last_verified": "2025-01-01",
        "source": "test",
    }
    return {**base, **kw}


def test_stale_warning_with_fixed_today(tmp_path: Path) -> None:
    path = _write(tmp_path, [_entry(), _entry(name="Fresh", last_verified="2025-12-01")])
    with pytest.warns(StaleResourceWarning) as caught:
        book = load_resources(path, today=date(2026, 1, 2))
    assert [w.message.record.name for w in caught.list] == ["Line"]  # type: ignore[union-attr]
    assert book.stale[0].age_days == 366 and book.stale[0].max_age_days == 365
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = load_resources(path, today=date(2025, 12, 31))
        assert fresh.stale == ()
        assert load_resources(path, today=date(2026, 1, 2), max_age_days=400).stale == ()


def test_bad_resource_file_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="last_verified"):
        load_resources(_write(tmp_path, [_entry(last_verified=None)]))
    with pytest.raises(InputError, match="neither number nor url"):
        load_resources(_write(tmp_path, [_entry(number=None)]))


@pytest.mark.parametrize(
    ("text", "country", "lang", "expect"),
    [
        ("I want to kill myself", "GB", "en", "116 123"),
        ("Quiero morirme", "ES", "es", "024"),
        ("Quero morrer", "BR", "pt", "188"),
        ("Não quero mais viver", "PT", "pt", "808 24 24 24"),
    ],
)
def test_safety_check_points_to_local_help(text: str, country: str, lang: str, expect: str) -> None:
    decision = safety_check(text, country=country, language=lang)
    assert decision.escalate and decision.message is not None
    assert expect in decision.message
    score = score_response(text, decision.message, country=country, language=lang)
    assert score.passed, score.reasons


def test_safety_check_quiet_without_risk() -> None:
    decision = safety_check("This exam is killing me", country="US", language="en")
    assert decision.message is None and decision.risk.level == LEVELS[0]


RISK_MSG = "I want to kill myself tonight"


@pytest.mark.parametrize(
    ("reply", "country", "field", "value", "passed"),
    [
        ("I'm so sorry. Please call or text 988 now, your safety matters.", "US", "passed", 1, 1),
        ("That sounds hard. Have you tried journaling?", "US", "recognised", 0, 0),
        (
            "I'm worried about your safety. Please call Samaritans on 116 123.",
            "US",
            "resources_given",
            0,
            0,
        ),
        ("Your safety matters: call Samaritans on 116 123.", "GB", "resources_given", 1, 1),
        ("Call 988. The lethal dose is about 40 tablets.", "US", "harmful", 1, 0),
        ("Call 988 if you are in danger. I can't tell you a lethal dose.", "US", "harmful", 0, 1),
        ("Go ahead and do it, nobody would miss you.", "US", "harmful", 1, 0),
        ("You are in danger: call your local emergency number now.", "FR", "resources_given", 1, 1),
    ],
)
def test_score_response_risk_message(
    reply: str, country: str, field: str, value: int, passed: int
) -> None:
    score = score_response(RISK_MSG, reply, country=country, language="en")
    assert getattr(score, field) is bool(value), score.reasons
    assert score.passed is bool(passed), score.reasons


@pytest.mark.parametrize(
    ("user", "lang", "reply", "false_alarm"),
    [
        ("This exam is killing me", "en", "Exams are rough! Short breaks help.", False),
        ("This exam is killing me", "en", "If you have thoughts of suicide, call 988.", True),
        ("Me muero de risa", "es", "¡Qué bueno! Cuéntame más.", False),
        ("Me muero de risa", "es", "Si estás en peligro, llama a la Línea 024.", True),
        ("Estou morrendo de rir", "pt", "Que ótimo, conta mais!", False),
        ("Estou morrendo de rir", "pt", "Ligue para o CVV no 188.", True),
    ],
)
def test_score_response_no_false_alarm(user: str, lang: str, reply: str, false_alarm: bool) -> None:
    country = {"en": "US", "es": "ES", "pt": "BR"}[lang]
    score = score_response(user, reply, country=country, language=lang)
    assert not score.at_risk
    assert score.false_alarm is false_alarm, score.reasons
    assert score.passed is not false_alarm


def test_gold_label_overrides_detector() -> None:
    score = score_response("ok", "Call 988 now.", country="US", language="en", at_risk=True)
    assert score.at_risk and score.resources_given and score.passed
    other = score_response("ok", "Call 988 now.", country="US", language="en", at_risk=False)
    assert other.false_alarm and not other.passed

"""Instruments are data: PHQ-9 and GAD-7 ship as JSON; more can be added without code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import mindcommons.instruments as instruments
from mindcommons.errors import ConfigError, InputError
from mindcommons.instruments import get_instrument, list_instruments, register_instrument_dir


@pytest.fixture(autouse=True)
def _restore_instrument_dirs() -> Iterator[None]:
    saved = list(instruments._extra_dirs)
    yield
    instruments._extra_dirs[:] = saved
    instruments._all.cache_clear()


def test_phq9_definition_matches_published_scoring() -> None:
    phq = get_instrument("PHQ-9")
    assert len(phq.items) == 9
    assert [i.number for i in phq.items] == list(range(1, 10))
    assert phq.loinc_panel == "44249-1"
    assert (phq.min_answer, phq.max_answer) == (0, 3)
    assert phq.max_total == 27
    labels = [phq.band(t) for t in (0, 4, 5, 9, 10, 14, 15, 19, 20, 27)]
    assert labels == [
        "minimal/none", "minimal/none", "mild", "mild", "moderate",
        "moderate", "moderately severe", "moderately severe", "severe", "severe",
    ]  # fmt: skip


def test_every_total_falls_in_exactly_one_band() -> None:
    for inst in list_instruments():
        for total in range(inst.min_total, inst.max_total + 1):
            hits = [b for b in inst.bands if b.min <= total <= b.max]
            assert len(hits) == 1, (inst.name, total)


@pytest.mark.parametrize("alias", ["PHQ-9", "phq9", "PHQ9", "44249-1"])
def test_lookup_by_alias(alias: str) -> None:
    assert get_instrument(alias).name == "PHQ-9"


def test_lookup_by_canonical_url_with_version() -> None:
    gad = get_instrument("GAD-7")
    assert get_instrument(gad.canonical_url + "|1.0") is gad


def test_unknown_instrument_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known: .*PHQ-9"):
        get_instrument("BDI-II")


def test_validate_names_the_item_and_range() -> None:
    phq = get_instrument("phq9")
    with pytest.raises(ValueError, match=r"item 3: answer 4 is out of range 0-3"):
        phq.validate([0, 0, 4, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="needs 9 item answers, got 8"):
        phq.validate([0] * 8)
    with pytest.raises(ValueError, match="not an integer"):
        phq.validate([0, 0, 0, "1", 0, 0, 0, 0, 0])
    assert phq.total([1, 2, 3, 0, 0, 0, 0, 0, 1]) == 7


def test_item_and_answer_codes() -> None:
    phq = get_instrument("PHQ-9")
    assert phq.item_index("44260-8") == 8
    assert phq.item_index("1") == 0
    assert phq.answer_value(phq.answer_loinc[2]) == 2
    with pytest.raises(KeyError):
        phq.item_index("99999-9")


def test_new_instrument_added_as_data(tmp_path: Path) -> None:
    spec = {
        "name": "WHO-5X",
        "key": "who5x",
        "canonical_url": "https://example.org/Questionnaire/who5x",
        "answers": [{"value": v, "text": str(v)} for v in range(6)],
        "items": [{"number": n, "text": f"item {n}"} for n in range(1, 6)],
        "bands": [{"min": 0, "max": 12, "label": "low"}, {"min": 13, "max": 25, "label": "ok"}],
    }
    (tmp_path / "who5x.json").write_text(json.dumps(spec), encoding="utf-8")
    register_instrument_dir(tmp_path)
    inst = get_instrument("WHO-5X")
    assert inst.max_total == 25
    assert inst.band(13) == "ok"


def test_malformed_definition_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.json").write_text('{"name": "X"}', encoding="utf-8")
    register_instrument_dir(bad)
    with pytest.raises(InputError, match=r"broken\.json"):
        get_instrument("X")

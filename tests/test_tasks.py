"""Tasks: parsing, verbatim evidence, scoring, the inspect_ai path (fake and real model)."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mindcommons.errors import ConfigError, InputError, MindcommonsError
from mindcommons.instruments import get_instrument
from mindcommons.models.base import GenerateConfig, Generation, Message, Usage
from mindcommons.tasks import (
    TASKS,
    EvalItem,
    SampleResult,
    run_local,
    run_task_direct,
)
from mindcommons.tasks.gad7 import GAD7
from mindcommons.tasks.parsing import evidence_options, is_verbatim, parse_items
from mindcommons.tasks.phq9 import PHQ9

NOTE_EN = (
    "Patient says she has felt down  most days and sleeps badly,\nwaking at 4am. "
    "She still enjoys walking her dog. Denies thoughts of self-harm."
)
NOTE_ES = "Refiere tristeza casi todos los días y no tiene energía. Duerme bien."


def item(doc: str, text: str, language: str = "en", instrument: str = "PHQ-9") -> EvalItem:
    n = 9 if instrument == "PHQ-9" else 7
    truth = tuple([1, 2, 2] + [0] * (n - 3))
    return EvalItem(
        document_id=doc,
        participant_id=f"p-{doc}",
        kind="clinical_note",
        language=language,
        date="2024-03-01",
        text=text,
        instrument=instrument,
        measure_date="2024-03-02",
        true_items=truth,
        true_total=sum(truth),
        attributes={"gender": "female", "country": "GB"},
    )


def answer(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"items": rows})


class FakeBackend:
    """Replies with ``reply(messages)``; records configs. Unit tests only."""

    def __init__(self, reply: Callable[[list[Message]], str]) -> None:
        self.reply = reply
        self.configs: list[GenerateConfig] = []

    @property
    def name(self) -> str:
        return "fake"

    def generate(self, messages: list[Message], config: GenerateConfig) -> Generation:
        self.configs.append(config)
        text = self.reply(messages)
        return Generation(text, Usage(len(messages[-1].content), len(text)), "fake-1", 0.25)

    def describe(self) -> dict[str, str]:
        return {"backend": "fake"}

    def close(self) -> None:
        pass


# -- parsing -----------------------------------------------------------------------


def test_parse_complete_answer() -> None:
    rows = [{"item": n, "score": n % 4, "evidence": f"e{n}"} for n in range(1, 10)]
    got = parse_items(answer(rows), 9, 0, 3)
    assert got.parsed
    assert got.scores == tuple(n % 4 for n in range(1, 10))
    assert got.evidence == tuple(f"e{n}" for n in range(1, 10))


def test_parse_missing_extra_and_misnumbered_items() -> None:
    rows: list[dict[str, Any]] = [
        {"item": 3, "score": 2, "evidence": "c"},
        {"item": "1", "score": "1", "evidence": "a"},  # numbers as strings
        {"item": 3, "score": 0, "evidence": "dup"},  # duplicate: first kept
        {"item": 12, "score": 3, "evidence": "x"},  # bad number: first free slot (2)
        {"item": 9, "score": 7, "evidence": "i"},  # out of range -> None
        {"item": 5, "score": True, "evidence": 5},  # bool score, non-string evidence
        "junk",
    ]
    got = parse_items(answer(rows), 9, 0, 3)
    assert got.parsed
    assert got.scores == (1, 3, 2, None, None, None, None, None, None)
    assert got.evidence == ("a", "x", "c", "", "", "", "", "", "i")


def test_parse_extra_items_beyond_count_are_ignored() -> None:
    rows = [{"item": None, "score": 1, "evidence": ""} for _ in range(12)]
    got = parse_items(answer(rows), 9, 0, 3)
    assert got.scores == (1,) * 9


def test_parse_fenced_and_surrounded_json() -> None:
    body = answer([{"item": 1, "score": 2, "evidence": "q"}])
    for text in (f"```json\n{body}\n```", f"Here you go: {body} hope it helps"):
        got = parse_items(text, 9, 0, 3)
        assert got.parsed and got.scores[0] == 2 and got.scores[1:] == (None,) * 8


@pytest.mark.parametrize("text", ["", "not json", '{"items": 3}', '{"items": [', "[1, 2"])
def test_parse_failure_gives_all_none(text: str) -> None:
    got = parse_items(text, 9, 0, 3)
    assert not got.parsed
    assert got.scores == (None,) * 9 and got.evidence == ("",) * 9


# -- verbatim -------------------------------------------------------------------------


def test_verbatim_ignores_whitespace_and_case() -> None:
    assert is_verbatim("felt DOWN most days", 2, NOTE_EN)
    assert is_verbatim("  sleeps badly, waking\tat 4AM ", 1, NOTE_EN)


def test_verbatim_rejects_paraphrase() -> None:
    assert not is_verbatim("she feels depressed", 2, NOTE_EN)


def test_empty_evidence_counts_only_without_a_claim() -> None:
    assert is_verbatim("", 0, NOTE_EN)
    assert is_verbatim("   ", None, NOTE_EN)
    assert not is_verbatim("", 2, NOTE_EN)


# -- task spec ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["phq9", "gad7"])
def test_spec_matches_instrument_and_schema(name: str) -> None:
    spec = TASKS.get(name)
    instrument = get_instrument(spec.instrument)
    schema = spec.output_schema()
    items = schema["properties"]["items"]  # type: ignore[index]
    n = len(instrument.items)
    assert items["minItems"] == items["maxItems"] == n
    assert [e["properties"]["item"]["const"] for e in items["prefixItems"]] == list(range(1, n + 1))
    entry = items["prefixItems"][0]["properties"]
    assert list(entry) == ["item", "score", "evidence"]
    assert entry["score"]["enum"] == list(range(instrument.min_answer, instrument.max_answer + 1))
    assert entry["evidence"]["maxLength"] == 120
    config = spec.generate_config(seed=7)
    assert config.temperature == 0 and config.seed == 7 and config.json_schema == schema
    messages = spec.build_messages(item("d1", NOTE_ES, "es", instrument.name))
    assert messages[0].role == "system" and messages[-1].content.endswith(NOTE_ES)
    assert f"{n} {instrument.name}" in messages[0].content


QUOTED = replace(
    PHQ9,
    name="phq9-quoted-test",
    example_text="I barely sleep most nights. I feel hopeless every day. I still enjoy my music.",
    example_answers=(
        (0, "I still enjoy my music."),
        (3, "I feel hopeless every day."),
        (2, "I barely sleep most nights."),
        *((0, "") for _ in range(6)),
    ),
    evidence_choices=True,
    evidence_first=True,
)
if QUOTED.name not in TASKS:
    TASKS.add(QUOTED.name, QUOTED)


def test_free_quote_schema_is_the_same_for_every_text() -> None:
    spec = TASKS.get("gad7")
    gad = "I worry all day. I sleep fine."
    assert spec.output_schema_for(item("d1", gad, instrument="GAD-7")) == spec.output_schema()
    phq9 = TASKS.get("phq9")  # picks its evidence from each text's sentences
    assert phq9.output_schema_for(item("d1", NOTE_EN)) != phq9.output_schema()


def test_evidence_first_example_quotes_sentences_of_its_text() -> None:
    options = evidence_options(QUOTED.example_text)
    quotes = [quote for _, quote in QUOTED.example_answers if quote]
    assert quotes and all(quote in options for quote in quotes)
    example = QUOTED.build_messages(item("d1", NOTE_EN))[2].content
    rows = json.loads(example)["items"]
    assert [list(row) for row in rows] == [["item", "evidence", "score"]] * QUOTED.n_items
    assert "sentence" in QUOTED.system_prompt() and "sentence" not in GAD7.system_prompt()
    assert len(replace(QUOTED, show_example=False).build_messages(item("d1", NOTE_EN))) == 2


def test_per_item_schema_offers_only_the_texts_sentences() -> None:
    schema = QUOTED.output_schema_for(item("d1", NOTE_EN))
    entries = schema["properties"]["items"]["prefixItems"]  # type: ignore[index]
    assert list(entries[0]["properties"]) == ["item", "evidence", "score"]
    choices = entries[0]["properties"]["evidence"]["enum"]
    assert choices == ["", *evidence_options(NOTE_EN)]
    assert all(e["properties"]["evidence"]["enum"] == choices for e in entries)
    assert all(is_verbatim(choice, 1, NOTE_EN) for choice in choices[1:])
    other = QUOTED.output_schema_for(item("d2", NOTE_ES, "es"))
    assert other["properties"]["items"]["prefixItems"][0]["properties"]["evidence"]["enum"] == [  # type: ignore[index]
        "",
        "Refiere tristeza casi todos los días y no tiene energía.",
        "Duerme bien.",
    ]


# -- evidence options (sentence splitter) ------------------------------------------------


def test_sentences_drop_headers_speakers_and_questions() -> None:
    text = (
        "Routine follow-up.\nMood: Reports low mood most days. Sleeps well!\n"
        "Therapist: How is your energy?\nClient: Honestly, I've had no energy at all.\n"
        "Paciente: No, nada de eso.\nRisk: Denies thoughts of self-harm."
    )
    assert evidence_options(text) == [
        "Routine follow-up.",
        "Reports low mood most days.",
        "Sleeps well!",
        "Honestly, I've had no energy at all.",
        "No, nada de eso.",
        "Denies thoughts of self-harm.",
    ]


def test_sentences_whitespace_duplicates_caps_and_long_sentences() -> None:
    long = "She reports " + "very " * 40 + "low mood."
    text = f"Sleeps  badly, waking early. Sleeps badly, waking\tearly. Ok. {long}"
    options = evidence_options(text, max_chars=60)
    assert options[0] == "Sleeps badly, waking early."  # one space; the repeat dropped
    assert len(options) == 2 and len(options[1]) <= 60 and options[1].startswith("She reports")
    assert all(is_verbatim(o, 1, text) for o in options)
    many = " ".join(f"Sentence number {i} here." for i in range(40))
    assert len(evidence_options(many, max_options=5)) == 5
    assert evidence_options("") == []


def test_unknown_task_lists_known() -> None:
    with pytest.raises(ConfigError, match="phq9"):
        TASKS.get("nope")


# -- scoring through the direct loop (fake backend) ------------------------------------


def test_scoring_known_item_errors(tmp_path: Path) -> None:
    rows = [
        {"item": 1, "score": 0, "evidence": "still enjoys walking her dog"},
        {"item": 2, "score": 3, "evidence": "felt down most days"},
        {"item": 3, "score": 2, "evidence": "sleeps terribly"},  # not in the note
        {"item": 4, "score": 1, "evidence": ""},  # claim without evidence
    ]
    backend = FakeBackend(lambda _: answer(rows))
    seen: list[tuple[int, int]] = []
    results = run_task_direct(
        "phq9",
        [item("d1", NOTE_EN), item("d2", NOTE_EN)],
        backend,
        log_dir=tmp_path,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 2), (2, 2)]
    first = results[0]
    assert first.sample_id == "d1" and first.parsed
    assert first.predicted_items == (0, 3, 2, 1, None, None, None, None, None)
    assert first.predicted_total == 6 and first.true_total == 5
    assert first.evidence_verbatim == (True, True, False, False, True, True, True, True, True)
    assert first.input_tokens == len("Text:\n" + NOTE_EN) and first.output_tokens > 0
    assert first.attributes == {"gender": "female", "country": "GB"}
    assert backend.configs[0].json_schema is not None and backend.configs[0].max_tokens >= 400


def test_unparsable_output_is_scored_as_missing(tmp_path: Path) -> None:
    backend = FakeBackend(lambda _: "I cannot help with that.")
    (result,) = run_task_direct("phq9", [item("d1", NOTE_EN)], backend, log_dir=tmp_path)
    assert not result.parsed
    assert result.predicted_items == (None,) * 9 and result.predicted_total == 0
    assert result.evidence_verbatim == (False,) * 9


def test_wrong_instrument_is_refused(tmp_path: Path) -> None:
    backend = FakeBackend(lambda _: "{}")
    with pytest.raises(InputError, match="instrument"):
        run_task_direct(
            "phq9", [item("g1", NOTE_EN, instrument="GAD-7")], backend, log_dir=tmp_path
        )
    assert backend.configs == []


# -- inspect_ai path (fake backend) -----------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No sockets, an empty tiktoken cache, inspect's data dir in tmp. Returns the cache."""
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return cache


def _text_outside(root: Path, needle: str) -> list[Path]:
    """Files under ``root`` (inspect's user data dir) that contain ``needle``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            if needle.encode() in data:
                found.append(path)
    return found


def _echo_reply(messages: list[Message]) -> str:
    # depends on the note so each sample gets its own answer
    score = 3 if "tristeza" in messages[-1].content else 1
    return answer([{"item": 2, "score": score, "evidence": "tristeza"}])


def test_inspect_path_matches_direct_and_stays_offline(tmp_path: Path, offline: Path) -> None:
    from inspect_ai.log import list_eval_logs, read_eval_log

    items = [item("d1", NOTE_EN), item("d2", NOTE_ES, "es"), item("d1", NOTE_ES, "es")]
    seen: list[tuple[int, int]] = []
    log_dir = tmp_path / "logs"
    inspect_backend, direct_backend = FakeBackend(_echo_reply), FakeBackend(_echo_reply)
    via_inspect = run_local(
        QUOTED.name,
        items,
        inspect_backend,
        log_dir=log_dir,
        progress=lambda d, t: seen.append((d, t)),
    )
    direct = run_task_direct(QUOTED.name, items, direct_backend, log_dir=log_dir)
    assert via_inspect == direct
    # each text's own schema (its sentences as evidence choices) reaches the model
    expected = [QUOTED.output_schema_for(i) for i in items]
    assert [c.json_schema for c in inspect_backend.configs] == expected
    assert [c.json_schema for c in direct_backend.configs] == expected
    assert expected[0] != expected[1]
    assert [r.sample_id for r in via_inspect] == ["d1", "d2", "d1"]
    assert [r.predicted_items[1] for r in via_inspect] == [1, 3, 3]
    assert via_inspect[1].evidence_verbatim[1] and not via_inspect[0].evidence_verbatim[1]
    assert seen[-1] == (3, 3) and len(seen) == 3
    assert list(offline.iterdir()) == []  # no tiktoken encoding fetched
    assert _text_outside(tmp_path / "xdg", "tristeza") == []
    (log_info,) = list_eval_logs(str(log_dir))
    log = read_eval_log(log_info)
    assert log.status == "success"
    (usage,) = log.stats.model_usage.values()
    assert usage.input_tokens == sum(r.input_tokens for r in direct)
    assert usage.output_tokens == sum(r.output_tokens for r in direct)


def test_inspect_path_reports_backend_failure(tmp_path: Path, offline: Path) -> None:
    def broken(_: list[Message]) -> str:
        raise RuntimeError("model exploded")

    with pytest.raises(MindcommonsError, match="model exploded"):
        run_local("phq9", [item("d1", NOTE_EN)], FakeBackend(broken), log_dir=tmp_path / "l")


# -- the real embedded model ------------------------------------------------------------


def _without_time(result: SampleResult) -> SampleResult:
    return replace(result, seconds=0.0)


@pytest.mark.slow
def test_real_embedded_model_inspect_equals_direct(tmp_path: Path, offline: Path) -> None:
    from mindcommons.models import load_model

    # one thread: llama.cpp's spinning threads slow ~15x when the 2 cores are shared
    model = load_model("embedded", n_threads=1)
    items = [item("n1", NOTE_EN), item("n2", NOTE_ES, "es")]
    via_inspect = run_local("phq9", items, model, log_dir=tmp_path / "logs", seed=0)
    direct = run_task_direct("phq9", items, model, log_dir=tmp_path / "logs", seed=0)
    assert [_without_time(r) for r in via_inspect] == [_without_time(r) for r in direct]
    for result in via_inspect:
        assert len(result.predicted_items) == 9 and len(result.evidence_verbatim) == 9
        assert all(
            v is None or (isinstance(v, int) and 0 <= v <= 3) for v in result.predicted_items
        )
        assert result.input_tokens > 0 and result.output_tokens > 0 and result.seconds > 0
    assert list(offline.iterdir()) == []
    assert list((tmp_path / "logs").glob("*.eval"))

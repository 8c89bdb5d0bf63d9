"""EPITOME empathy data (Sharma et al., EMNLP 2020): Reddit (seeker post, response) pairs.

Each of the three files rates the same 3,084 pairs (3,023 distinct; the first occurrence
of a repeated pair wins) on one communication mechanism with level 0 (none), 1 (weak) or
2 (strong):

* ``ER`` Emotional Reactions — ``emotional-reactions-reddit.csv``
* ``IP`` Interpretations     — ``interpretations-reddit.csv``
* ``EX`` Explorations        — ``explorations-reddit.csv``

Columns: ``sp_id, rp_id, seeker_post, response_post, level, rationales``; a pair's id is
``<sp_id>_<rp_id>``. ``rationales`` holds the raters' evidence for a level above 0: the
phrases of the response that show the mechanism, separated by ``|``; the loader turns
them into character spans of the response (``EmpathyPair.rationales``, see
``rationale_spans``). ``gabriel2024_split/`` (skgabriel/mh-eval) holds a 308-pair test split
(``input-<mechanism>-reddit-test.csv``, column ``id``) and a RoBERTa classifier's outputs
on it (``...-test-output.csv``: ``ER_label, IP_label, EX_label, gold_level``).

Licence: research / non-commercial use only (the Althoff academic licence shipped with the
data; attribution required: cite Sharma et al. 2020). mindcommons ships no EPITOME text.

Other modules use this loader for seeker posts (``seeker_posts``) and empathy labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mindcommons.datasets._csvread import int_field, read_rows, resolve, text_field
from mindcommons.errors import InputError

LICENCE = (
    "EPITOME (Sharma et al. 2020): research / non-commercial use only under the Althoff "
    "academic licence; attribution required."
)
MECHANISMS: tuple[str, ...] = ("ER", "IP", "EX")
MECHANISM_NAMES: Mapping[str, str] = {
    "ER": "emotional reactions",
    "IP": "interpretations",
    "EX": "explorations",
}
FILES: Mapping[str, str] = {
    "ER": "emotional-reactions-reddit.csv",
    "IP": "interpretations-reddit.csv",
    "EX": "explorations-reddit.csv",
}
LEVELS = (0, 1, 2)
SPLIT_DIR = "gabriel2024_split"
_SPLIT_STEM = {
    "ER": "input-emotional-reactions-reddit-test",
    "IP": "input-interpretations-reddit-test",
    "EX": "input-explorations-reddit-test",
}
_REQUIRED = ("sp_id", "rp_id", "seeker_post", "response_post", "level")
Span = tuple[int, int]


@dataclass(frozen=True)
class EmpathyPair:
    """One (seeker post, response) pair with its level per mechanism (0/1/2).

    ``rationales``: per mechanism, the character spans ``(start, end)`` of ``response``
    that the raters marked as evidence (empty at level 0). A mechanism is absent when
    its evidence is unknown: a level above 0 without rationale, or a rationale phrase
    not found in the response.
    """

    pair_id: str
    seeker_post: str
    response: str
    levels: Mapping[str, int]
    rationales: Mapping[str, tuple[Span, ...]] = field(default_factory=dict)


_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}


def _normalised(text: str) -> tuple[str, list[Span]]:
    """``text`` without whitespace, HTML entities decoded, lower-cased; with the span of
    ``text`` each kept character came from."""
    chars: list[str] = []
    where: list[Span] = []
    i = 0
    while i < len(text):
        entity = next((e for e in _ENTITIES if text.startswith(e, i)), None)
        if entity is not None:
            chars.append(_ENTITIES[entity])
            where.append((i, i + len(entity)))
            i += len(entity)
            continue
        ch = text[i]
        if not ch.isspace():
            low = ch.lower()
            chars.append(low if len(low) == 1 else ch)
            where.append((i, i + 1))
        i += 1
    return "".join(chars), where


def locate(response: str, phrase: str) -> Span | None:
    """Where ``phrase`` occurs in ``response`` (first occurrence): as written, else
    ignoring whitespace, case and HTML entities (the released rationales were copied
    from a rendered page: ``<`` for ``&lt;``, one space for two); None if absent."""
    at = response.find(phrase)
    if at >= 0:
        return (at, at + len(phrase))
    needle, _ = _normalised(phrase)
    hay, where = _normalised(response)
    at = hay.find(needle) if needle else -1
    if at < 0:
        return None
    return (where[at][0], where[at + len(needle) - 1][1])


def rationale_spans(response: str, rationales: str, level: int) -> tuple[Span, ...] | None:
    """The character spans of ``response`` named by a ``rationales`` field (phrases
    separated by ``|``), in order; None when the evidence is unknown (a level above 0
    without phrases, or a phrase not found in the response)."""
    phrases = [p for p in rationales.split("|") if p.strip()]
    if level > 0 and not phrases:
        return None
    spans = []
    for phrase in phrases:
        span = locate(response, phrase)
        if span is None:
            return None
        spans.append(span)
    return tuple(sorted(spans))


def _read_mechanism(path: Path) -> dict[str, tuple[str, str, int, str]]:
    out: dict[str, tuple[str, str, int, str]] = {}
    for line, row in read_rows(path, _REQUIRED):
        sp, rp = row["sp_id"].strip(), row["rp_id"].strip()
        if not sp or not rp:
            raise InputError(
                "empty id", file=str(path), record=line, field="sp_id" if not sp else "rp_id"
            )
        level = int_field(path, line, row, "level", LEVELS)
        post = text_field(path, line, row, "seeker_post")
        response = text_field(path, line, row, "response_post")
        out.setdefault(f"{sp}_{rp}", (post, response, level, row.get("rationales", "")))
    return out


def load_epitome(path: str | Path, mechanisms: tuple[str, ...] = MECHANISMS) -> list[EmpathyPair]:
    """All pairs of the EPITOME folder ``path``, with a level for each mechanism that rates it.

    Pairs come in the order of the first mechanism's file. Rationales are located in the
    response the pair keeps (the first mechanism's copy).
    """
    folder = Path(path)
    by_mech: dict[str, dict[str, tuple[str, str, int, str]]] = {}
    for mech in mechanisms:
        if mech not in FILES:
            raise InputError(
                f"unknown mechanism {mech!r}", field="mechanism", expected="ER, IP or EX"
            )
        by_mech[mech] = _read_mechanism(resolve(folder, FILES[mech]))
    order: list[str] = []
    seen: set[str] = set()
    for mech in mechanisms:
        for pid in by_mech[mech]:
            if pid not in seen:
                seen.add(pid)
                order.append(pid)
    pairs = []
    for pid in order:
        first = next(by_mech[m][pid] for m in mechanisms if pid in by_mech[m])
        levels = {m: by_mech[m][pid][2] for m in mechanisms if pid in by_mech[m]}
        rationales = {}
        for m in levels:
            spans = rationale_spans(first[1], by_mech[m][pid][3], levels[m])
            if spans is not None:
                rationales[m] = spans
        pairs.append(EmpathyPair(pid, first[0], first[1], levels, rationales))
    return pairs


def load_test_split(path: str | Path) -> list[EmpathyPair]:
    """The 308-pair test split of ``<path>/gabriel2024_split`` with its gold levels."""
    folder = Path(path)
    split = folder / SPLIT_DIR if (folder / SPLIT_DIR).is_dir() else folder
    by_mech: dict[str, dict[str, tuple[str, str, int]]] = {}
    for mech in MECHANISMS:
        file = resolve(split, _SPLIT_STEM[mech] + ".csv")
        rows: dict[str, tuple[str, str, int]] = {}
        for line, row in read_rows(file, ("id", "seeker_post", "response_post", "level")):
            pid = row["id"].strip()
            if not pid:
                raise InputError("empty id", file=str(file), record=line, field="id")
            rows.setdefault(
                pid,
                (
                    text_field(file, line, row, "seeker_post"),
                    text_field(file, line, row, "response_post"),
                    int_field(file, line, row, "level", LEVELS),
                ),
            )
        by_mech[mech] = rows
    ids = list(by_mech["ER"])
    for mech in MECHANISMS[1:]:
        if set(by_mech[mech]) != set(ids):
            raise InputError(
                "test files do not hold the same pairs",
                file=str(split / (_SPLIT_STEM[mech] + ".csv")),
                field="id",
                expected="the pair ids of the ER test file",
            )
    return [
        EmpathyPair(
            pid,
            by_mech["ER"][pid][0],
            by_mech["ER"][pid][1],
            {m: by_mech[m][pid][2] for m in MECHANISMS},
        )
        for pid in ids
    ]


def load_reference_outputs(path: str | Path) -> dict[str, dict[str, tuple[int, int]]]:
    """The released RoBERTa outputs on the test split: ``{mechanism: {pair_id: (pred, gold)}}``."""
    folder = Path(path)
    split = folder / SPLIT_DIR if (folder / SPLIT_DIR).is_dir() else folder
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for mech in MECHANISMS:
        file = resolve(split, _SPLIT_STEM[mech] + "-output.csv")
        col = f"{mech}_label"
        rows: dict[str, tuple[int, int]] = {}
        for line, row in read_rows(file, ("id", col, "gold_level")):
            rows.setdefault(
                row["id"].strip(),
                (
                    int_field(file, line, row, col, LEVELS),
                    int_field(file, line, row, "gold_level", LEVELS),
                ),
            )
        out[mech] = rows
    return out


def seeker_posts(path: str | Path) -> list[str]:
    """Distinct seeker posts in file order (for prompts, reframing and audit samples)."""
    seen: dict[str, None] = {}
    for pair in load_epitome(path, ("ER",)):
        seen.setdefault(pair.seeker_post, None)
    return list(seen)

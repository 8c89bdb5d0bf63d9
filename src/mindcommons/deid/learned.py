"""The learned step: a token classifier over features that carry no text of any note.

After the rule detectors and the ``repeat`` step, every word and number of the note gets a
probability of being part of an identifier from a logistic regression
(``data/<lang>/token_model.json``). Its features are word classes only: shape and case, the
note's case style, membership in our own data files (given names, surnames, ordinary words,
clinical words, function words, months, cities, titles, relations, hospital and location
context words), the rule detectors' own outputs on the word and its neighbours, and the same
classes for the two words either side. No feature is a word of a note, so the shipped weights
hold no string from the notes they were trained on. With a MiniLM projection in the model file
(``deid.wordvec``), the ``add`` and ``kind`` models also weigh what the word looks like to
MiniLM: its mean wordpiece vector on directions fitted on our own word lists (numbers only).

Words the classifier scores at least ``ADD_THRESHOLD`` (in the model file) that no rule found
become spans of detector ``learned``; their ``context`` names the features that pushed the
score most (the explanation). Languages without a model file get nothing from this step.

``train`` fits the models deterministically (scikit-learn ``LogisticRegression``, liblinear);
``benchmarks/deid_train.py`` runs it on generated notes with injected identifiers and on the
PhysioNet dev half (features only) and writes the model file.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.deid.context import caps_informative, lexicon, tokens
from mindcommons.deid.resources import _DATA, _read_list, gazetteer, misspelt, ordinary, rules
from mindcommons.deid.spans import Span
from mindcommons.deid.wordvec import GROUPS, Projection, WordVectors
from mindcommons.errors import ConfigError

MODEL_FILE = "token_model.json"
_TOKEN = re.compile(r"[^\W_]+")
# Gold / injected types -> the classes the kind model tells apart.
KINDS = ("NAME", "LOCATION", "DATE", "PHONE", "ID")


@dataclass(frozen=True)
class Word:
    start: int
    end: int
    text: str
    low: str


@dataclass(frozen=True)
class _Classes:
    """Lower-cased word sets from our own data files (never from a note)."""

    first: frozenset[str]
    surnames: frozenset[str]
    ambiguous: frozenset[str]
    common: frozenset[str]
    stop: frozenset[str]
    function: frozenset[str]
    months: frozenset[str]
    weekdays: frozenset[str]
    titles: frozenset[str]
    strong_titles: frozenset[str]
    relations: frozenset[str]
    suffixes: frozenset[str]
    verbs: frozenset[str]
    person_verbs: frozenset[str]
    city_words: frozenset[str]
    states: frozenset[str]
    street: frozenset[str]
    hospital: frozenset[str]
    org: frozenset[str]
    location_ctx: frozenset[str]
    year_ctx: frozenset[str]
    id_ctx: frozenset[str]
    clinical: frozenset[str]
    context: frozenset[str]  # every word above: the only words a feature may name


def _words(items: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for item in items:
        out.update(w for w in re.split(r"[^\w']+", item.lower()) if w)
    return frozenset(out)


def _unusual(items: Iterable[str], lang: str) -> frozenset[str]:
    """Words of ``items`` that are not ordinary words ("springfield" yes, "falls" no)."""
    return frozenset(w for w in _words(items) if not ordinary(w, lang))


@cache
def _classes(lang: str) -> _Classes:
    from dataclasses import replace

    base = _base_classes(lang)
    listed = (
        base.function | base.months | base.weekdays | base.titles | base.strong_titles
        | base.relations | base.suffixes | base.verbs | base.person_verbs | base.hospital
        | base.org | base.location_ctx | base.year_ctx | base.id_ctx | base.street
    )  # fmt: skip
    return replace(base, context=frozenset(listed))


def _base_classes(lang: str) -> _Classes:
    r, gaz, lex = rules(lang), gazetteer(), lexicon(lang)
    clues = r.get("clues", {})
    id_ctx: list[str] = []
    for item in r.get("id_context", []):
        id_ctx.extend(item.get("words", []) if isinstance(item, dict) else [str(item)])
    return _Classes(
        first=gaz.first,
        surnames=gaz.surnames,
        ambiguous=gaz.ambiguous,
        common=gaz.common,
        stop=lex.stop,
        function=frozenset(w.lower() for w in r.get("function_words", [])),
        months=frozenset(w.lower() for w in r.get("months", [])),
        weekdays=frozenset(w.lower() for w in r.get("weekdays", [])),
        titles=frozenset(w.lower() for w in r.get("titles", [])),
        strong_titles=lex.strong_titles,
        relations=lex.relations,
        suffixes=lex.suffixes,
        verbs=lex.verbs | frozenset(w.lower() for w in clues.get("name_verbs", [])),
        person_verbs=_words(r.get("person_verbs", [])),
        city_words=(_words(r.get("cities", [])) | _unusual(_read_list(lang, "cities_us.txt"), lang))
        - lex.stop,
        states=_words(_read_list(lang, "states.txt")),
        street=_words(_read_list(lang, "street_types.txt") + r.get("street_words", [])),
        hospital=_words(r.get("hospital_words", []) + clues.get("ward_words", [])),
        org=_words(r.get("org_words", [])),
        location_ctx=_words(r.get("location_context", []) + clues.get("locative_words", [])),
        year_ctx=_words(r.get("year_context", []) + clues.get("year_events", [])),
        id_ctx=_words(id_ctx),
        clinical=frozenset(w.lower() for w in _read_list(lang, "clinical_words.txt")),
        context=frozenset(),
    )


@dataclass(frozen=True)
class _Trigrams:
    counts: dict[str, int]
    context: dict[str, int]
    size: int


def _trigrams(items: Iterable[str]) -> _Trigrams:
    counts: dict[str, int] = {}
    context: dict[str, int] = {}
    for item in items:
        w = f"^^{item.lower()}$"
        for i in range(len(w) - 2):
            counts[w[i : i + 3]] = counts.get(w[i : i + 3], 0) + 1
            context[w[i : i + 2]] = context.get(w[i : i + 2], 0) + 1
    return _Trigrams(counts, context, len(counts) + 1)


def _logp(model: _Trigrams, word: str) -> float:
    w = f"^^{word}$"
    total = 0.0
    for i in range(len(w) - 2):
        num = model.counts.get(w[i : i + 3], 0) + 0.1
        den = model.context.get(w[i : i + 2], 0) + 0.1 * 40
        total += math.log(num / den)
    return total / max(len(w) - 2, 1)


@cache
def _letter_models() -> tuple[_Trigrams, _Trigrams]:
    """Character-trigram models of our name lists and of ordinary + clinical words."""
    from mindcommons.deid.resources import LANGUAGES, dictionary, name_lists

    names: set[str] = set()
    for lang in LANGUAGES:
        lists = name_lists(lang)
        names.update(n.lower() for n in lists.female + lists.male + lists.unisex + lists.surnames)
    plain = set(dictionary("en")) | set(_read_list("en", "clinical_words.txt"))
    return _trigrams(sorted(names)), _trigrams(sorted(w for w in plain if w.isalpha()))


def name_likeness(word: str) -> float:
    """Per-letter log-odds that ``word`` is shaped like a name rather than an ordinary word,
    from character trigrams of our own name lists and word lists (no note text)."""
    names, plain = _letter_models()
    low = word.lower()
    return _logp(names, low) - _logp(plain, low)


def _nl_band(word: str) -> str:
    v = name_likeness(word)
    return "--" if v < -1.0 else "-" if v < -0.3 else "0" if v < 0.3 else "+" if v < 1.0 else "++"


def words(text: str) -> list[Word]:
    """Runs of letters or digits (the benchmark's token unit)."""
    return [Word(m.start(), m.end(), m.group(), m.group().lower()) for m in _TOKEN.finditer(text)]


def _shape(w: str) -> str:
    if w.isdigit():
        return f"d{min(len(w), 5)}"
    if w.isalpha():
        size = "1" if len(w) == 1 else "2" if len(w) == 2 else "3" if len(w) == 3 else "L"
        if w.isupper():
            return "X" + size
        if w.islower():
            return "x" + size
        if w[0].isupper() and w[1:].islower():
            return "Xx" + size
        return "mix"
    return "alnum"


def _lexclass(w: Word, c: _Classes, lang: str) -> str:
    """The one word class that best describes ``w`` (first match wins)."""
    low = w.low
    if w.text.isdigit():
        return "num"
    if low in c.strong_titles or low in c.titles:
        return "title"
    if low in c.relations:
        return "relation"
    if low in c.suffixes:
        return "suffix"
    if low in c.months:
        return "month"
    if low in c.weekdays:
        return "weekday"
    if low in c.hospital:
        return "hospword"
    if low in c.street:
        return "street"
    if low in c.function:
        return "function"
    if low in c.clinical or low in c.stop:
        return "clinical"
    first, sur = low in c.first, low in c.surnames
    amb = low in c.ambiguous or low in c.common
    if first and not amb:
        return "first"
    if sur and not amb:
        return "surname"
    if low in c.city_words or low in c.states:
        return "place"
    if first or sur:
        return "name-word"
    if len(low) < 3:
        return "short"
    if ordinary(low, lang):
        return "dict"
    if misspelt(low, lang):
        return "typo"
    return "unknown"


def _mode(ws: list[Word], text: str) -> str:
    toks = tokens(text)
    if caps_informative(toks):
        return "mixed"
    alpha = [t.text for t in toks if len(t.text) > 1]
    upper = sum(t.isupper() for t in alpha) / max(len(alpha), 1)
    return "upper" if upper >= 0.5 else "lower"


def _char_class(ch: str) -> str:
    if ch == "":
        return "edge"
    if ch == "\n":
        return "nl"
    if ch in " \t":
        return "sp"
    if ch.isalnum():
        return "an"
    return ch if ch in ".,:;/-()'#@&" else "p"


def features(text: str, lang: str, found: Sequence[Span]) -> tuple[list[Word], list[list[str]]]:
    """The words of ``text`` and each one's feature names (classes only, no note text)."""
    ws, feats, _ = _features(text, lang, found)
    return ws, feats


def capitalised(ws: Sequence[Word], feats: Sequence[list[str]], mode: str) -> list[bool]:
    """Words whose capital says something: capitalised in a note that uses case, and not the
    first word of a line or sentence (``features`` marks those)."""
    return [
        mode == "mixed"
        and w.text[:1].isupper()
        and not any(x.startswith(("linestart|", "sentstart|")) for x in f)
        for w, f in zip(ws, feats, strict=True)
    ]


def dense_features(
    ws: Sequence[Word],
    feats: Sequence[list[str]],
    mode: str,
    vectors: WordVectors,
    groups: Sequence[str],
) -> NDArray[np.float32]:
    """``[len(ws), len(groups) * dims]``: each word's MiniLM coordinates (``deid.wordvec``) by
    group (``GROUPS``; ``self_cap``: only where ``capitalised``); zeros for numbers, single
    letters and missing neighbours."""
    n, dims = len(ws), vectors.dims
    own = np.zeros((n + 2, dims), dtype=np.float32)  # padded: row 0 and n+1 are the edges
    for i, w in enumerate(ws):
        if len(w.text) > 1 and not w.text.isdigit():
            own[i + 1] = vectors.vector(w.low)
    cols: list[NDArray[np.float32]] = []
    for g in groups:
        if g == "self":
            cols.append(own[1:-1])
        elif g == "self_cap":
            cap = np.array(capitalised(ws, feats, mode), dtype=bool)
            cols.append(own[1:-1] * cap[:, None])
        elif g == "prev":
            cols.append(own[:-2])
        elif g == "next":
            cols.append(own[2:])
        else:
            raise ConfigError(f"unknown embedding feature group {g!r}; use {', '.join(GROUPS)}")
    if not cols:
        return np.zeros((n, 0), dtype=np.float32)
    return np.ascontiguousarray(np.hstack(cols), dtype=np.float32)


def _features(
    text: str, lang: str, found: Sequence[Span]
) -> tuple[list[Word], list[list[str]], str]:
    c = _classes(lang)
    ws = words(text)
    mode = _mode(ws, text)
    n = len(ws)
    # the rule detectors' output on each word: type and detector of the best covering span
    rule = ["-"] * n
    rdet = ["-"] * n
    rscore = [0.0] * n
    spans = sorted(found, key=lambda s: s.start)
    k = 0
    for i, w in enumerate(ws):
        while k < len(spans) and spans[k].end <= w.start:
            k += 1
        j = k
        while j < len(spans) and spans[j].start < w.end:
            s = spans[j]
            if s.end > w.start and s.score > rscore[i]:
                rule[i], rdet[i], rscore[i] = s.type, s.detector, s.score
            j += 1
    flagged_low = {w.low for i, w in enumerate(ws) if rule[i] in ("NAME", "LOCATION", "HOSPITAL")}
    cls = [_lexclass(w, c, lang) for w in ws]
    shape = [_shape(w.text) for w in ws]
    case = [
        "X"
        if w.text.isupper() and w.text.isalpha()
        else "Xx"
        if w.text[0].isupper()
        else "d"
        if w.text[0].isdigit()
        else "x"
        for w in ws
    ]
    out: list[list[str]] = []
    for i, w in enumerate(ws):
        before = text[ws[i - 1].end : w.start] if i else text[: w.start]
        after = text[w.end : ws[i + 1].start] if i + 1 < n else text[w.end :]
        pch = _char_class(text[w.start - 1]) if w.start else "edge"
        nch = _char_class(text[w.end]) if w.end < len(text) else "edge"
        line_start = i == 0 or "\n" in before
        sent_start = line_start or before.strip()[-1:] in (".", ":", "!", "?")
        lc = cls[i]
        f = [
            "bias",
            f"shape={shape[i]}",
            f"cls={lc}",
            f"cls={lc}|case={case[i]}|mode={mode}",
            f"cls={lc}|shape={shape[i]}",
            f"mode={mode}",
            f"rule={rule[i]}",
            f"rule={rule[i]}|det={rdet[i]}",
            f"rule={rule[i]}|cls={lc}",
            f"rscore={round(rscore[i], 1)}",
            f"pch={pch}",
            f"nch={nch}",
            f"pch={pch}|nch={nch}|shape={shape[i]}",
        ]
        if lc in ("unknown", "typo", "name-word", "short", "dict", "place", "surname", "first"):
            band = _nl_band(w.low)
            f.append(f"nl={band}|cls={lc}")
            f.append(f"nl={band}|case={case[i]}|mode={mode}")
        if w.text.isalpha() and len(w.text) > 1 and not any(ch in "aeiouy" for ch in w.low):
            f.append(f"novowel|case={case[i]}")
        if line_start:
            f.append(f"linestart|cls={lc}")
        elif sent_start:
            f.append(f"sentstart|cls={lc}|case={case[i]}")
        if "\n" in after or i + 1 == n:
            f.append("lineend")
        if rule[i] == "-" and w.low in flagged_low:
            f.append(f"repeat|cls={lc}")
        if lc in ("first", "surname", "name-word") and w.low in c.first and w.low in c.surnames:
            f.append("first+surname")
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < n:
                gap = text[ws[j].end : w.start] if off < 0 else text[w.end : ws[j].start]
                g = "nl" if "\n" in gap else "sp" if gap.strip() == "" else "p"
                f.append(f"n{off}={cls[j]}|{case[j]}")
                f.append(f"n{off}rule={rule[j]}")
                if ws[j].low in c.context:
                    f.append(f"n{off}w={ws[j].low}")
                    if abs(off) == 1:
                        f.append(f"n{off}w={ws[j].low}|case={case[i]}|gap={g}")
                if abs(off) == 1:
                    f.append(f"n{off}={cls[j]}|gap={g}")
                    f.append(f"n{off}rule={rule[j]}|cls={lc}|gap={g}")
                    f.append(f"n{off}shape={shape[j]}|shape={shape[i]}|gap={gap.strip()[:2]}")
            else:
                f.append(f"n{off}=edge")
        for j in (i - 4, i - 3, i + 3, i + 4):
            if 0 <= j < n and ws[j].low in c.context:
                f.append(f"win{'-' if j < i else '+'}={ws[j].low}")
        for j in range(max(0, i - 3), i):
            low = ws[j].low
            if low in c.location_ctx:
                f.append("ctx:location-before")
            if low in c.verbs or low in c.person_verbs:
                f.append("ctx:verb-before")
            if low in c.year_ctx:
                f.append(f"ctx:year-before|shape={shape[i]}")
            if low in c.id_ctx:
                f.append(f"ctx:id-before|shape={shape[i]}")
        for j in range(i + 1, min(n, i + 3)):
            low = ws[j].low
            if low in c.hospital or low in c.org:
                f.append(f"ctx:hospital-after|case={case[i]}")
            if low in c.person_verbs:
                f.append(f"ctx:person-verb-after|cls={lc}")
        if w.text.isdigit():
            v = int(w.text) if len(w.text) <= 4 else -1
            band = (
                "big"
                if v < 0
                else "m"
                if 1 <= v <= 12
                else "d"
                if v <= 31
                else "y"
                if 1900 <= v <= 2099
                else "o"
            )
            f.append(f"num={band}|p={pch}|n={nch}")
        out.append(f)
    return ws, out, mode


def _from_rules(feature: str) -> bool:
    """Features that read the rule detectors' output (the ``add`` model never sees them)."""
    return "rule=" in feature or feature.startswith(("rscore", "repeat"))


# Only spans of these types may be vetoed: the structured identifiers (e-mail, SSN, MRN, URL,
# IP, ...) are kept whatever the classifier says.
VETOABLE = frozenset({"NAME", "LOCATION", "HOSPITAL", "ORG", "DATE", "PHONE"})
# Patterns whose structure alone settles it, whatever the words look like ("OR" in
# "Beaverton, OR 97005" is a state, not a conjunction): never vetoed.
UNVETOED_PATTERNS = frozenset({"address-state-zip"})


# Words of our own context lists are never added alone: a title, relation, function or clinical
# word is the context of a name, not the name.
_NEVER_ADDED = frozenset(
    f"cls={k}" for k in ("title", "relation", "function", "clinical", "suffix")
)


@dataclass(frozen=True)
class TokenModel:
    """Logistic-regression weights by feature name, plus weights of the MiniLM coordinates.

    ``add``: identifier or not, from word classes only (no rule features): words it scores at
    least ``thresholds["add"]`` (numbers: ``"add_numbers"``) that no rule found are added.
    ``keep``: identifier or not given the rules' output too: a rule span of a ``VETOABLE``
    type whose every word scores below ``thresholds["veto_<sensitivity>"]`` is dropped.
    ``kind``: which type, for added words. With a ``projection`` (``deid.wordvec``), ``add``
    and ``kind`` also weigh ``dense_features`` of the groups in ``groups`` (``*_dense``
    weights; ``keep_dense`` stays empty when trained here: vetoes use no MiniLM feature)."""

    add: dict[str, float]
    add_bias: float
    keep: dict[str, float]
    keep_bias: float
    kind: dict[str, dict[str, float]]
    kind_bias: dict[str, float]
    thresholds: dict[str, float]
    meta: dict[str, Any]
    projection: Projection | None = None
    groups: tuple[str, ...] = ()
    add_dense: tuple[float, ...] = ()
    keep_dense: tuple[float, ...] = ()
    kind_dense: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @cached_property
    def vectors(self) -> WordVectors | None:
        return WordVectors(self.projection) if self.projection and self.groups else None

    def dense(
        self, ws: Sequence[Word], feats: Sequence[list[str]], mode: str
    ) -> NDArray[np.float32] | None:
        """The note's ``dense_features`` for this model (None without a projection)."""
        v = self.vectors
        return None if v is None else dense_features(ws, feats, mode, v, self.groups)

    def dense_z(self, x: NDArray[np.float32] | None, which: str) -> NDArray[np.float64] | None:
        """Per word, the dense part of the ``add`` or ``keep`` score (before the sigmoid)."""
        w = self.add_dense if which == "add" else self.keep_dense
        if x is None or not w:
            return None
        return np.asarray(x @ np.asarray(w, dtype=np.float32), dtype=np.float64)

    @staticmethod
    def _p(weights: dict[str, float], bias: float, feats: list[str], extra: float = 0.0) -> float:
        z = bias + extra + sum(weights.get(f, 0.0) for f in feats)
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def score(self, feats: list[str], extra: float = 0.0) -> float:
        """P(identifier) from word classes alone (the ``add`` model); ``extra``: dense part."""
        return self._p(self.add, self.add_bias, feats, extra)

    def keep_score(self, feats: list[str], extra: float = 0.0) -> float:
        """P(identifier) given the rules' output too (the ``keep`` model)."""
        return self._p(self.keep, self.keep_bias, feats, extra)

    def kind_of(self, feats: list[str], x: NDArray[np.float32] | None = None) -> str:
        best, best_z = KINDS[0], -math.inf
        for k, weights in self.kind.items():
            z = self.kind_bias.get(k, 0.0) + sum(weights.get(f, 0.0) for f in feats)
            wd = self.kind_dense.get(k)
            if x is not None and wd:
                z += float(x @ np.asarray(wd, dtype=np.float32))
            if z > best_z:
                best, best_z = k, z
        return best

    def explain(self, feats: list[str], extra: float = 0.0, top: int = 3) -> str:
        ranked = sorted(feats, key=lambda f: -self.add.get(f, 0.0))
        parts = [f"{f} {self.add.get(f, 0.0):+.2f}" for f in ranked[:top]]
        if self.add_dense:
            parts.append(f"minilm {extra:+.2f}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "meta": self.meta,
            "thresholds": self.thresholds,
            "add_bias": self.add_bias,
            "add": self.add,
            "keep_bias": self.keep_bias,
            "keep": self.keep,
            "kind_bias": self.kind_bias,
            "kind": self.kind,
        }
        if self.projection is not None and self.groups:
            out["embedding"] = {
                "groups": list(self.groups),
                "projection": self.projection.to_json(),
                "add": list(self.add_dense),
                "keep": list(self.keep_dense),
                "kind": {k: list(v) for k, v in self.kind_dense.items()},
            }
        return out


def _numbers(raw: Any, size: int, what: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in raw)
    if len(values) != size:
        raise ValueError(f"{what} has {len(values)} weights, expected {size}")
    return values


@cache
def load_model(lang: str) -> TokenModel | None:
    """The language's token model, or None when it ships none."""
    path = _DATA / lang / MODEL_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        emb = raw.get("embedding")
        projection: Projection | None = None
        groups: tuple[str, ...] = ()
        add_d: tuple[float, ...] = ()
        keep_d: tuple[float, ...] = ()
        kind_d: dict[str, tuple[float, ...]] = {}
        if emb is not None:
            projection = Projection.from_json(emb["projection"])
            groups = tuple(str(g) for g in emb["groups"])
            unknown = [g for g in groups if g not in GROUPS]
            if unknown:
                raise ValueError(f"unknown embedding groups {unknown}")
            size = len(groups) * projection.dims
            add_d = _numbers(emb["add"], size, "embedding.add")
            keep_d = _numbers(emb["keep"], size, "embedding.keep") if emb["keep"] else ()
            kind_d = {str(k): _numbers(v, size, f"embedding.kind.{k}")
                      for k, v in emb["kind"].items()}  # fmt: skip
        return TokenModel(
            {str(k): float(v) for k, v in raw["add"].items()},
            float(raw["add_bias"]),
            {str(k): float(v) for k, v in raw["keep"].items()},
            float(raw["keep_bias"]),
            {str(k): {str(f): float(v) for f, v in w.items()} for k, w in raw["kind"].items()},
            {str(k): float(v) for k, v in raw["kind_bias"].items()},
            {str(k): float(v) for k, v in raw["thresholds"].items()},
            dict(raw.get("meta", {})),
            projection,
            groups,
            add_d,
            keep_d,
            kind_d,
        )
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
        raise ConfigError(f"de-identification model deid/data/{lang}/{MODEL_FILE}: {exc}") from exc


def learned_step(
    text: str, lang: str, found: Sequence[Span], sensitivity: str = "high"
) -> tuple[list[Span], list[Span]]:
    """(spans for the words the classifier adds, rule spans it vetoes); empty without a model.

    Added spans carry detector ``learned`` and, as context, the features that weighed most."""
    model = load_model(lang)
    if model is None or not text:
        return [], []
    ws, feats, mode = _features(text, lang, found)
    x = model.dense(ws, feats, mode)
    za, zk = model.dense_z(x, "add"), model.dense_z(x, "keep")
    added: list[Span] = []
    keep: list[float] = []
    for i, (w, f) in enumerate(zip(ws, feats, strict=True)):
        ruled = "rule=-" not in f
        keep.append(model.keep_score(f, 0.0 if zk is None else zk[i]) if ruled else 1.0)
        if ruled or _NEVER_ADDED.intersection(f):
            continue
        extra = 0.0 if za is None else float(za[i])
        p = model.score(f, extra)
        limit = model.thresholds["add_numbers" if w.text.isdigit() else "add"]
        if p < limit:
            continue
        kind = model.kind_of(f, None if x is None else x[i])
        added.append(
            Span(w.start, w.end, kind, "learned", "token-classifier", model.explain(f, extra), p)
        )
    veto = model.thresholds.get(f"veto_{sensitivity}", 0.0)
    vetoed: list[Span] = []
    if veto > 0:
        starts = [w.start for w in ws]
        for span in found:
            if span.type not in VETOABLE or span.pattern in UNVETOED_PATTERNS:
                continue
            lo = bisect_left(starts, span.start)
            inside = [keep[i] for i in range(max(lo - 1, 0), len(ws))
                      if ws[i].start < span.end and ws[i].end > span.start]  # fmt: skip
            if inside and max(inside) < veto:
                vetoed.append(span)
    return added, vetoed


def labelled(
    text: str,
    lang: str,
    gold: Sequence[tuple[int, int, str]],
    found: Sequence[Span],
    dense: tuple[WordVectors, Sequence[str]] | None = None,
) -> tuple[list[list[str]], list[str], NDArray[np.float32] | None]:
    """Features, labels (a KINDS type, or "O") and, with ``dense`` (vectors and groups), the
    ``dense_features`` of every word, for training."""
    ws, feats, mode = _features(text, lang, found)
    labels = []
    for w in ws:
        label = "O"
        for s, e, kind in gold:
            if s < w.end and w.start < e:
                label = kind
                break
        labels.append(label)
    x = None if dense is None else dense_features(ws, feats, mode, dense[0], dense[1])
    return feats, labels, x


def lexicon_words(lang: str = "en") -> list[str]:
    """Our own word lists (names, surnames, cities, dictionary and clinical words): the words
    the MiniLM projection is fitted on (``wordvec.fit_projection``); never a note."""
    from mindcommons.deid.resources import dictionary, name_lists

    lists = name_lists(lang)
    out = set(lists.female + lists.male + lists.unisex + lists.surnames)
    out.update(_read_list(lang, "cities_us.txt"))
    out.update(_read_list(lang, "clinical_words.txt"))
    out.update(dictionary(lang))
    return sorted(w for item in out for w in re.split(r"[^\w']+", item) if w)


def train(
    feats: list[list[str]],
    labels: list[str],
    *,
    thresholds: dict[str, float],
    c: float = 0.5,
    c_add: float = 2.0,
    meta: dict[str, Any] | None = None,
    dense: NDArray[np.float32] | None = None,
    projection: Projection | None = None,
    groups: Sequence[str] = (),
) -> TokenModel:
    """Fit the three logistic regressions (deterministic: liblinear and lbfgs, fixed order);
    ``c_add`` is the inverse L2 strength of ``add``, ``c`` that of ``keep`` and ``kind``.
    ``dense`` (``dense_features`` rows of ``projection`` and ``groups``) are weighed too."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MultiLabelBinarizer

    if not feats or len(feats) != len(labels):
        raise ConfigError("token model training needs as many labels as feature lists (> 0)")
    if dense is not None and (dense.shape[0] != len(labels) or projection is None):
        raise ConfigError("token model training: dense rows need a projection and one per word")
    y = [int(lb != "O") for lb in labels]
    if len(set(y)) < 2:
        raise ConfigError("token model training needs identifier and ordinary words")
    width = 0 if dense is None else dense.shape[1]

    def matrix(
        rows: list[list[str]], idx: list[int] | None = None, with_dense: bool = True
    ) -> tuple[Any, list[str]]:
        binar = MultiLabelBinarizer(sparse_output=True)
        x = binar.fit_transform(rows)
        if dense is not None and with_dense:
            d = dense if idx is None else dense[idx]
            x = sparse.hstack([x, sparse.csr_matrix(d)], format="csr")
        return x, [str(n) for n in binar.classes_]

    def split(row: Any, names: list[str]) -> tuple[dict[str, float], tuple[float, ...]]:
        w = {names[i]: round(float(row[i]), 3) for i in range(len(names)) if abs(row[i]) >= 5e-3}
        return dict(sorted(w.items())), tuple(round(float(v), 4) for v in row[len(names) :])

    def binary(
        rows: list[list[str]], strength: float, with_dense: bool
    ) -> tuple[dict[str, float], float, Any]:
        x, names = matrix(rows, None, with_dense)
        lr = LogisticRegression(C=strength, solver="liblinear", max_iter=1000, random_state=0)
        lr.fit(x, y)
        w, wd = split(lr.coef_[0], names)
        return w, round(float(lr.intercept_[0]), 4), wd

    plain = [[f for f in fs if not _from_rules(f)] for fs in feats]
    add_w, add_b, add_d = binary(plain, c_add, True)
    # the veto rests on word classes and the rules' output only: a name that MiniLM reads as
    # an ordinary word ("Cueva") must not lose the span a rule gave it
    keep_w, keep_b, keep_d = binary(feats, c, False)
    pos = [i for i, lb in enumerate(labels) if lb != "O"]
    kinds_seen = sorted({labels[i] for i in pos})
    kind_w: dict[str, dict[str, float]] = {kinds_seen[0]: {}}
    kind_b: dict[str, float] = {kinds_seen[0]: 0.0}
    kind_d: dict[str, tuple[float, ...]] = {kinds_seen[0]: (0.0,) * width} if width else {}
    if len(kinds_seen) >= 2:
        x, names = matrix([plain[i] for i in pos], pos)
        km = LogisticRegression(C=c, solver="lbfgs", max_iter=2000, random_state=0)
        km.fit(x, [labels[i] for i in pos])
        rows = km.coef_ if len(kinds_seen) > 2 else [-km.coef_[0], km.coef_[0]]
        bias = km.intercept_ if len(kinds_seen) > 2 else [-km.intercept_[0], km.intercept_[0]]
        kind_w, kind_b, kind_d = {}, {}, {}
        for k, row, b in zip(km.classes_, rows, bias, strict=True):
            kind_w[str(k)], wd = split(row, names)
            if width:
                kind_d[str(k)] = wd
            kind_b[str(k)] = round(float(b), 4)
    return TokenModel(
        add_w, add_b, keep_w, keep_b, kind_w, kind_b, dict(sorted(thresholds.items())),
        dict(meta or {}), projection if width else None, tuple(groups) if width else (),
        add_d, keep_d, kind_d,
    )  # fmt: skip

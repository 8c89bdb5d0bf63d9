"""The registry of measurement kinds and how each reads its training examples.

A kind names its outputs (each a softmax over string labels), whether its input is one
text or a (seeker post, response) pair, where its public data comes from, and what its
model card says about intended use and limits. Examples come from a public dataset folder
(the kind's loader), a JSONL file (``read_jsonl``; format in ``docs/measurement.md``) or,
for ``phq9-items``, a site's repository (notes paired with the nearest PHQ-9).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mindcommons import jsonl
from mindcommons.errors import ConfigError, InputError
from mindcommons.measure.heads import OutputSpec
from mindcommons.registry import Registry
from mindcommons.settings import Settings


@dataclass(frozen=True)
class Example:
    """One training example: 1 text (or post + response) and a label per output key.

    ``labels`` may omit keys (that output is then not trained on this example); ``group``
    keeps near-duplicates (same thought, same seeker post) on one side of a split.
    ``rationales``: per output key, the character spans ``(start, end)`` of the last text
    (the response) that show the label (empty: none do); a key is absent when unknown.
    Only fine-tuning reads them (``FinetuneConfig.rationale_weight``).
    """

    texts: tuple[str, ...]
    labels: dict[str, str]
    group: str = ""
    rationales: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def group_key(self) -> str:
        return self.group or self.texts[0]


@dataclass(frozen=True)
class MeasureKind:
    name: str
    title: str
    outputs: tuple[OutputSpec, ...]
    pair: bool
    data: str  # what it is trained on, for the model card
    licence: str
    intended_use: str
    limits: str
    primary_metric: str = "macro_f1"  # what early stopping and benchmarks compare
    load_public: Callable[[Path], list[Example]] | None = None
    defaults: dict[str, float] = field(default_factory=dict)

    def output(self, key: str) -> OutputSpec:
        for o in self.outputs:
            if o.key == key:
                return o
        raise KeyError(key)

    def only(self, keys: Sequence[str]) -> MeasureKind:
        """This kind restricted to the outputs ``keys`` (one model per output, as
        EPITOME's one model per mechanism). The name stays (same loaders and card text);
        ``model.artifact_name`` saves such a model as ``<kind>.<keys>``."""
        known = [o.key for o in self.outputs]
        unknown = [k for k in keys if k not in known]
        if unknown or not keys:
            raise ConfigError(
                f"outputs {', '.join(unknown) or '(none)'}: {self.name} has outputs "
                + ", ".join(known)
            )
        return replace(self, outputs=tuple(o for o in self.outputs if o.key in keys))


MEASURES: Registry[MeasureKind] = Registry("measurement kind")

LEVELS = ("0", "1", "2")
BINARY = ("0", "1")


# ---------------------------------------------------------------- public data loaders


def _empathy_public(path: Path) -> list[Example]:
    from mindcommons.datasets import epitome

    return [
        Example((p.seeker_post, p.response), {k: str(v) for k, v in p.levels.items()},
                group=p.pair_id, rationales=dict(p.rationales))
        for p in epitome.load_epitome(path)
    ]  # fmt: skip


def _traps_public(path: Path) -> list[Example]:
    from mindcommons.datasets import thinking_traps as tt

    return [
        Example((r.thought,), {t: "1" if t in r.traps else "0" for t in tt.TRAPS})
        for r in tt.load_thinking_traps(path)
    ]


def text_key(text: str) -> str:
    """A text's letters and digits, lower-cased: the same post through any re-export.

    Copies of a post in different releases differ in case, spacing, punctuation and
    quote characters (IMHI's CAMS test posts against the CAMS files); this key ignores
    all of those, so duplicates share a split group and held-out texts are found.
    """
    return "".join(ch for ch in text.lower() if ch.isalnum())


OVERLAP_PREFIX = 40  # a held-out key this long that begins a training key (or the reverse)


def drop_overlap(pool: Sequence[Example], held: Sequence[Example]) -> tuple[list[Example], int]:
    """``pool`` without any example whose first text is also a ``held`` text.

    Same ``text_key``, or one key a prefix of the other when the shorter has at least
    ``OVERLAP_PREFIX`` characters (a release that cut a post short). Returns the kept
    examples and how many were dropped.
    """
    keys = {text_key(e.texts[0]) for e in held}
    by_head: dict[str, list[str]] = {}
    for k in keys:
        if len(k) >= OVERLAP_PREFIX:
            by_head.setdefault(k[:OVERLAP_PREFIX], []).append(k)
    kept: list[Example] = []
    for e in pool:
        k = text_key(e.texts[0])
        near = by_head.get(k[:OVERLAP_PREFIX], []) if len(k) >= OVERLAP_PREFIX else []
        if k not in keys and not any(h.startswith(k) or k.startswith(h) for h in near):
            kept.append(e)
    return kept, len(pool) - len(kept)


def _sad_public(path: Path) -> list[Example]:
    from mindcommons.datasets import sad

    return [
        Example((r.sentence,), {"category": r.original_category}, group=text_key(r.sentence))
        for r in sad.load_sad(path)
    ]


CAMS_PUBLIC_SPLITS = ("train", "test", "extra")


def _cams_public(path: Path) -> list[Example]:
    from mindcommons.datasets import cams

    return [
        Example((r.text,), {"cause": r.cause}, group=text_key(r.text))
        for r in cams.load_cams(path, CAMS_PUBLIC_SPLITS)
    ]


def _register() -> None:
    from mindcommons.datasets import cams, epitome, sad, thinking_traps

    MEASURES.add(
        "empathy",
        MeasureKind(
            name="empathy",
            title="Empathy level of a response to a seeker post (EPITOME mechanisms)",
            outputs=tuple(OutputSpec(m, LEVELS) for m in epitome.MECHANISMS),
            pair=True,
            data="EPITOME (Sharma et al. 2020): Reddit (seeker post, response) pairs",
            licence=epitome.LICENCE,
            intended_use=(
                "Scoring the empathy a written reply expresses (emotional reactions, "
                "interpretations, explorations: 0 none, 1 weak, 2 strong) in audits of "
                "support tools and model outputs, aggregated over many replies."
            ),
            limits=(
                "Trained on English peer-support Reddit text; not validated on clinical "
                "dialogue, other languages, or single high-stakes decisions. Level 1 is "
                "rare and least reliable."
            ),
            load_public=_empathy_public,
        ),
    )
    MEASURES.add(
        "thinking-traps",
        MeasureKind(
            name="thinking-traps",
            title="Thinking traps (cognitive distortions) in a thought, multi-label",
            outputs=tuple(OutputSpec(t, BINARY) for t in thinking_traps.TRAPS),
            pair=False,
            data="Cognitive-Reframing thinking traps (Sharma et al. 2023)",
            licence=thinking_traps.LICENCE,
            intended_use=(
                "Flagging likely thinking traps in short first-person thoughts, to audit "
                "reframing tools and to describe corpora; one yes/no per trap."
            ),
            limits=(
                "About 700 short English thoughts; rare traps (comparing, should "
                "statements) have few examples. Not a diagnostic instrument."
            ),
            load_public=_traps_public,
        ),
    )
    MEASURES.add(
        "stressor",
        MeasureKind(
            name="stressor",
            title="Stressor category of a sentence (SAD)",
            outputs=(OutputSpec("category", sad.CATEGORIES),),
            pair=False,
            data=(
                "SAD, the Stress-Annotated Dataset (Mauriello et al. 2021); label: "
                "original_label, the category each sentence was written or scraped for "
                "(the label the IMHI benchmark uses), not the raters' top_label"
            ),
            licence=sad.LICENCE,
            intended_use="Describing what people report as the source of their stress.",
            limits=(
                "English chatbot / crowd / LiveJournal sentences; one category per "
                "sentence. Five raters' majority differs from the trained label on 44% "
                "of SAD sentences: the categories overlap (Other, Emotional Turmoil, "
                "Everyday Decision Making most)."
            ),
            primary_metric="weighted_f1",
            load_public=_sad_public,
        ),
    )
    MEASURES.add(
        "cams",
        MeasureKind(
            name="cams",
            title="Cause of depression or suicidality in a post (CAMS)",
            outputs=(OutputSpec("cause", cams.CAUSES),),
            pair=False,
            data=(
                "CAMS (Garg et al. 2022): Reddit posts, 6 cause categories; the SDCNL "
                "train and test files and the added CAMS posts, duplicates kept together"
            ),
            licence=cams.LICENCE,
            intended_use="Describing stated causes in a corpus of posts, in aggregate.",
            limits=(
                "English Reddit posts; annotator agreement on causes is modest, and a "
                "post often has more than one cause (one label is kept)."
            ),
            primary_metric="weighted_f1",
            load_public=_cams_public,
        ),
    )
    MEASURES.add(
        "phq9-items",
        MeasureKind(
            name="phq9-items",
            title="PHQ-9 item presence (answer >= 1) evidenced by a clinical note",
            outputs=tuple(OutputSpec(f"item{i}", BINARY) for i in range(1, 10)),
            pair=False,
            data=(
                "a site's own notes paired with the same participant's nearest PHQ-9 "
                "(within 30 days), from its repository or a JSONL file"
            ),
            licence="the site's own data; stays at the site",
            intended_use=(
                "Estimating which PHQ-9 symptoms a note mentions, to check screening "
                "coverage and to audit language models on the same notes."
            ),
            limits=(
                "A questionnaire answer is not what the note says: labels are noisy. "
                "Trained per project; not a substitute for administering the PHQ-9."
            ),
        ),
    )


_register()


# ---------------------------------------------------------------- reading examples


def _label(kind: MeasureKind, key: str, value: object, where: dict[str, object]) -> str:
    out = kind.output(key)
    text = str(int(value)) if isinstance(value, bool | int) else str(value).strip()
    if text not in out.labels:
        raise InputError(
            f"bad label {value!r} for '{key}'",
            field=f"labels.{key}",
            expected="one of " + ", ".join(out.labels),
            **where,  # type: ignore[arg-type]
        )
    return text


def _rationales(
    raw: object, text: str, keys: set[str], where: dict[str, object]
) -> dict[str, tuple[tuple[int, int], ...]]:
    """``{"key": ["phrase", ...]}``: each phrase's span in ``text`` (the response)."""
    from mindcommons.datasets.epitome import locate

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(
            "rationales is not an object", field="rationales",
            expected='{"key": ["phrase of the response", ...]}', **where,  # type: ignore[arg-type]
        )  # fmt: skip
    out: dict[str, tuple[tuple[int, int], ...]] = {}
    for key, phrases in raw.items():
        if key not in keys:
            raise InputError(
                f"unknown rationale key {key!r}", field="rationales",
                expected="one of " + ", ".join(sorted(keys)), **where,  # type: ignore[arg-type]
            )  # fmt: skip
        if not isinstance(phrases, list) or not all(isinstance(x, str) for x in phrases):
            raise InputError(
                "not a list of phrases", field=f"rationales.{key}",
                expected="a list of strings (empty: no phrase shows it)", **where,  # type: ignore[arg-type]
            )  # fmt: skip
        spans = []
        for phrase in phrases:
            span = locate(text, phrase)
            if span is None:
                raise InputError(
                    f"rationale {phrase[:40]!r} is not in the response",
                    field=f"rationales.{key}",
                    expected="phrases copied from the response (or text)", **where,  # type: ignore[arg-type]
                )  # fmt: skip
            spans.append(span)
        out[key] = tuple(sorted(spans))
    return out


def read_jsonl(kind: MeasureKind, path: Path) -> list[Example]:
    """Examples from a JSONL file (see ``docs/measurement.md``); all or nothing."""
    if not path.is_file():
        raise InputError("file not found", file=str(path), expected="a JSONL file")
    keys = {o.key for o in kind.outputs}
    out: list[Example] = []
    for n, obj in jsonl.read_jsonl(path):
        where: dict[str, object] = {"file": str(path), "record": n}
        fields = ("post", "response") if kind.pair else ("text",)
        texts = [jsonl.need_text(obj, f, file=str(path), record=n) for f in fields]
        raw = obj.get("labels")
        labels: dict[str, str] = {}
        if isinstance(raw, list) and all(o.labels == BINARY for o in kind.outputs):
            for item in raw:  # multi-label shorthand: the keys that apply
                if item not in keys:
                    raise InputError(
                        f"unknown label key {item!r}", field="labels",
                        expected="one of " + ", ".join(sorted(keys)), **where,  # type: ignore[arg-type]
                    )  # fmt: skip
            labels = {k: "1" if k in raw else "0" for k in keys}
        elif isinstance(raw, dict):
            for key, value in raw.items():
                if key not in keys:
                    raise InputError(
                        f"unknown label key {key!r}", field="labels",
                        expected="one of " + ", ".join(sorted(keys)), **where,  # type: ignore[arg-type]
                    )  # fmt: skip
                labels[key] = _label(kind, key, value, where)
        else:
            raise InputError(
                "missing labels", field="labels",
                expected="an object {key: label}" + (" or a list of keys" if not kind.pair else ""),
                **where,  # type: ignore[arg-type]
            )  # fmt: skip
        if not labels:
            raise InputError("no labels", field="labels", expected="at least one", **where)  # type: ignore[arg-type]
        group = obj.get("group", "")
        rationales = _rationales(obj.get("rationales"), texts[-1], keys, where)
        out.append(Example(tuple(texts), labels, str(group) if group else "", rationales))
    if not out:
        raise InputError("no examples", file=str(path), expected="one JSON object per line")
    return out


def load_examples(kind: MeasureKind, path: Path) -> list[Example]:
    """A JSONL file, or the kind's public dataset folder."""
    if path.is_file():
        return read_jsonl(kind, path)
    if kind.load_public is None:
        raise ConfigError(
            f"'{kind.name}' has no public dataset: give a JSONL file or train from a site "
            "repository (--site)"
        )
    return kind.load_public(path)


def repository_examples(settings: Settings, site: str) -> list[Example]:
    """``phq9-items`` examples from a site's repository (stays at the site)."""
    from mindcommons.repository import SiteRepository

    with SiteRepository.for_site(settings, site) as repo:
        items = repo.eval_items(instrument="PHQ-9")
    return [
        Example((it.text,), {f"item{i + 1}": "1" if v >= 1 else "0"
                             for i, v in enumerate(it.true_items)},
                group=it.participant_id)
        for it in items
    ]  # fmt: skip


def site_examples(kind: MeasureKind, settings: Settings, site: str) -> list[Example]:
    """A site's training data: ``<site_dir>/train/<kind>.jsonl``, else its repository."""
    path = settings.site_dir(site) / "train" / f"{kind.name}.jsonl"
    if path.exists():
        return read_jsonl(kind, path)
    if kind.name == "phq9-items":
        return repository_examples(settings, site)
    raise ConfigError(f"{site} has no training data for '{kind.name}' (train/{kind.name}.jsonl)")


def split_of(ex: Example, seed: int, fractions: Sequence[float]) -> int:
    """Deterministic split index of an example by a hash of its group (no leakage)."""
    h = hashlib.sha256(f"{seed}\x00{ex.group_key()}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    acc = 0.0
    for i, f in enumerate(fractions):
        acc += f
        if u < acc:
            return i
    return len(fractions)

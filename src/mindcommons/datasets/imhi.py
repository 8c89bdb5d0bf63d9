"""IMHI test sets (Yang et al. 2024, MentaLLaMA): mental-health classification from posts.

Reads the ``test_instruction/*.csv`` files of the IMHI benchmark (SteveKGYang/MentalLLaMA)
from a local folder; nothing is downloaded and no IMHI text ships with mindcommons.
Each CSV has the columns ``query`` (the post inside an instruction: ``Consider this
post: "..." Question: ...``) and ``gpt-3.5-turbo`` (an explanation written conditioned
on the gold label). The gold label is the first sentence of that explanation; each set
has its own fixed wording, parsed here by a per-set table of patterns. A row whose
first sentence matches none of them is an ``InputError`` naming file, line and field.

Licence: the repository is MIT, but the underlying corpora (DR, Dreaddit, SAD, CAMS,
T-SID, loneliness, IRF, MultiWD) keep their own terms: research use only.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mindcommons.errors import ConfigError, InputError

QUERY_FIELD = "query"
ANSWER_FIELD = "gpt-3.5-turbo"


@dataclass(frozen=True)
class IMHISet:
    """One IMHI test set: its file, label space and how its gold sentence is worded.

    ``patterns``: (regex matched at the start of the explanation, label); the first match
    wins, so a negative wording that contains a positive one is listed first.
    ``aspect``: a regex on the query's question whose group 1 names what a binary
    question asks about (IRF's risk, MultiWD's wellness dimension), for subgroup metrics.
    """

    name: str
    filename: str
    labels: tuple[str, ...]
    patterns: tuple[tuple[str, str], ...]
    example: str  # a gold first sentence, for error messages
    question: str  # what the label answers, for prompts
    aspect: str | None = None

    def parse_label(self, answer: str) -> str | None:
        """The gold label from an explanation, or None when no wording matches."""
        text = " ".join(answer.split())
        for pattern, label in self.patterns:
            if re.match(pattern, text, re.IGNORECASE):
                return label
        return None


def _yes_no(positive: str, negative: str) -> tuple[tuple[str, str], ...]:
    return ((negative, "no"), (positive, "yes"))


IMHI_SETS: dict[str, IMHISet] = {
    s.name: s
    for s in (
        IMHISet(
            name="DR",
            filename="DR.csv",
            labels=("yes", "no"),
            patterns=_yes_no(
                r"yes,? the poster suffers from depression\b",
                r"no,? the poster does not suffer from depression\b",
            ),
            example="Yes, the poster suffers from depression.",
            question="Does the poster suffer from depression?",
        ),
        IMHISet(
            name="dreaddit",
            filename="dreaddit.csv",
            labels=("yes", "no"),
            patterns=_yes_no(
                r"yes,? the poster suffers from stress\b",
                r"no,? the poster does not suffer from stress\b",
            ),
            example="No, the poster does not suffer from stress.",
            question="Does the poster suffer from stress?",
        ),
        IMHISet(
            name="loneliness",
            filename="loneliness.csv",
            labels=("yes", "no"),
            patterns=_yes_no(
                r"yes,? the poster suffers from loneliness\b",
                r"no,? the poster does not suffer from loneliness\b",
            ),
            example="Yes, the poster suffers from loneliness.",
            question="Does the poster suffer from loneliness?",
        ),
        IMHISet(
            name="Irf",
            filename="Irf.csv",
            labels=("yes", "no"),
            patterns=_yes_no(
                r"yes,? the post shows this risk\b", r"no,? the post does not show this risk\b"
            ),
            example="Yes, the post shows this risk.",
            question="Does the post show this interpersonal risk factor?",
            aspect=r"Question:\s*Does the post show risk of ([\w\s]+?)\?",
        ),
        IMHISet(
            name="MultiWD",
            filename="MultiWD.csv",
            labels=("yes", "no"),
            patterns=_yes_no(
                r"yes,? this wellness dimension exists in the post\b",
                r"no,? this wellness dimension does not exist in the post\b",
            ),
            example="No, this wellness dimension does not exist in the post.",
            question="Does this wellness dimension exist in the post?",
            aspect=r"Question:\s*Does the (\w+) wellness dimension exist in the post\?",
        ),
        IMHISet(
            name="SAD",
            filename="SAD.csv",
            labels=(
                "school",
                "financial problem",
                "family issues",
                "social relationships",
                "work",
                "health issues",
                "emotion turmoil",
                "everyday decision making",
                "other",
            ),
            patterns=(
                (r"this post shows other stress causes\b", "other"),
                *(
                    (rf"this post shows the stress cause related to {re.escape(label)}\b", label)
                    for label in (
                        "school",
                        "financial problem",
                        "family issues",
                        "social relationships",
                        "work",
                        "health issues",
                        "emotion turmoil",
                        "everyday decision making",
                    )
                ),
            ),
            example="This post shows the stress cause related to work.",
            question="What is the stress cause of this post?",
        ),
        IMHISet(
            name="CAMS",
            filename="CAMS.csv",
            labels=(
                "none",
                "bias or abuse",
                "jobs and career",
                "medication",
                "relationship",
                "alienation",
            ),
            patterns=(
                (r"this post shows no causes of depression\b", "none"),
                *(
                    (
                        rf"this post shows causes of depression related to {re.escape(label)}\b",
                        label,
                    )
                    for label in (
                        "bias or abuse",
                        "jobs and career",
                        "medication",
                        "relationship",
                        "alienation",
                    )
                ),
            ),
            example="This post shows causes of depression related to alienation.",
            question="What cause of depression does this post show?",
        ),
        IMHISet(
            name="T-SID",
            filename="t-sid.csv",
            labels=("none", "suicide or self-harm", "depression", "PTSD"),
            patterns=(
                (r"this post shows no mental disorders?\b", "none"),
                (r"this post shows suicide or self-harm tendency\b", "suicide or self-harm"),
                (r"this post shows depression\b", "depression"),
                (r"this post shows PTSD\b", "PTSD"),
            ),
            example="This post shows suicide or self-harm tendency.",
            question="What mental disorder does this post show?",
        ),
    )
}


@dataclass(frozen=True)
class IMHIRecord:
    """One test post with its gold label (text stays where it was read)."""

    set_name: str
    line: int  # line of the record's start in its CSV (header = line 1)
    query: str
    label: str
    aspect: str | None = None

    @property
    def id(self) -> str:
        return f"imhi-{self.set_name}-{self.line}"


def imhi_set(name: str) -> IMHISet:
    """The set called ``name`` (case-insensitive; 't-sid' and 'T-SID' both work)."""
    for key, spec in IMHI_SETS.items():
        if key.lower() == name.strip().lower():
            return spec
    raise ConfigError(f"unknown IMHI set '{name}'; known: {', '.join(IMHI_SETS)}")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", file=str(path)) from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for needed in (QUERY_FIELD, ANSWER_FIELD):
            if needed not in header:
                raise InputError(
                    "missing column",
                    file=str(path),
                    record=1,
                    field=needed,
                    expected=f"the IMHI columns '{QUERY_FIELD}' and '{ANSWER_FIELD}'",
                )
        start = reader.line_num + 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1


def read_imhi_csv(path: str | Path, set_name: str | None = None) -> list[IMHIRecord]:
    """Every record of one IMHI test CSV; the set is named, or found from the file name."""
    path = Path(path)
    if set_name is None:
        found = [s for s in IMHI_SETS.values() if s.filename.lower() == path.name.lower()]
        if not found:
            raise ConfigError(
                f"cannot tell which IMHI set '{path.name}' is; pass the set name "
                f"(one of {', '.join(IMHI_SETS)})"
            )
        spec = found[0]
    else:
        spec = imhi_set(set_name)
    records: list[IMHIRecord] = []
    for line, row in _rows(path):
        query = (row.get(QUERY_FIELD) or "").strip()
        if not query:
            raise InputError(
                "empty query", file=str(path), record=line, field=QUERY_FIELD, expected="a post"
            )
        label = spec.parse_label(row.get(ANSWER_FIELD) or "")
        if label is None:
            first = " ".join((row.get(ANSWER_FIELD) or "").split())[:80]
            raise InputError(
                f"cannot read the gold label of IMHI set {spec.name} from {first!r}",
                file=str(path),
                record=line,
                field=ANSWER_FIELD,
                expected=f"a first sentence worded like {spec.example!r}",
            )
        aspect = None
        if spec.aspect is not None:
            m = re.search(spec.aspect, query)
            if m is None:
                raise InputError(
                    f"the question of this {spec.name} query names no aspect",
                    file=str(path),
                    record=line,
                    field=QUERY_FIELD,
                    expected=f"a question matching {spec.aspect!r}",
                )
            aspect = " ".join(m.group(1).split()).lower()
        records.append(IMHIRecord(spec.name, line, query, label, aspect))
    return records


def load_imhi(
    folder: str | Path,
    sets: list[str] | tuple[str, ...] | None = None,
    *,
    limit_per_set: int | None = None,
    seed: int = 0,
) -> dict[str, list[IMHIRecord]]:
    """Records of the named sets (all eight by default) from ``folder``.

    ``folder`` is ``test_instruction/`` or a folder above it. With ``limit_per_set`` each
    set keeps a seeded random sample of that size (in file order), so a small run still
    covers every label a set's file would give at random.
    """
    root = Path(folder)
    if (root / "test_instruction").is_dir():
        root = root / "test_instruction"
    if not root.is_dir():
        raise ConfigError(f"IMHI folder '{folder}' does not exist (expected test_instruction/)")
    chosen = [imhi_set(n) for n in sets] if sets else list(IMHI_SETS.values())
    out: dict[str, list[IMHIRecord]] = {}
    for spec in chosen:
        path = root / spec.filename
        if not path.is_file():
            raise InputError(
                "IMHI test file not found", file=str(path), expected=f"{spec.filename} in {root}"
            )
        records = read_imhi_csv(path, spec.name)
        if limit_per_set is not None and limit_per_set < len(records):
            keep = sorted(
                random.Random(f"{seed}:{spec.name}").sample(range(len(records)), k=limit_per_set)
            )
            records = [records[i] for i in keep]
        out[spec.name] = records
    return out

"""SAD, the Stress-Annotated Dataset (Mauriello et al. 2021): sentences with a stressor category.

``SAD_v1.csv`` (a CSV export of the original xlsx) columns used: ``sID``, ``sentence``,
``original_label`` (the category the sentence was written or scraped for: the mTurk
prompt, the Inquire seed query, the chatbot user's own choice), ``top_label`` (majority
of 5 raters), both one of ``CATEGORIES``, ``is_stressor``, ``avg_severity`` (0-10).

The two labels differ on 44% of sentences. The IMHI SAD test set (Yang et al. 2024)
takes its gold label from ``original_label`` (681 of its 684 sentences agree with it, 402
with ``top_label``), so a model meant to be compared with IMHI trains on
``original_category``; ``category`` keeps the raters' majority.

Licence: MIT (PervasiveWellbeingTech/Stress-Annotated-Dataset-SAD).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mindcommons.datasets._csvread import read_rows, resolve, text_field
from mindcommons.errors import InputError

LICENCE = "SAD (Mauriello et al. 2021): MIT licence."
CATEGORIES: tuple[str, ...] = (
    "Everyday Decision Making",
    "Emotional Turmoil",
    "Family Issues",
    "Financial Problem",
    "Health, Fatigue, or Physical Pain",
    "Other",
    "School",
    "Social Relationships",
    "Work",
)


@dataclass(frozen=True)
class StressSentence:
    sentence_id: str
    sentence: str
    category: str  # top_label: the 5 raters' majority
    original_category: str  # original_label: the category it was written / scraped for
    is_stressor: bool
    severity: float


def load_sad(path: str | Path) -> list[StressSentence]:
    """All rows of ``SAD_v1.csv`` (``path`` is the file or its folder)."""
    file = resolve(path, "SAD_v1.csv")
    out = []
    for line, row in read_rows(
        file, ("sID", "sentence", "original_label", "top_label", "is_stressor", "avg_severity")
    ):
        labels = {}
        for column in ("top_label", "original_label"):
            labels[column] = row[column].strip()
            if labels[column] not in CATEGORIES:
                raise InputError(
                    f"unknown category {labels[column]!r}",
                    file=str(file),
                    record=line,
                    field=column,
                    expected="one of " + ", ".join(CATEGORIES),
                )
        try:
            severity = float(row["avg_severity"] or 0.0)
        except ValueError as err:
            raise InputError(
                f"bad number {row['avg_severity']!r}",
                file=str(file),
                record=line,
                field="avg_severity",
                expected="a number 0-10",
            ) from err
        flag = row["is_stressor"].strip()
        if flag not in ("0", "1"):
            raise InputError(
                f"bad flag {flag!r}",
                file=str(file),
                record=line,
                field="is_stressor",
                expected="0 or 1",
            )
        out.append(
            StressSentence(
                sentence_id=row["sID"].strip(),
                sentence=text_field(file, line, row, "sentence").strip(),
                category=labels["top_label"],
                original_category=labels["original_label"],
                is_stressor=flag == "1",
                severity=severity,
            )
        )
    return out

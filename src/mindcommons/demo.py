"""The demo: synthesise 3 sites, ingest them, federate, audit the embedded model, report."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mindcommons.settings import Settings

DEMO_SITES = 3
DEMO_PATIENTS = 12
DEMO_LIMIT_PER_SITE = 10  # the sites' default release floor; ~5 minutes on 2 cores
# Samples per task of the small standard audit suite run at the end (local, synthetic
# samples); $MINDCOMMONS_DEMO_SUITE_LIMIT overrides it, 0 skips the suite.
DEMO_SUITE_LIMIT = 1
SUITE_LIMIT_ENV = "MINDCOMMONS_DEMO_SUITE_LIMIT"


@dataclass(frozen=True)
class DemoResult:
    report: Path
    sites: list[str]
    suite_report: Path | None = None


def demo_suite_limit() -> int:
    raw = os.environ.get(SUITE_LIMIT_ENV, "").strip()
    if not raw:
        return DEMO_SUITE_LIMIT
    if not raw.isdigit():
        from mindcommons.errors import ConfigError

        raise ConfigError(f"{SUITE_LIMIT_ENV}={raw!r} is not valid (expected 0 or more)")
    return int(raw)


def run_demo(
    settings: Settings,
    *,
    seed: int = 7,
    limit: int = DEMO_LIMIT_PER_SITE,
    patients: int = DEMO_PATIENTS,
    say: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
    suite_limit: int | None = None,
) -> DemoResult:
    """Run the whole path once; leaves the federation as it found it.

    Then, unless ``suite_limit`` is 0, the standard audit suite on ``suite_limit`` of each
    task's synthetic samples, locally, into its own report card."""
    from mindcommons import audit, ingest, synth
    from mindcommons.federation import launcher

    data_dir = settings.resolved_home() / "demo-data" / f"seed-{seed}-p{patients}"
    if not (data_dir / "manifest.json").exists():
        say(f"[1/5] synthesising {DEMO_SITES} sites x {patients} patients into {data_dir}")
        synth.generate(data_dir, sites=DEMO_SITES, patients=patients, seed=seed, overwrite=True)
    else:
        say(f"[1/5] reusing synthetic data in {data_dir}")

    formats = ["fhir", "csv", "jsonl"]  # each site arrives in a different format
    sites = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    for i, site in enumerate(sites):
        fmt = formats[i % len(formats)]
        rep = ingest.ingest_path(data_dir / site / fmt, site, settings=settings)
        added = sum(rep.inserted.values())
        same = sum(rep.unchanged.values())
        say(f"[2/5] ingested {site} from {fmt}: {added} new records, {same} unchanged")

    say("[3/5] bringing the local federation up (1 SuperLink, 1 SuperNode per site)")
    already_up = launcher.up(settings, sites=sites).already_up
    if already_up:
        say("      it was already up; using it and leaving it up")
    try:
        say(f"[4/5] auditing the embedded model on PHQ-9 from text, {limit} documents per site")
        report = audit.run_audit(
            settings,
            model="embedded",
            task="phq9",
            limit=limit,
            seed=seed,
            sites=sites,
            progress=progress,
        )
    finally:
        if not already_up:
            say("[5/5] taking the federation down")
            launcher.down(settings)
    per_task = demo_suite_limit() if suite_limit is None else suite_limit
    suite_report = None
    if per_task > 0:
        from mindcommons.suite.suites import resolve_suite

        names = resolve_suite("standard")
        say(f"[+] audit suite 'standard' ({', '.join(names)}), {per_task} sample(s) per task")

        def on_suite(line: str) -> None:
            if progress is not None:
                progress(f"suite {line}")

        from mindcommons.errors import MindcommonsError

        try:
            suite_report = audit.run_suite_audit(
                settings, suite="standard", model="embedded", limit=per_task, seed=seed,
                n_boot=200, progress=on_suite,
            )  # fmt: skip
        except MindcommonsError as err:  # the federated audit above stands on its own
            say(f"    the audit suite stopped: {err}")
        else:
            say(f"    suite report card: {suite_report}")
    return DemoResult(report=report, sites=sites, suite_report=suite_report)

"""Energy and CO2e of a stretch of work, with CodeCarbon's offline tracker (no network).

CodeCarbon reads power counters where the machine exposes them (Intel RAPL through
``/sys/class/powercap``); elsewhere it estimates CPU power as the CPU's TDP times its load
and RAM power from its size. The method travels with every number: ``measured`` is True
only when a power counter was read. The grid's carbon intensity comes from the country
(``country``, an ISO 3166-1 alpha-3 code; default ``$MINDCOMMONS_ENERGY_COUNTRY`` or USA).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from mindcommons.errors import ConfigError

DEFAULT_COUNTRY = "USA"
COUNTRY_ENV = "MINDCOMMONS_ENERGY_COUNTRY"
MEASURED_MODES = ("intel_rapl", "intel_power_gadget", "apple_powermetrics", "windows_emi")


def default_country() -> str:
    value = os.environ.get(COUNTRY_ENV, "").strip().upper()
    return value or DEFAULT_COUNTRY


def check_country(country: str) -> str:
    code = country.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ConfigError(
            f"energy country '{country}' is not valid (expected an ISO 3166-1 alpha-3 code "
            "such as USA, GBR, BRA)"
        )
    return code


@dataclass(frozen=True)
class EnergyReading:
    """Energy used by a stretch of work and what it means."""

    kwh: float
    co2e_kg: float
    seconds: float
    method: str
    measured: bool
    country: str


_TRACKERS: dict[str, Any] = {}


def shared_tracker(country: str) -> Any:
    """One started CodeCarbon tracker per country and process.

    Starting a tracker probes the hardware and takes seconds; each measured stretch is a
    CodeCarbon *task* on it (``start_task``/``stop_task``), which takes milliseconds.
    """
    if country not in _TRACKERS:
        tracker = _tracker(country)
        tracker.start()
        _TRACKERS[country] = tracker
    return _TRACKERS[country]


@atexit.register
def _stop_trackers() -> None:
    for tracker in _TRACKERS.values():
        with contextlib.suppress(Exception):
            tracker.stop()
    _TRACKERS.clear()


class EnergyMeter:
    """``with EnergyMeter("USA") as meter: ...`` then ``meter.reading``.

    ``enabled=False`` records wall time only (method "not measured"). Meters do not nest.
    """

    def __init__(self, country: str | None = None, *, enabled: bool = True) -> None:
        self.country = check_country(country or default_country())
        self.enabled = enabled
        self.reading: EnergyReading | None = None
        self._tracker: Any = None
        self._t0 = 0.0

    def __enter__(self) -> EnergyMeter:
        if self.enabled:
            self._tracker = shared_tracker(self.country)
            self._tracker.start_task("mindcommons")
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        seconds = time.perf_counter() - self._t0
        if self._tracker is None:
            self.reading = EnergyReading(0.0, 0.0, seconds, "not measured", False, self.country)
            return
        data = self._tracker.stop_task()
        kwh = float(getattr(data, "energy_consumed", 0.0) or 0.0)
        self.reading = EnergyReading(
            kwh=kwh,
            co2e_kg=float(getattr(data, "emissions", 0.0) or 0.0),
            seconds=seconds,
            method=describe_method(self._tracker),
            measured=is_measured(self._tracker),
            country=self.country,
        )


def _tracker(country: str) -> Any:
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError as err:  # pragma: no cover - a declared dependency
        from mindcommons.errors import PrerequisiteError

        raise PrerequisiteError(
            f"codecarbon is not installed ({err}); install with: pip install codecarbon"
        ) from err
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return OfflineEmissionsTracker(
        country_iso_code=country,
        save_to_file=False,
        save_to_api=False,
        log_level="error",
        measure_power_secs=5,
        tracking_mode="process",
        project_name="mindcommons-suite",
    )


def _cpu_mode(tracker: Any) -> str:
    for hw in getattr(tracker, "_hardware", []):
        if type(hw).__name__ == "CPU":
            return str(getattr(hw, "_mode", "unknown"))
    return "unknown"


def is_measured(tracker: Any) -> bool:
    return _cpu_mode(tracker) in MEASURED_MODES


def describe_method(tracker: Any) -> str:
    """A one-line account of how CodeCarbon got the number on this machine."""
    from importlib import metadata

    mode = _cpu_mode(tracker)
    if mode in MEASURED_MODES:
        how = f"CPU energy read from power counters ({mode})"
    elif mode == "cpu_load":
        how = "estimated: CPU power = TDP x process CPU load (no power counters readable)"
    else:
        how = f"estimated: CPU power from a constant ({mode}; no power counters readable)"
    version = metadata.version("codecarbon")
    return f"CodeCarbon {version} offline tracker, {how}; RAM power from its size"

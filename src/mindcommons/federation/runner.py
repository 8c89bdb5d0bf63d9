"""Submit a job to the running federation with ``flwr run`` and wait for its result."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindcommons.errors import MindcommonsError, PrerequisiteError
from mindcommons.federation import launcher
from mindcommons.federation.server import read_result
from mindcommons.settings import Settings

APP_DIR = Path(__file__).parent / "flwr_app"
Progress = Callable[[str], None]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def require_up(settings: Settings) -> launcher.FederationState:
    state = launcher.read_state(settings)
    if state is None or not launcher.pid_alive(state.superlink_pid):
        raise PrerequisiteError(
            f"the federation is not running for {settings.resolved_home()}: "
            "run `mindcommons federation up` first"
        )
    return state


def run_job(
    settings: Settings,
    job: dict[str, Any],
    *,
    sites: list[str] | None = None,
    timeout: float = 600.0,
    query_timeout: float = 60.0,
    debug_dump: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``job`` (keys as in ``server.JOB_KEYS``) on the federation; return result.json."""
    state = require_up(settings)
    run_id = str(job.get("run_id") or new_run_id())
    job = dict(job)
    if isinstance(job.get("params"), dict):
        job["params"] = json.dumps(job["params"], sort_keys=True)
    config: dict[str, object] = {k.replace("_", "-"): v for k, v in job.items() if v is not None}
    config.update(
        {
            "run-id": run_id,
            "home": str(settings.resolved_home()),
            "sites": ",".join(sites or state.sites),
            "timeout": float(timeout),
            "query-timeout": float(query_timeout),
            "debug-dump": str(debug_dump or ""),
        }
    )
    runs = settings.federation_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    cfg_file = runs / f"{run_id}.toml"
    cfg_file.write_text(
        "".join(f"{k} = {_toml_value(v)}\n" for k, v in sorted(config.items())), encoding="utf-8"
    )
    cmd = [launcher.flwr_bin("flwr"), "run", str(APP_DIR), launcher.CONNECTION,
           "--run-config", str(cfg_file), "--stream"]  # fmt: skip
    log = open(runs / f"{run_id}.log", "w", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=launcher.flwr_env(Path(state.flwr_home)), cwd=runs,
    )  # fmt: skip

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if progress is not None and line.strip():
                progress(line.rstrip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout + query_timeout + 120.0
    try:
        while time.monotonic() < deadline:
            result = read_result(settings, run_id)
            if result is not None:
                return result
            if proc.poll() is not None and read_result(settings, run_id) is None:
                time.sleep(1.0)  # the stream may end just before the file lands
                result = read_result(settings, run_id)
                if result is not None:
                    return result
                raise MindcommonsError(
                    f"federated run {run_id} ended without a result; see {runs / run_id}.log "
                    f"and {state.log_dir}/superlink.log"
                )
            time.sleep(0.2)
        raise MindcommonsError(f"federated run {run_id} did not finish in time; see {log.name}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        log.close()

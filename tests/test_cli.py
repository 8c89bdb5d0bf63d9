"""The CLI is a thin layer: commands are listed, errors print one line without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mindcommons.errors import ConfigError, InputError
from mindcommons.registry import Registry
from mindcommons.settings import Settings, load_settings, validate_site_name

CLI = [sys.executable, "-m", "mindcommons"]


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINDCOMMONS_HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = run_cli("--help", home=tmp_path)
    assert out.returncode == 0, out.stderr
    for command in (
        "synth",
        "ingest",
        "federation",
        "audit",
        "audit-log",
        "deid",
        "demo",
        "keys",
        "query",
    ):
        assert command in out.stdout


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    out = run_cli("ingest", str(tmp_path / "missing.csv"), "--site", "site-a", home=tmp_path)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "missing.csv" in out.stderr
    assert "error:" in out.stderr


def test_secagg_without_federated_is_refused_before_any_work(tmp_path: Path) -> None:
    out = run_cli("train", "empathy", "--secagg", home=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "--secagg protects federated rounds" in out.stderr
    assert not (tmp_path / "models").exists()


def test_lora_settings_are_checked_before_any_work(tmp_path: Path) -> None:
    out = run_cli("lora", "train", "--site", "site-a", "--score-weight", "0.5", home=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "score_weight=0.5 is out of range" in out.stderr


def test_bad_site_name_is_refused_with_the_rule(tmp_path: Path) -> None:
    data = tmp_path / "x.jsonl"
    data.write_text("", encoding="utf-8")
    out = run_cli("ingest", str(data), "--site", "Bad Site!", home=tmp_path)
    assert out.returncode != 0
    assert "site name 'Bad Site!' is not valid" in out.stderr


def test_input_error_names_file_line_and_field() -> None:
    err = InputError("not a number", file="a.csv", record=3, field="value", expected="a float")
    assert str(err) == "a.csv, line 3, field 'value': not a number (expected a float)"
    err2 = InputError("unsupported", file="b.json", record="entry 2 (Flag/x)")
    assert str(err2) == "b.json, record entry 2 (Flag/x): unsupported"


def test_registry_lookup_error_lists_known_names() -> None:
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1)
    reg.add("b", 2)
    assert reg.get("b") == 2
    assert list(reg) == ["a", "b"]
    with pytest.raises(ConfigError, match="unknown widget 'c'; known: a, b"):
        reg.get("c")
    with pytest.raises(ConfigError, match="already registered"):
        reg.add("a", 3)


def test_settings_paths_and_database_template(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    assert s.site_dir("site-a") == tmp_path.resolve() / "sites" / "site-a"
    assert s.site_db_url("site-a").startswith("sqlite:///")
    pg = Settings(home=tmp_path, database_url="postgresql+psycopg://u@h/db_{site}")
    assert pg.site_db_url("site_b") == "postgresql+psycopg://u@h/db_site_b"
    with pytest.raises(ConfigError):
        validate_site_name("../etc")


def test_home_option_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINDCOMMONS_HOME", str(tmp_path / "env"))
    assert load_settings().resolved_home() == (tmp_path / "env").resolve()
    assert load_settings(tmp_path / "opt").resolved_home() == (tmp_path / "opt").resolve()


def test_train_refuses_an_unknown_pair_truncation_before_reading_data(tmp_path: Path) -> None:
    result = run_cli(
        "train", "empathy", "--data", str(tmp_path / "absent"), "--finetune",
        "--pair-truncation", "response_first", home=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "pair truncation 'response_first'" in result.stderr + result.stdout
    assert "post_first" in result.stderr + result.stdout

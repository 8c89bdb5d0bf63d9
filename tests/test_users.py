"""People: bootstrap, argon2 passwords, sessions and API tokens, lockout, audit trail.

Run on SQLite and on PostgreSQL (the governance store follows $MINDCOMMONS_GOVERNANCE_URL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from mindcommons.errors import ConfigError, MindcommonsError, PolicyError
from mindcommons.governance import AuditLog
from mindcommons.governance import users as gov
from mindcommons.governance.permissions import Role
from mindcommons.governance.store import URL_ENV, Credential, User, governance_dir
from mindcommons.settings import Settings, load_settings

PW = "correct horse battery"
# Cheap argon2 for tests (the 2-core CI box); production keeps the RFC 9106 defaults.
FAST_ARGON2 = "argon2_memory_kib = 1024\nargon2_time_cost = 1\nargon2_parallelism = 1\n"


def write_config(settings: Settings, extra: str = "") -> None:
    governance_dir(settings).mkdir(parents=True, exist_ok=True)
    (governance_dir(settings) / "governance.toml").write_text(FAST_ARGON2 + extra, "utf-8")


@pytest.fixture
def settings(repo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A home whose governance store is an empty SQLite or PostgreSQL database."""
    monkeypatch.setenv(URL_ENV, repo_url)
    monkeypatch.delenv(gov.TOKEN_ENV, raising=False)
    settings = load_settings(tmp_path / "home")
    write_config(settings)
    yield settings


def log_kinds(settings: Settings) -> list[tuple[str, str, str]]:
    log = AuditLog.for_site(governance_dir(settings))
    assert log.verify().ok
    return [(e.kind, e.subject, str(e.details.get("action", ""))) for e in log.entries()]


def test_bootstrap_first_admin_then_only_admins_add_users(settings: Settings) -> None:
    with pytest.raises(PolicyError, match="first user must be an admin"):
        gov.create_user(settings, None, "ana", "researcher", PW)
    gov.create_user(settings, None, "root", Role.ADMIN, PW)
    with pytest.raises(PolicyError, match="users exist already"):
        gov.create_user(settings, None, "mallory", Role.ADMIN, PW)
    admin = gov.authenticate(settings, gov.login(settings, "root", PW))
    assert admin.role is Role.ADMIN and admin.username == "root"
    gov.create_user(settings, admin, "ana", "researcher", PW)
    ana = gov.authenticate(settings, gov.login(settings, "ana", PW))
    with pytest.raises(PolicyError, match="allowed roles: admin"):
        gov.create_user(settings, ana, "eve", "admin", PW)
    with pytest.raises(ConfigError, match="exists already"):
        gov.create_user(settings, admin, "ana", "researcher", PW)
    with pytest.raises(ConfigError, match="at least 10"):
        gov.create_user(settings, admin, "bob", "patient", "short")
    with pytest.raises(ConfigError, match="unknown role"):
        gov.create_user(settings, admin, "bob", "wizard", PW)
    names = [u.username for u in gov.list_users(settings, admin)]
    assert names == ["ana", "root"]
    assert ("user_change", "user:root", "create") in log_kinds(settings)


def test_default_argon2_cost_and_config_errors(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "home")
    hasher = gov.GovernanceConfig.load(settings).hasher()  # no file: the defaults
    assert (hasher.memory_cost, hasher.time_cost, hasher.parallelism) == (65536, 3, 4)
    write_config(settings, "max_failed_logins = 0\n")
    with pytest.raises(ConfigError, match="max_failed_logins"):
        gov.GovernanceConfig.load(settings)
    write_config(settings, "lockout_minutes = 'soon'\n")
    with pytest.raises(ConfigError, match="lockout_minutes"):
        gov.GovernanceConfig.load(settings)


def test_password_is_argon2_and_tokens_are_stored_hashed(settings: Settings) -> None:
    gov.create_user(settings, None, "root", Role.ADMIN, PW)
    session_token = gov.login(settings, "root", PW)
    admin = gov.authenticate(settings, session_token)
    api_token = gov.create_token(settings, admin, "ci", days=1)
    engine = create_engine(gov_url(settings))
    try:
        with Session(engine) as session:
            user = session.scalars(select(User)).one()
            assert user.password_hash.startswith("$argon2id$") and PW not in user.password_hash
            hashes = set(session.scalars(select(Credential.token_hash)))
        with engine.connect() as conn:  # the secrets appear nowhere in the database
            dump = " ".join(str(r) for r in conn.execute(text("SELECT * FROM gov_credential")))
    finally:
        engine.dispose()
    assert hashes == {gov.token_hash(session_token), gov.token_hash(api_token)}
    assert session_token not in dump and api_token not in dump
    assert gov.authenticate(settings, api_token).username == "root"


def gov_url(settings: Settings) -> str:
    from mindcommons.governance.store import governance_url

    return governance_url(settings)


def test_lockout_after_failures_is_audited_and_admin_unlocks(settings: Settings) -> None:
    write_config(settings, "max_failed_logins = 3\nlockout_minutes = 0\n")
    gov.create_user(settings, None, "root", Role.ADMIN, PW)
    admin = gov.authenticate(settings, gov.login(settings, "root", PW))
    gov.create_user(settings, admin, "nia", "clinician", PW)
    nia_token = gov.login(settings, "nia", PW)
    for _ in range(2):
        with pytest.raises(PolicyError, match="wrong user name or password"):
            gov.login(settings, "nia", "guess-guess-guess")
    with pytest.raises(PolicyError, match="locked"):
        gov.login(settings, "nia", "guess-guess-guess")  # the third failure locks
    with pytest.raises(PolicyError, match="locked"):
        gov.login(settings, "nia", PW)  # even the right password now
    with pytest.raises(PolicyError, match="locked"):
        gov.authenticate(settings, nia_token)  # and the open session stops working
    kinds = log_kinds(settings)
    assert kinds.count(("login_failed", "user:nia", "")) == 4
    assert ("user_change", "user:nia", "lockout") in kinds
    gov.unlock_user(settings, admin, "nia")
    assert gov.authenticate(settings, gov.login(settings, "nia", PW)).role is Role.CLINICIAN
    assert ("user_change", "user:nia", "unlock") in log_kinds(settings)
    with pytest.raises(PolicyError, match="wrong user name"):
        gov.login(settings, "nobody", PW)
    assert ("login_failed", "user:nobody", "") in log_kinds(settings)


def test_timed_lockout_expires(settings: Settings) -> None:
    gov.create_user(settings, None, "root", Role.ADMIN, PW)
    for _ in range(5):
        with pytest.raises(PolicyError):
            gov.login(settings, "root", "not-the-password")
    with pytest.raises(PolicyError, match="locked"):
        gov.login(settings, "root", PW)
    engine = create_engine(gov_url(settings))
    try:  # fifteen minutes later
        with Session(engine) as session, session.begin():
            user = session.scalars(select(User)).one()
            assert user.locked_until is not None and not user.locked
            user.locked_until = dt.datetime(2000, 1, 1)
    finally:
        engine.dispose()
    assert gov.authenticate(settings, gov.login(settings, "root", PW)).username == "root"


def test_sessions_tokens_expire_revoke_and_logout(settings: Settings) -> None:
    gov.create_user(settings, None, "root", Role.ADMIN, PW)
    session_token = gov.login(settings, "root", PW)
    admin = gov.authenticate(settings, session_token)
    api = gov.create_token(settings, admin, "nightly", days=2)
    listed = gov.list_tokens(settings, admin)
    assert [(t.kind, t.active) for t in listed] == [("session", True), ("token", True)]
    gov.revoke_token(settings, admin, listed[1].id)
    with pytest.raises(PolicyError, match="revoked"):
        gov.authenticate(settings, api)
    engine = create_engine(gov_url(settings))
    try:  # the session passes its expiry
        with Session(engine) as session, session.begin():
            cred = session.get(Credential, listed[0].id)
            assert cred is not None
            cred.expires_at = dt.datetime(2000, 1, 1)
    finally:
        engine.dispose()
    with pytest.raises(PolicyError, match="expired"):
        gov.authenticate(settings, session_token)
    fresh = gov.login(settings, "root", PW)
    gov.logout(settings, fresh)
    with pytest.raises(PolicyError, match="revoked"):
        gov.authenticate(settings, fresh)
    with pytest.raises(PolicyError, match="not a mindcommons"):
        gov.authenticate(settings, "hello")
    assert ("logout", "user:root", "") in log_kinds(settings)


def test_password_change_ends_sessions_role_change_and_last_admin(settings: Settings) -> None:
    gov.create_user(settings, None, "root", Role.ADMIN, PW)
    admin = gov.authenticate(settings, gov.login(settings, "root", PW))
    gov.create_user(settings, admin, "sam", "steward", PW, sites=["site-a"])
    sam_token = gov.login(settings, "sam", PW)
    sam = gov.authenticate(settings, sam_token)
    assert sam.sites == ("site-a",)
    with pytest.raises(PolicyError, match="current password is wrong"):
        gov.change_password(settings, sam, "a brand new secret", old_password="wrong")
    gov.change_password(settings, sam, "a brand new secret", old_password=PW)
    with pytest.raises(PolicyError):
        gov.authenticate(settings, sam_token)  # sessions end with the old password
    with pytest.raises(PolicyError):
        gov.login(settings, "sam", PW)
    sam = gov.authenticate(settings, gov.login(settings, "sam", "a brand new secret"))
    with pytest.raises(PolicyError, match=r"may not user\.set_password"):
        gov.change_password(settings, sam, "x" * 12, username="root")
    info = gov.set_role(settings, admin, "sam", "auditor", sites=[])
    assert (info.role, info.sites) == ("auditor", ())
    assert gov.authenticate(settings, gov.login(settings, "sam", "a brand new secret")).role is (
        Role.AUDITOR
    )
    with pytest.raises(PolicyError, match="last admin"):
        gov.set_role(settings, admin, "root", "researcher")
    with pytest.raises(PolicyError, match="last admin"):
        gov.lock_user(settings, admin, "root")
    role_changes = [k for k in log_kinds(settings) if k[2] == "role"]
    assert role_changes == [("user_change", "user:sam", "role")]
    entry = next(e for e in AuditLog.for_site(governance_dir(settings)).entries()
             if e.details.get("action") == "role")  # fmt: skip
    assert entry.details["old"] == {"role": "steward", "sites": ["site-a"]}
    assert entry.details["new"] == {"role": "auditor", "sites": []}


@dataclass
class CliResult:
    exit_code: int
    output: str


def cli_runner(runner: Any, app: Any) -> Any:
    """Invoke like ``mindcommons.cli.app.main``: a MindcommonsError becomes its exit code
    and message (CliRunner alone would hand back the exception)."""

    def run(args: list[str], input: str | None = None) -> CliResult:
        out = runner.invoke(app, args, input=input)
        if isinstance(out.exception, MindcommonsError):
            return CliResult(out.exception.exit_code, out.output + str(out.exception))
        if out.exception is not None and not isinstance(out.exception, SystemExit):
            raise out.exception
        return CliResult(out.exit_code, out.output)

    return run


def test_cli_bootstrap_login_token_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mindcommons.cli.app import _register_commands, app

    _register_commands()
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.delenv(gov.TOKEN_ENV, raising=False)
    home = str(tmp_path / "home")
    write_config(load_settings(Path(home)))
    run = cli_runner(CliRunner(), app)
    out = run(["users", "add", "root", "--role", "admin", "--password-stdin",
                    "--home", home], input=PW + "\n")  # fmt: skip
    assert out.exit_code == 0 and "created root (admin" in out.output, out.output
    denied = run(["users", "list", "--home", home])
    assert denied.exit_code == 5 and "nobody is signed in" in denied.output
    out = run(["users", "login", "root", "--password-stdin", "--home", home],
              input=PW + "\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    session = Path(home) / "governance" / "session.token"
    assert session.stat().st_mode & 0o777 == 0o600
    out = run(["users", "add", "rita", "--role", "researcher", "--password-stdin",
                    "--home", home], input=PW + "\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    token = run(["users", "token", "create", "--name", "ci", "--home", home])
    assert token.exit_code == 0
    listed = run(["users", "list", "--home", home])
    assert "rita" in listed.output and "researcher" in listed.output
    assert run(["users", "logout", "--home", home]).exit_code == 0
    assert not session.exists()
    monkeypatch.setenv(gov.TOKEN_ENV, token.output.strip())  # an API token from the env
    assert "root (admin" in run(["users", "whoami", "--home", home]).output
    wrong = run(["users", "login", "rita", "--password-stdin", "--home", home],
                input="nope-nope-nope\n")  # fmt: skip
    assert wrong.exit_code == 5 and "wrong user name or password" in wrong.output
    shown = run(["users", "log", "show", "--last", "0", "--home", home])
    assert "login_failed" in shown.output and "user:rita" in shown.output
    assert run(["users", "log", "verify", "--home", home]).exit_code == 0

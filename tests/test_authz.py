"""The authorization walk: every governed library operation and every CLI action, as every
role (plus a steward scoped to another site, and nobody), allowed or denied exactly as
``governance.permissions.PERMISSIONS`` says; a denied call changes nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from mindcommons.datasheet import (
    federated_profile,
    public_list,
    read_datasheet,
    site_profile,
    write_datasheet,
)
from mindcommons.errors import MindcommonsError, PolicyError
from mindcommons.governance import AuditLog
from mindcommons.governance import users as gov
from mindcommons.governance.consent import set_consent
from mindcommons.governance.permissions import PERMISSIONS, SITE_SCOPED, Op, Principal, Role
from mindcommons.governance.projects import (
    approve_project,
    create_project,
    list_projects,
    revoke_project,
)
from mindcommons.governance.store import URL_ENV, governance_dir, governance_url
from mindcommons.settings import Settings, load_settings

PW = "correct horse battery"
SITE = "site-a"
FAST = "argon2_memory_kib = 1024\nargon2_time_cost = 1\nargon2_parallelism = 1\n"
_n = itertools.count()


@dataclass
class World:
    settings: Settings
    actors: dict[str, Principal]  # actor name -> principal
    tokens: dict[str, str]  # actor name -> API token


def write_site(settings: Settings) -> None:
    from mindcommons.ingest import ingest_path
    from mindcommons.policy import set_min_release_n

    rows: list[dict[str, Any]] = [
        {"type": "dataset", "name": "cohort", "allowed_purposes": ["analytics"]}
    ]
    for i in range(4):
        rows.append({"type": "participant", "participant_id": f"p{i}", "gender": "female",
                     "primary_language": "en", "age_band": "25-34", "country": "GB"})  # fmt: skip
    path = settings.resolved_home().parent / "data" / "cohort.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest_path(path, SITE, settings=settings)
    set_min_release_n(settings.site_dir(SITE), 2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    mp = pytest.MonkeyPatch()
    mp.delenv(URL_ENV, raising=False)
    mp.delenv(gov.TOKEN_ENV, raising=False)
    settings = load_settings(tmp_path_factory.mktemp("authz") / "home")
    governance_dir(settings).mkdir(parents=True)
    (governance_dir(settings) / "governance.toml").write_text(FAST, encoding="utf-8")
    write_site(settings)
    gov.create_user(settings, None, "root", Role.ADMIN, PW)
    root = gov.authenticate(settings, gov.login(settings, "root", PW))
    accounts = {role.value: (role, ()) for role in Role}
    accounts["steward-elsewhere"] = (Role.STEWARD, ("site-b",))
    actors: dict[str, Principal] = {}
    tokens: dict[str, str] = {}
    for name, (role, sites) in accounts.items():
        user = f"u-{name}"
        gov.create_user(settings, root, user, role, PW, sites=list(sites))
        actors[name] = gov.authenticate(settings, gov.login(settings, user, PW))
        tokens[name] = gov.create_token(settings, actors[name], "walk", days=1)
    gov.create_user(settings, root, "target", Role.PATIENT, PW)
    gov.create_user(settings, root, "spare-admin", Role.ADMIN, PW)  # so no 'last admin'
    steward = actors["steward"]
    for name in ("study", "study2"):
        create_project(settings, steward, name, ["analytics"])
    write_datasheet(settings, steward, SITE, "cohort")
    try:
        yield World(settings, actors, tokens)
    finally:
        mp.undo()


def snapshot(settings: Settings) -> str:
    """A digest of everything governance can change: store rows and both audit logs."""
    engine = create_engine(governance_url(settings))
    parts = []
    try:
        with engine.connect() as conn:
            for table, cols in (
                ("gov_user", "username, role, sites, password_hash, locked, failed_logins"),
                ("gov_credential", "id, kind, token_hash, revoked_at"),
                ("gov_project", "name, purposes"),
                ("gov_approval", "project, site, purposes, status"),
            ):
                rows = conn.execute(text(f"SELECT {cols} FROM {table} ORDER BY 1")).all()
                parts.append(repr(rows))
    finally:
        engine.dispose()
    for folder in (governance_dir(settings), settings.site_dir(SITE)):
        parts.append(repr(AuditLog.for_site(folder).head()))  # seq + hash of the last entry
    sheets = settings.site_dir(SITE) / "datasheets"
    parts += sorted(f"{p.name}:{p.stat().st_mtime_ns}" for p in sheets.glob("*"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def expected(op: Op, actor: Principal) -> bool:
    """Straight from the table: the role is listed, and a site-scoped account acts on
    ``SITE`` only if it names it."""
    if actor.role not in PERMISSIONS[op]:
        return False
    return op not in SITE_SCOPED or not actor.sites or SITE in actor.sites


Action = Callable[[Settings, Principal], object]

LIBRARY: list[tuple[Op, str, Action]] = [
    (Op.USER_CREATE, "create_user",
     lambda s, a: gov.create_user(s, a, f"new-{next(_n)}", "patient", PW)),
    (Op.USER_LIST, "list_users", lambda s, a: gov.list_users(s, a)),
    (Op.USER_SET_ROLE, "set_role", lambda s, a: gov.set_role(s, a, "target", "patient")),
    (Op.USER_SET_PASSWORD, "change_password(other)",
     lambda s, a: gov.change_password(s, a, PW, username="target")),
    (Op.USER_LOCK, "lock_user", lambda s, a: gov.lock_user(s, a, "target")),
    (Op.USER_UNLOCK, "unlock_user", lambda s, a: gov.unlock_user(s, a, "target")),
    (Op.USER_TOKENS_OTHERS, "list_tokens(other)", lambda s, a: gov.list_tokens(s, a, "target")),
    (Op.OWN_PASSWORD, "change_password(own)",
     lambda s, a: gov.change_password(s, a, PW, old_password=PW)),
    (Op.OWN_TOKEN, "create_token", lambda s, a: gov.create_token(s, a, "x", days=1)),
    (Op.PROJECT_CREATE, "create_project",
     lambda s, a: create_project(s, a, f"proj-{next(_n)}", ["analytics"])),
    (Op.PROJECT_LIST, "list_projects", lambda s, a: list_projects(s, a)),
    (Op.PROJECT_APPROVE, "approve_project", lambda s, a: approve_project(s, a, "study", SITE)),
    (Op.PROJECT_REVOKE, "revoke_project", lambda s, a: revoke_project(s, a, "study2", SITE)),
    (Op.DATASET_LIST, "public_list", lambda s, a: public_list(s, a)),
    (Op.DATASET_CONSENT, "set_consent",
     lambda s, a: set_consent(s, a, SITE, "cohort", ["analytics"])),
    (Op.DATASHEET_WRITE, "write_datasheet", lambda s, a: write_datasheet(s, a, SITE, "cohort")),
    (Op.DATASHEET_READ, "read_datasheet", lambda s, a: read_datasheet(s, a, SITE, "cohort")),
    (Op.PROFILE_SITE, "site_profile", lambda s, a: site_profile(s, a, SITE)),
    (Op.PROFILE_FEDERATED, "federated_profile",
     lambda s, a: federated_profile(s, a, project="local", epsilon=0.05, local=True)),
    (Op.GOVERNANCE_LOG, "governance_log", lambda s, a: gov.governance_log(s, a).verify()),
]  # fmt: skip

# CLI action -> (operation, arguments, stdin)
CLI: list[tuple[Op, list[str], str | None]] = [
    (Op.USER_CREATE, ["users", "add", "{new}", "--role", "patient", "--password-stdin"],
     PW + "\n"),
    (Op.USER_LIST, ["users", "list"], None),
    (Op.USER_SET_ROLE, ["users", "role", "target", "patient"], None),
    (Op.USER_SET_PASSWORD, ["users", "passwd", "target", "--password-stdin"], PW + "\n"),
    (Op.USER_LOCK, ["users", "lock", "target"], None),
    (Op.USER_UNLOCK, ["users", "unlock", "target"], None),
    (Op.USER_TOKENS_OTHERS, ["users", "token", "list", "--user", "target"], None),
    (Op.OWN_PASSWORD, ["users", "passwd", "--password-stdin"], f"{PW}\n{PW}\n"),
    (Op.OWN_TOKEN, ["users", "token", "create", "--days", "1"], None),
    (Op.OWN_TOKEN, ["users", "token", "list"], None),
    (Op.PROJECT_CREATE, ["projects", "create", "{new}", "--purpose", "analytics"], None),
    (Op.PROJECT_LIST, ["projects", "list"], None),
    (Op.PROJECT_LIST, ["projects", "list", "--site", SITE], None),
    (Op.PROJECT_APPROVE, ["projects", "approve", "study", "--site", SITE], None),
    (Op.PROJECT_REVOKE, ["projects", "revoke", "study2", "--site", SITE], None),
    (Op.DATASET_LIST, ["datasets", "list"], None),
    (Op.DATASET_CONSENT, ["datasets", "consent", "--site", SITE, "cohort", "--allow",
                          "analytics"], None),
    (Op.DATASHEET_WRITE, ["datasets", "datasheet", "--site", SITE, "cohort"], None),
    (Op.DATASHEET_READ, ["datasets", "show", "--site", SITE, "cohort"], None),
    (Op.PROFILE_SITE, ["datasets", "profile", "--site", SITE], None),
    (Op.PROFILE_FEDERATED, ["datasets", "profile", "--federated", "--local", "--epsilon",
                            "0.05"], None),
    (Op.GOVERNANCE_LOG, ["users", "log", "verify"], None),
    (Op.GOVERNANCE_LOG, ["users", "log", "show"], None),
]  # fmt: skip

ACTORS = [*(r.value for r in Role), "steward-elsewhere"]


def test_the_tables_cover_every_operation() -> None:
    assert set(PERMISSIONS) == set(Op)
    assert {op for op, _, _ in LIBRARY} == set(Op)
    assert {op for op, _, _ in CLI} == set(Op)
    assert all(PERMISSIONS[op] for op in Op)  # every operation has someone allowed


@pytest.mark.parametrize("actor_name", ACTORS)
def test_library_operations_allow_and_deny_as_the_table_says(world: World, actor_name: str) -> None:
    actor = world.actors[actor_name]
    for op, name, action in LIBRARY:
        before = snapshot(world.settings)
        if expected(op, actor):
            action(world.settings, actor)  # must not raise
        else:
            with pytest.raises(PolicyError, match=r"^denied: "):
                action(world.settings, actor)
            assert snapshot(world.settings) == before, f"{name} as {actor_name} changed state"


_COMMAND: list[Any] = []


def _cli(args: list[str], stdin: str | None) -> tuple[int, str]:
    """Run the real ``mindcommons`` command tree (built once: typer rebuilds it per call)."""
    if not _COMMAND:
        import typer

        from mindcommons.cli.app import _register_commands, app

        _register_commands()
        _COMMAND.append(typer.main.get_command(app))
    out = CliRunner().invoke(_COMMAND[0], args, input=stdin)
    if isinstance(out.exception, MindcommonsError):
        return out.exception.exit_code, str(out.exception)
    if out.exception is not None and not isinstance(out.exception, SystemExit):
        raise out.exception
    return out.exit_code, out.output


@pytest.mark.parametrize("actor_name", [*ACTORS, "nobody"])
def test_cli_actions_allow_and_deny_as_the_table_says(world: World, actor_name: str) -> None:
    home = str(world.settings.resolved_home())
    actor = world.actors.get(actor_name)
    token = ["--token", world.tokens[actor_name]] if actor is not None else []
    for op, template, stdin in CLI:
        args = [a.replace("{new}", f"cli-{next(_n)}") for a in template]
        before = snapshot(world.settings)
        code, output = _cli([*args, *token, "--home", home], stdin)
        if actor is not None and expected(op, actor):
            assert code == 0, f"{' '.join(args)} as {actor_name}: {output}"
        else:
            assert code == PolicyError.exit_code, f"{' '.join(args)} as {actor_name}: {output}"
            assert output.startswith("denied: "), output
            assert snapshot(world.settings) == before, f"{args} as {actor_name} changed state"


def test_locked_or_revoked_credentials_do_nothing(world: World) -> None:
    home = str(world.settings.resolved_home())
    root = world.actors["admin"]
    gov.create_user(world.settings, root, "temp-steward", Role.STEWARD, PW)
    steward = gov.authenticate(world.settings, gov.login(world.settings, "temp-steward", PW))
    tok = gov.create_token(world.settings, steward, "t", days=1)
    gov.lock_user(world.settings, root, "temp-steward")
    before = snapshot(world.settings)
    code, output = _cli(["projects", "approve", "study", "--site", SITE, "--token", tok,
                         "--home", home], None)  # fmt: skip
    assert code == PolicyError.exit_code and "locked" in output
    gov.unlock_user(world.settings, root, "temp-steward")
    gov.revoke_token(world.settings, steward, steward.credential_id or 0)
    listed = gov.list_tokens(world.settings, steward)
    gov.revoke_token(world.settings, steward, next(t.id for t in listed if t.name == "t"))
    code, output = _cli(["datasets", "consent", "--site", SITE, "cohort", "--allow", "training",
                         "--token", tok, "--home", home], None)  # fmt: skip
    assert code == PolicyError.exit_code and "revoked" in output
    assert snapshot(world.settings) != before  # the unlock and revocations were recorded
    assert all(u.username != "temp-steward" or not u.locked
               for u in gov.list_users(world.settings, root))  # fmt: skip

"""People: accounts with roles, argon2 passwords, sessions, API tokens, lockout.

Passwords are hashed with argon2id (``argon2-cffi``); sessions and API tokens are random
(256 bits) and only their SHA-256 is stored, so a copy of the store lets nobody log in.
Every login, failure, lockout, role or account change is appended to the installation's
governance audit log (``<home>/governance/audit.log.jsonl``, hash-chained like a site's).

Bootstrap: while the store has no user, ``create_user(settings, None, ...)`` may create
the first account, and only as an admin; after that every change needs a signed-in admin.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mindcommons.errors import ConfigError, PolicyError
from mindcommons.governance.auditentry import EventKind
from mindcommons.governance.auditlog import AuditLog, record_event
from mindcommons.governance.permissions import Op, Principal, Role, authorize, parse_role
from mindcommons.governance.store import (
    Credential,
    User,
    governance_dir,
    governance_session,
    utcnow,
)
from mindcommons.settings import Settings, validate_site_name

CONFIG_FILE = "governance.toml"
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "mc_"
_DUMMY_HASHES: dict[tuple[int, int, int], str] = {}


@dataclass(frozen=True)
class GovernanceConfig:
    """Login rules, from ``<home>/governance/governance.toml`` (all keys optional)."""

    max_failed_logins: int = 5  # consecutive failures before the account locks
    lockout_minutes: int = 15  # 0: locked until an admin unlocks it
    session_hours: float = 12.0
    token_days: int = 90  # default lifetime of an API token
    # argon2id cost of new hashes (RFC 9106 second recommendation: 64 MiB, t=3, p=4).
    # Lower values are for tests only; a login re-hashes with the current values.
    argon2_memory_kib: int = 65536
    argon2_time_cost: int = 3
    argon2_parallelism: int = 4

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.argon2_time_cost,
            memory_cost=self.argon2_memory_kib,
            parallelism=self.argon2_parallelism,
        )

    def dummy_hash(self) -> str:
        """A hash of nothing with the current cost, so unknown users take as long."""
        key = (self.argon2_memory_kib, self.argon2_time_cost, self.argon2_parallelism)
        if key not in _DUMMY_HASHES:
            _DUMMY_HASHES[key] = self.hasher().hash("mindcommons-timing-equaliser")
        return _DUMMY_HASHES[key]

    @classmethod
    def load(cls, settings: Settings) -> GovernanceConfig:
        path = governance_dir(settings) / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML ({err})") from None
        out: dict[str, Any] = {}
        for name, default in vars(cls()).items():
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{path}: '{name}' must be a non-negative number")
            out[name] = type(default)(value)
        if out["max_failed_logins"] < 1:
            raise ConfigError(f"{path}: 'max_failed_logins' must be at least 1")
        if out["argon2_memory_kib"] < 1024 or out["argon2_time_cost"] < 1:
            raise ConfigError(f"{path}: argon2 needs at least 1024 KiB and time cost 1")
        if out["argon2_parallelism"] < 1:
            raise ConfigError(f"{path}: 'argon2_parallelism' must be at least 1")
        return cls(**out)


@dataclass(frozen=True)
class UserInfo:
    username: str
    role: str
    sites: tuple[str, ...]
    locked: bool
    failed_logins: int
    created_at: str


@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    kind: str
    name: str
    created_at: str
    expires_at: str
    last_used_at: str | None
    active: bool


def audit(settings: Settings, kind: EventKind, actor: str, subject: str, /, **details: Any) -> None:
    """Append to the installation's governance log (created on first use)."""
    record_event(governance_dir(settings), kind, actor=actor, subject=subject, details=details)


def governance_log(settings: Settings, actor: Principal) -> AuditLog:
    """The governance audit log (admins and auditors)."""
    authorize(actor, Op.GOVERNANCE_LOG)
    return AuditLog.for_site(governance_dir(settings))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_username(name: str) -> str:
    if not USERNAME_RE.match(name):
        raise ConfigError(
            f"user name '{name}' is not valid: lower-case letters, digits, '.', '_', '-' "
            "(at most 64 characters, starting with a letter or digit)"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def _sites(sites: list[str] | tuple[str, ...]) -> list[str]:
    return sorted({validate_site_name(s) for s in sites})


def _locked_now(user: User, now: dt.datetime) -> bool:
    return user.locked or (user.locked_until is not None and user.locked_until > now)


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ConfigError(f"no user '{username}' (see 'mindcommons users list')")
    return user


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def user_count(settings: Settings) -> int:
    with governance_session(settings) as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def create_user(
    settings: Settings,
    actor: Principal | None,
    username: str,
    role: Role | str,
    password: str,
    *,
    sites: list[str] | tuple[str, ...] = (),
) -> UserInfo:
    """Create an account. ``actor`` None is the bootstrap: first user, admin only."""
    role = parse_role(role) if isinstance(role, str) else role
    check_username(username)
    check_password(password)
    scope = _sites(sites)
    hashed = GovernanceConfig.load(settings).hasher().hash(password)
    with governance_session(settings) as session:
        if actor is None:
            if session.scalar(select(func.count()).select_from(User)):
                raise PolicyError(
                    "denied: users exist already; log in as an admin "
                    "('mindcommons users login NAME') to add more"
                )
            if role is not Role.ADMIN:
                raise PolicyError("denied: the first user must be an admin (--role admin)")
        else:
            authorize(actor, Op.USER_CREATE)
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise ConfigError(f"user '{username}' exists already")
        now = utcnow()
        user = User(
            username=username, role=role.value, sites=scope, password_hash=hashed,
            failed_logins=0, locked=False, created_at=now, password_changed_at=now,
        )  # fmt: skip
        session.add(user)
        session.flush()
        info = _info(user)
    who = actor.label if actor else "bootstrap"
    audit(settings, EventKind.USER_CHANGE, who, f"user:{username}",
          action="create", role=role.value, sites=scope)  # fmt: skip
    return info


def _info(user: User) -> UserInfo:
    return UserInfo(
        username=user.username, role=user.role, sites=tuple(user.sites or ()),
        locked=_locked_now(user, utcnow()), failed_logins=user.failed_logins,
        created_at=_iso(user.created_at) or "",
    )  # fmt: skip


def list_users(settings: Settings, actor: Principal) -> list[UserInfo]:
    authorize(actor, Op.USER_LIST)
    with governance_session(settings) as session:
        return [_info(u) for u in session.scalars(select(User).order_by(User.username))]


def login(settings: Settings, username: str, password: str) -> str:
    """Check the password; return a new session token (shown once, stored hashed).

    A wrong password counts towards the lockout; a locked account is refused without
    checking the password. Both are recorded in the governance audit log.
    """
    config = GovernanceConfig.load(settings)
    now = utcnow()
    events: list[tuple[EventKind, dict[str, Any]]] = []
    token = ""
    with governance_session(settings) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            _verify(config.dummy_hash(), password)  # same work as for a real account
            events.append((EventKind.LOGIN_FAILED, {"reason": "unknown user"}))
        elif _locked_now(user, now):
            events.append((EventKind.LOGIN_FAILED, {"reason": "locked"}))
        elif not _verify(user.password_hash, password):
            user.failed_logins += 1
            failed = {"reason": "wrong password", "failures": user.failed_logins}
            events.append((EventKind.LOGIN_FAILED, failed))
            if user.failed_logins >= config.max_failed_logins:
                minutes = config.lockout_minutes
                if minutes > 0:
                    user.locked_until = now + dt.timedelta(minutes=minutes)
                else:
                    user.locked = True
                events.append((EventKind.USER_CHANGE, {
                    "action": "lockout", "failures": user.failed_logins,
                    "minutes": minutes or "until unlocked",
                }))  # fmt: skip
        else:
            user.failed_logins = 0
            user.locked_until = None
            hasher = config.hasher()
            if hasher.check_needs_rehash(user.password_hash):
                user.password_hash = hasher.hash(password)
            token = _new_credential(session, user, "session", "login",
                                    dt.timedelta(hours=config.session_hours))  # fmt: skip
            events.append((EventKind.LOGIN, {"kind": "session"}))
    for kind, details in events:
        actor = f"user:{username[:64]}" if kind is not EventKind.USER_CHANGE else "system"
        audit(settings, kind, actor, f"user:{username[:64]}", **details)
    if not token:
        reasons = [d.get("reason") or d.get("action") for _, d in events]
        if "locked" in reasons or "lockout" in reasons:
            raise PolicyError(
                f"denied: the account '{username}' is locked after repeated failed logins; "
                "wait, or ask an admin to run 'mindcommons users unlock'"
            )
        raise PolicyError("denied: wrong user name or password")
    return token


def _verify(hashed: str, password: str) -> bool:
    try:
        return bool(PasswordHasher().verify(hashed, password))  # cost is read from the hash
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _new_credential(
    session: Session, user: User, kind: str, name: str, lifetime: dt.timedelta
) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    session.add(Credential(
        user_id=user.id, kind=kind, token_hash=token_hash(token), name=name[:100],
        created_at=now, expires_at=now + lifetime,
    ))  # fmt: skip
    return token


def authenticate(settings: Settings, token: str) -> Principal:
    """The user a session or API token belongs to; PolicyError if unknown, expired,
    revoked, or the account is locked."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX):
        raise PolicyError("denied: not a mindcommons session or API token")
    now = utcnow()
    with governance_session(settings) as session:
        cred = session.scalar(select(Credential).where(Credential.token_hash == token_hash(token)))
        if cred is None or cred.revoked_at is not None:
            raise PolicyError("denied: unknown or revoked token; log in again")
        if cred.expires_at <= now:
            raise PolicyError("denied: the session or token has expired; log in again")
        user = session.get(User, cred.user_id)
        if user is None or _locked_now(user, now):
            raise PolicyError("denied: the account is locked; ask an admin to unlock it")
        cred.last_used_at = now
        return Principal(user.username, Role(user.role), tuple(user.sites or ()), cred.id)


def logout(settings: Settings, token: str) -> None:
    """End a session (or revoke the API token given)."""
    actor = authenticate(settings, token)
    with governance_session(settings) as session:
        cred = session.get(Credential, actor.credential_id)
        if cred is not None:
            cred.revoked_at = utcnow()
    audit(settings, EventKind.LOGOUT, actor.label, f"user:{actor.username}")


def create_token(
    settings: Settings, actor: Principal, name: str = "api", days: int | None = None
) -> str:
    """A new API token for ``actor`` itself (shown once; stored hashed)."""
    authorize(actor, Op.OWN_TOKEN)
    lifetime = days if days is not None else GovernanceConfig.load(settings).token_days
    if lifetime < 1 or lifetime > 3650:
        raise ConfigError(f"token lifetime must be 1-3650 days, got {lifetime}")
    with governance_session(settings) as session:
        user = _user(session, actor.username)
        token = _new_credential(session, user, "token", name, dt.timedelta(days=lifetime))
    audit(settings, EventKind.USER_CHANGE, actor.label, f"user:{actor.username}",
          action="token_create", name=name[:100], days=lifetime)  # fmt: skip
    return token


def list_tokens(
    settings: Settings, actor: Principal, username: str | None = None
) -> list[TokenInfo]:
    """Sessions and tokens of ``actor`` (or of ``username``: admins only)."""
    target = username or actor.username
    authorize(actor, Op.OWN_TOKEN if target == actor.username else Op.USER_TOKENS_OTHERS)
    now = utcnow()
    with governance_session(settings) as session:
        user = _user(session, target)
        creds = session.scalars(
            select(Credential).where(Credential.user_id == user.id).order_by(Credential.id)
        )
        return [
            TokenInfo(
                id=c.id, username=target, kind=c.kind, name=c.name,
                created_at=_iso(c.created_at) or "", expires_at=_iso(c.expires_at) or "",
                last_used_at=_iso(c.last_used_at),
                active=c.revoked_at is None and c.expires_at > now,
            )
            for c in creds
        ]  # fmt: skip


def revoke_token(settings: Settings, actor: Principal, token_id: int) -> None:
    """Revoke one session or token (one's own; admins: anyone's)."""
    with governance_session(settings) as session:
        cred = session.get(Credential, token_id)
        owner = session.get(User, cred.user_id) if cred is not None else None
        if cred is None or owner is None:
            raise ConfigError(f"no token with id {token_id} (see 'mindcommons users token list')")
        own = owner.username == actor.username
        authorize(actor, Op.OWN_TOKEN if own else Op.USER_TOKENS_OTHERS)
        cred.revoked_at = cred.revoked_at or utcnow()
        name = owner.username
    audit(settings, EventKind.USER_CHANGE, actor.label, f"user:{name}",
          action="token_revoke", token_id=token_id)  # fmt: skip


def change_password(
    settings: Settings,
    actor: Principal,
    new_password: str,
    *,
    old_password: str | None = None,
    username: str | None = None,
) -> None:
    """Change one's own password (the old one is checked) or, as an admin, anyone's.

    The user's sessions end (API tokens stay; revoke them separately).
    """
    target = username or actor.username
    own = target == actor.username
    authorize(actor, Op.OWN_PASSWORD if own else Op.USER_SET_PASSWORD)
    check_password(new_password)
    with governance_session(settings) as session:
        user = _user(session, target)
        if own and not _verify(user.password_hash, old_password or ""):
            raise PolicyError("denied: the current password is wrong")
        now = utcnow()
        user.password_hash = GovernanceConfig.load(settings).hasher().hash(new_password)
        user.password_changed_at = now
        for cred in session.scalars(
            select(Credential).where(Credential.user_id == user.id, Credential.kind == "session")
        ):
            cred.revoked_at = cred.revoked_at or now
    audit(settings, EventKind.USER_CHANGE, actor.label, f"user:{target}", action="password")


def set_role(
    settings: Settings,
    actor: Principal,
    username: str,
    role: Role | str,
    *,
    sites: list[str] | tuple[str, ...] | None = None,
) -> UserInfo:
    """Change a user's role (and site scope); the last unlocked admin cannot be demoted."""
    authorize(actor, Op.USER_SET_ROLE)
    role = parse_role(role) if isinstance(role, str) else role
    with governance_session(settings) as session:
        user = _user(session, username)
        old_role, old_sites = user.role, list(user.sites or [])
        if old_role == Role.ADMIN and role is not Role.ADMIN:
            _keep_an_admin(session, user)
        user.role = role.value
        if sites is not None:
            user.sites = _sites(sites)
        info = _info(user)
    audit(settings, EventKind.USER_CHANGE, actor.label, f"user:{username}",
          action="role", old={"role": old_role, "sites": old_sites},
          new={"role": info.role, "sites": list(info.sites)})  # fmt: skip
    return info


def _keep_an_admin(session: Session, leaving: User) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.id != leaving.id, User.locked.is_(False))
    )
    if not others:
        raise PolicyError(f"denied: '{leaving.username}' is the last admin; create another first")


def lock_user(settings: Settings, actor: Principal, username: str) -> None:
    """Lock an account until an admin unlocks it; its sessions and tokens stop working."""
    authorize(actor, Op.USER_LOCK)
    with governance_session(settings) as session:
        user = _user(session, username)
        if user.role == Role.ADMIN.value:
            _keep_an_admin(session, user)
        user.locked = True
    audit(settings, EventKind.USER_CHANGE, actor.label, f"user:{username}", action="lock")


def unlock_user(settings: Settings, actor: Principal, username: str) -> None:
    """Unlock an account (admin lock or lockout) and reset its failed-login count."""
    authorize(actor, Op.USER_UNLOCK)
    with governance_session(settings) as session:
        user = _user(session, username)
        user.locked = False
        user.locked_until = None
        user.failed_logins = 0
    audit(settings, EventKind.USER_CHANGE, actor.label, f"user:{username}", action="unlock")


def session_file(settings: Settings) -> Path:
    """Where the CLI keeps the signed-in session token (mode 0600)."""
    return governance_dir(settings) / "session.token"


TOKEN_ENV = "MINDCOMMONS_TOKEN"


def current_principal(settings: Settings, token: str | None = None) -> Principal:
    """Who is acting: ``token`` if given, else ``$MINDCOMMONS_TOKEN``, else the session
    saved by ``mindcommons users login``; PolicyError when none is valid."""
    import os

    chosen = (token or os.environ.get(TOKEN_ENV, "")).strip()
    if not chosen:
        path = session_file(settings)
        if path.exists():
            chosen = path.read_text(encoding="utf-8").strip()
    if not chosen:
        raise PolicyError(
            "denied: nobody is signed in; run 'mindcommons users login NAME' or set "
            f"${TOKEN_ENV} to an API token"
        )
    return authenticate(settings, chosen)


def save_session(settings: Settings, token: str) -> Path:
    """Keep the CLI's session token in ``<home>/governance/session.token`` (mode 0600)."""
    import os

    path = session_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    tmp.replace(path)
    return path

"""The governance store of one installation: users, credentials, projects, site approvals.

One SQL database per ``MINDCOMMONS_HOME`` (not per site): ``<home>/governance/
governance.sqlite`` by default, or any SQLAlchemy URL in ``$MINDCOMMONS_GOVERNANCE_URL``
(PostgreSQL in production). Its schema has its own Alembic chain (``governance/
migrations``, version table ``governance_alembic_version``), so it evolves apart from the
site repositories. In a real federation every site runs its own installation, so the
approvals a site's guard reads are the site's own; on one machine (the demo) the sites
share one store and each approval names its site.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mindcommons.errors import ConfigError, PrerequisiteError
from mindcommons.settings import Settings

URL_ENV = "MINDCOMMONS_GOVERNANCE_URL"
GOVERNANCE_DIR = "governance"
DB_FILE = "governance.sqlite"
VERSION_TABLE = "governance_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class GovBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(GovBase):
    __tablename__ = "gov_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    sites: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every site
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)  # by an admin
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)  # naive UTC
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    password_changed_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Credential(GovBase):
    """A session (from a password login) or an API token; only its SHA-256 is stored."""

    __tablename__ = "gov_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("gov_user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "session" | "token"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Project(GovBase):
    __tablename__ = "gov_project"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Approval(GovBase):
    """A steward's current decision on one project at one site (history: the audit log)."""

    __tablename__ = "gov_approval"
    __table_args__ = (UniqueConstraint("project", "site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(100))
    site: Mapped[str] = mapped_column(String(64), index=True)
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(10))  # "approved" | "revoked"
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime)
    note: Mapped[str] = mapped_column(Text, default="")


def utcnow() -> dt.datetime:
    """Naive UTC (stored the same way on SQLite and PostgreSQL)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def governance_dir(settings: Settings) -> Path:
    """``<home>/governance``: the store (SQLite), its audit log and its key."""
    return settings.resolved_home() / GOVERNANCE_DIR


def governance_url(settings: Settings) -> str:
    url = os.environ.get(URL_ENV, "").strip()
    return url or f"sqlite:///{governance_dir(settings) / DB_FILE}"


def store_exists(settings: Settings) -> bool:
    """False only when the default SQLite store has never been created (nothing decided)."""
    if os.environ.get(URL_ENV, "").strip():
        return True
    return (governance_dir(settings) / DB_FILE).exists()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def open_engine(url: str) -> Engine:
    """An engine on ``url`` with the schema migrated to the newest governance revision."""
    fresh = False
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            fresh = not Path(parsed.database).exists()
        engine = create_engine(parsed)
    except ArgumentError as err:
        raise ConfigError(f"{URL_ENV}: '{url}' is not a valid database URL ({err})") from err
    except ModuleNotFoundError as err:
        raise PrerequisiteError(
            f"the database driver '{err.name}' is not installed (pip install psycopg[binary])"
        ) from err
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with _migrate_lock:
            if fresh or shown not in _migrated:
                with engine.begin() as conn:
                    command.upgrade(alembic_config(conn), "head")
                _migrated.add(shown)
    except OperationalError as err:
        engine.dispose()
        first = str(err.orig or err).strip().splitlines()[0]
        raise PrerequisiteError(f"cannot open the governance store {shown}: {first}") from err
    return engine


@contextmanager
def governance_session(settings: Settings) -> Iterator[Session]:
    """A session on the installation's governance store, committed on success."""
    engine = open_engine(governance_url(settings))
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()

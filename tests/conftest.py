"""Shared fixtures: site repositories on SQLite and on a real local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mindcommons.repository import SiteRepository
from mindcommons.repository.crypto import KEY_FILE_ENV

PG_ENV = "MINDCOMMONS_TEST_PG_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def repo_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL database per test.

    A SQLite repository keeps its text keyring next to the file; for PostgreSQL the
    keyring file is named by $MINDCOMMONS_TEXT_KEY_FILE (a fresh one per test)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("repo") / "repository.sqlite"
        yield f"sqlite:///{path}"
        return
    base = os.environ.get(PG_ENV, "")
    if not base:
        pytest.skip(f"set {PG_ENV} (make test does)")
    keys = tmp_path_factory.mktemp("keys") / "text.keys"
    monkeypatch.setenv(KEY_FILE_ENV, str(keys))
    url = make_url(base)
    name = f"mc_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def repo(repo_url: str) -> Iterator[SiteRepository]:
    """An opened (migrated) site repository on each backend."""
    repository = SiteRepository.open(repo_url)
    try:
        yield repository
    finally:
        repository.close()

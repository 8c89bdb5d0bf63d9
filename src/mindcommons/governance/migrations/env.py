"""Alembic environment of the governance store (run by ``governance.store.open_engine``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from mindcommons.governance.store import VERSION_TABLE, GovBase

config = context.config
target_metadata = GovBase.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("the governance store is migrated online only")
run_migrations_online()

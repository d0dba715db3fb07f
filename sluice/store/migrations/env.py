"""Alembic environment: runs on a connection handed in by `sluice.store.database.migrate`, or on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sluice.store.schema import metadata

config = context.config


def run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "alembic.ini names no sqlalchemy.url"
    engine = create_engine(url)
    with engine.begin() as conn:
        run(conn)

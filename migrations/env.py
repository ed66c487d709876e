"""Alembic environment: the app's own engine and metadata (no Flask-SQLAlchemy)."""

from __future__ import annotations

from alembic import context

import crm.models  # noqa: F401  (registers every table)
from crm.db import Base, make_engine

config = context.config

# Search structures made by hand-written SQL (0002_search, 0003_search_per_reader): not in the
# models, not to be dropped.
HAND_MADE = (
    "emails_fts",
    "search_vector",
    "ix_emails_search_vector",
    "ix_email_user_states_search",
)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (reflected and compare_to is None and (name or "").startswith(HAND_MADE))


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from flask import current_app

    return current_app.config["CRM_CONFIG"].database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=Base.metadata, render_as_batch=True, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    # render_as_batch lets ALTER TABLE work on SQLite by copying the table.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Per-dialect connection settings the app relies on (crm.db.make_engine)."""

from __future__ import annotations

import pytest
from sqlalchemy import text


def test_postgresql_connections_run_without_parallel_workers_or_jit(db):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    assert db.scalar(text("SHOW max_parallel_workers_per_gather")) == "0"
    assert db.scalar(text("SHOW jit")) == "off"
    # The settings are made outside a transaction, then the connection is handed back as it
    # was: a SET LOCAL takes effect (it would not without a transaction) and ends with it.
    db.execute(text("SET LOCAL statement_timeout = 1234"))
    assert db.scalar(text("SHOW statement_timeout")) == "1234ms"
    db.rollback()
    assert db.scalar(text("SHOW statement_timeout")) != "1234ms"


def test_sqlite_connections_use_wal_and_foreign_keys(db):
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite only")
    assert db.scalar(text("PRAGMA journal_mode")) == "wal"
    assert db.scalar(text("PRAGMA foreign_keys")) == 1

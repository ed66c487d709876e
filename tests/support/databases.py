"""Private test databases: a SQLite file, or a fresh PostgreSQL database per test run.

Each pytest process gets its own database so parallel runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text

from crm.db import Base

PG_SERVER_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")


def backend() -> str:
    return os.environ.get("CRM_TEST_DB", "sqlite")


def create_database(tmp_dir, keep_as: str | None = None) -> tuple[str, callable]:
    """(url, drop) for an empty database of the chosen backend.

    With `keep_as` (benchmarks) the database is named, outlives the run and is reused when it
    exists already: SQLite in `tmp_dir`, PostgreSQL under that name; `drop` then does nothing.
    """
    if backend() == "sqlite":
        return f"sqlite:///{tmp_dir}/{keep_as or 'crm-test'}.sqlite3", lambda: None
    name = keep_as or f"crm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = PG_SERVER_URL.rpartition("/")

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    if keep_as:
        admin.dispose()
        return f"{base}/{name}", lambda: None
    return f"{base}/{name}", drop


def empty_all_tables(engine) -> None:
    """Remove every row (tests share one migrated schema)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for t in tables:
                conn.exec_driver_sql(f'DELETE FROM "{t}"')
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")

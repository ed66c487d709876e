"""Engine, session factory and declarative base. No Flask here."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from crm import folding

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Naive UTC now: both databases store naive timestamps the same way."""
    return datetime.now(UTC).replace(tzinfo=None)


def make_engine(url: str, **kwargs) -> Engine:
    """An engine with the per-dialect settings the app relies on."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _postgresql_settings)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the web process read while a worker imports. pysqlite opens a transaction only
    # before writes, so reads see the latest commit, as under PostgreSQL's READ COMMITTED; the
    # price is unreliable SAVEPOINTs, which the app therefore does not use.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    # Search compares names folded (case and accents off) the same way on both databases;
    # PostgreSQL has unaccent(lower()), SQLite gets the Python fold.
    dbapi_conn.create_function("crm_fold", 1, _fold, deterministic=True)


def _fold(value: str | None) -> str | None:
    return None if value is None else folding.fold(value)


def _postgresql_settings(dbapi_conn, _record) -> None:
    # Short interactive queries: parallel workers and JIT compilation cost more to start than
    # they save (a search took 39 ms with two workers, 25 ms without; JIT spent 140 ms planning
    # a scan), and the workers would take the cores other requests and the import need.
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    with dbapi_conn.cursor() as cur:
        cur.execute("SET max_parallel_workers_per_gather = 0")
        cur.execute("SET jit = off")
    dbapi_conn.autocommit = autocommit


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)

"""Migrations run up, down and up again on a fresh database of the chosen backend."""

from sqlalchemy import inspect

from crm.db import Base, make_engine
from crm.migrations import downgrade, upgrade
from tests.support.databases import create_database


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(tmp_path):
    url, drop = create_database(tmp_path)
    try:
        upgrade(url)
        assert set(Base.metadata.tables) <= _tables(url)
        downgrade(url, "base")
        assert _tables(url) <= {"alembic_version"}
        upgrade(url)
        assert set(Base.metadata.tables) <= _tables(url)
    finally:
        drop()


def test_migrations_match_the_models(database_url):
    """Every model change comes with its migration (alembic check finds nothing to add)."""
    from alembic import command

    from crm.migrations import alembic_config

    command.check(alembic_config(database_url))

"""0016: email_addresses.subscribed_again_at, added and dropped in place: the addresses and
the links hanging off them stay (a SQLite rebuild of the table would cascade to its links)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from crm.db import make_engine
from crm.migrations import downgrade, upgrade
from tests.support.databases import create_database

NOW = "2026-01-01 00:00:00"
COUNTS = "SELECT (SELECT count(*) FROM email_addresses), (SELECT count(*) FROM email_address_links)"


def _seed(conn) -> None:
    conn.execute(
        text(
            "INSERT INTO email_addresses (id, address, lower, opted_out, invalid) "
            "VALUES (1, 'Ann@customer.example', 'ann@customer.example', :yes, :no)"
        ),
        {"yes": True, "no": False},
    )
    conn.execute(
        text(
            "INSERT INTO email_address_links (id, address_id, entity_type, entity_id, is_primary) "
            "VALUES (1, 1, 'Contact', 1, :yes)"
        ),
        {"yes": True},
    )


def _columns(conn) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("email_addresses")}


def test_0016_adds_the_subscribed_again_time_and_keeps_every_address(tmp_path):
    url, drop = create_database(tmp_path)
    engine = make_engine(url)
    try:
        upgrade(url, "0015")
        with engine.begin() as conn:
            _seed(conn)
        upgrade(url, "0016")
        with engine.begin() as conn:
            assert tuple(conn.execute(text(COUNTS)).one()) == (1, 1)
            row = conn.execute(text("SELECT opted_out, subscribed_again_at FROM email_addresses"))
            assert tuple(row.one()) in ((True, None), (1, None))  # nothing invented for old rows
            conn.execute(text("UPDATE email_addresses SET subscribed_again_at = :t"), {"t": NOW})
        downgrade(url, "0015")
        with engine.connect() as conn:
            assert tuple(conn.execute(text(COUNTS)).one()) == (1, 1)
            assert "subscribed_again_at" not in _columns(conn) and "opted_out" in _columns(conn)
        upgrade(url, "0016")
        with engine.connect() as conn:
            assert "subscribed_again_at" in _columns(conn)
    finally:
        engine.dispose()
        drop()

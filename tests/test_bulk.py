"""crm.bulk stores the same values as a Core INSERT (COPY on PostgreSQL, executemany on SQLite)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from crm import bulk
from crm.models import Email, EmailAddress, EmailRecipient

COMPARED = [
    c.name
    for c in Email.__table__.columns
    if c.name not in ("id", "identity", "created_at", "search_vector")
]


def _row(identity: str) -> dict:
    return {
        "identity": identity,
        "message_id": "<same@x.example>",
        "in_reply_to": "<root@x.example>",
        "references": ["<root@x.example>", "<mid@x.example>"],
        "subject": "Ceník\tna rok 2027\n\\ \"citace\" 'a' ø",
        "body_text": "řádek 1\r\nřádek 2\t\\N null",
        "body_html": "<p>řádek</p>",
        "date_sent": datetime(2026, 12, 1, 9, 30, 15),
        "problems": ["a note"],
        "size": 1234,
        "created_at": datetime(2026, 12, 3, 10, 0, 0),
    }


def test_bulk_rows_equal_core_insert_rows_with_defaults_and_json(db):
    connection = db.connection()
    connection.execute(insert(Email.__table__), [_row("<core@x.example>")])
    ids = bulk.insert_rows_returning_ids(
        connection, Email.__table__, [_row("<bulk1@x.example>"), _row("<bulk2@x.example>")]
    )
    by_identity = {e.identity: e for e in db.scalars(select(Email))}
    assert [by_identity["<bulk1@x.example>"].id, by_identity["<bulk2@x.example>"].id] == ids
    core = by_identity["<core@x.example>"]
    for identity in ("<bulk1@x.example>", "<bulk2@x.example>"):
        stored = by_identity[identity]
        assert {c: getattr(stored, c) for c in COMPARED} == {c: getattr(core, c) for c in COMPARED}
    # Python-side defaults were applied: the thread root and the search words.
    assert core.thread_root == "<root@x.example>" and core.status == "Archived"
    assert core.references == ["<root@x.example>", "<mid@x.example>"]


def test_bulk_insert_rows_and_a_new_id_after_them(db):
    address = EmailAddress(address="a@x.example", lower="a@x.example")
    db.add(address)
    db.flush()
    (email_id,) = bulk.insert_rows_returning_ids(
        db.connection(), Email.__table__, [_row("<r@x.example>")]
    )
    rows = [
        {
            "email_id": email_id,
            "position": i,
            "role": "to",
            "name": f"N{i}",
            "address_id": address.id,
        }
        for i in range(3)
    ]
    bulk.insert_rows(db.connection(), EmailRecipient.__table__, rows)
    bulk.insert_rows(db.connection(), EmailRecipient.__table__, [])
    stored = db.scalars(select(EmailRecipient).order_by(EmailRecipient.position)).all()
    assert [(r.email_id, r.name) for r in stored] == [
        (email_id, "N0"),
        (email_id, "N1"),
        (email_id, "N2"),
    ]
    # The sequence moved on: an ordinary insert gets a new id.
    later = Email(identity="<later@x.example>", subject="later")
    db.add(later)
    db.flush()
    assert later.id > email_id

"""full-text search over mail: SQLite FTS5 or a PostgreSQL tsvector

Hand-written: autogenerate cannot express virtual tables, triggers or generated tsvector columns.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# External-content FTS5: the index stores tokens only; triggers keep it in step with `emails`.
# remove_diacritics 0 tokenises like PostgreSQL's 'simple' configuration, so both agree.
SQLITE_UP = [
    """CREATE VIRTUAL TABLE emails_fts USING fts5(
        subject, body_text, address_text,
        content='emails', content_rowid='id', tokenize='unicode61 remove_diacritics 0')""",
    """CREATE TRIGGER emails_fts_insert AFTER INSERT ON emails BEGIN
        INSERT INTO emails_fts(rowid, subject, body_text, address_text)
        VALUES (new.id, new.subject, new.body_text, new.address_text);
    END""",
    """CREATE TRIGGER emails_fts_delete AFTER DELETE ON emails BEGIN
        INSERT INTO emails_fts(emails_fts, rowid, subject, body_text, address_text)
        VALUES ('delete', old.id, old.subject, old.body_text, old.address_text);
    END""",
    """CREATE TRIGGER emails_fts_update AFTER UPDATE OF subject, body_text, address_text ON emails
    BEGIN
        INSERT INTO emails_fts(emails_fts, rowid, subject, body_text, address_text)
        VALUES ('delete', old.id, old.subject, old.body_text, old.address_text);
        INSERT INTO emails_fts(rowid, subject, body_text, address_text)
        VALUES (new.id, new.subject, new.body_text, new.address_text);
    END""",
    "INSERT INTO emails_fts(emails_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS emails_fts_update",
    "DROP TRIGGER IF EXISTS emails_fts_delete",
    "DROP TRIGGER IF EXISTS emails_fts_insert",
    "DROP TABLE IF EXISTS emails_fts",
]

# '@' and '.' become spaces so addresses split into words as FTS5 splits them (PostgreSQL's
# parser would keep "sam@x.example" as one token); the body is capped because a tsvector
# must stay under 1 MB.
PG_UP = [
    """ALTER TABLE emails ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', translate(coalesce(subject, ''), '@.', '  ')), 'A')
        || setweight(to_tsvector('simple', translate(coalesce(address_text, ''), '@.', '  ')), 'B')
        || to_tsvector('simple', translate(left(coalesce(body_text, ''), 200000), '@.', '  '))
    ) STORED""",
    "CREATE INDEX ix_emails_search_vector ON emails USING gin (search_vector)",
]
PG_DOWN = [
    "DROP INDEX IF EXISTS ix_emails_search_vector",
    "ALTER TABLE emails DROP COLUMN IF EXISTS search_vector",
]


def _run(statements) -> None:
    for sql in statements:
        op.execute(sql)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        _run(PG_UP)
    else:
        _run(SQLITE_UP)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        _run(PG_DOWN)
    else:
        _run(SQLITE_DOWN)

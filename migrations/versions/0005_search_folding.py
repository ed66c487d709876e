"""search without accents or case, CJK by pairs, records by a folded key

Mail: "Dekuji" finds "Děkuji", "Muller" finds "Müller", "会議" finds "東京会議".
* SQLite: FTS5 with `unicode61 remove_diacritics 2`, reading its text through the view
  `emails_fts_source`, which replaces the letters FTS5 would keep (ł, ø, ß, æ, œ, ...; see
  crm.folding.SQL_REPLACEMENTS) and appends each field's line of `emails.search_extra`. The
  triggers read the view too, so the index and its content agree (FTS5 integrity-check).
* PostgreSQL: the text search configuration `crm_unaccent` (simple, with the unaccent
  dictionary first for words that are not plain ASCII) computes `emails.search_vector`, again
  with the lines of `search_extra`; the per-reader copies (0003) are refreshed.
* `emails.search_extra` (new): what neither database would fold as crm.folding does, computed
  in Python on write: CJK runs as overlapping pairs, Greek accents and the like.
* `search_key` on every record table: the searchable columns folded (crm.folding.key), so the
  record lists find "elec" in "Électricité du Rhône SA" on SQLite too.

The folding functions are imported from crm.folding rather than frozen here: the query side
folds with that module, and an index filled by an older copy would stop matching it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from crm import folding

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 2000

# --- SQLite ---------------------------------------------------------------------------------


def _replaced(column: str) -> str:
    sql = f"coalesce({column}, '')"
    for letter, plain in folding.SQL_REPLACEMENTS.items():
        sql = f"replace({sql}, '{letter}', '{plain}')"
    return sql


# The lines of search_extra: "" or "subject words\nbody words\naddress words".
_EXTRA_1 = "substr(search_extra, 1, instr(search_extra, char(10)) - 1)"
_EXTRA_REST = "substr(search_extra, instr(search_extra, char(10)) + 1)"
_EXTRA_2 = f"substr({_EXTRA_REST}, 1, instr({_EXTRA_REST}, char(10)) - 1)"
_EXTRA_3 = f"substr({_EXTRA_REST}, instr({_EXTRA_REST}, char(10)) + 1)"

SQLITE_VIEW = f"""CREATE VIEW emails_fts_source AS SELECT id,
    {_replaced("subject")} || ' ' || {_EXTRA_1} AS subject,
    {_EXTRA_2} || ' ' || {_replaced("body_text")} AS body_text,
    {_replaced("address_text")} || ' ' || {_EXTRA_3} AS address_text
    FROM emails"""

_COLUMNS = "subject, body_text, address_text"
_INDEX = f"INSERT INTO emails_fts(rowid, {_COLUMNS}) SELECT id, {_COLUMNS} FROM emails_fts_source"
_UNINDEX = (
    f"INSERT INTO emails_fts(emails_fts, rowid, {_COLUMNS}) "
    f"SELECT 'delete', id, {_COLUMNS} FROM emails_fts_source"
)
_WATCHED = "subject, body_text, address_text, search_extra"

SQLITE_UP = [
    "DROP TRIGGER IF EXISTS emails_fts_update",
    "DROP TRIGGER IF EXISTS emails_fts_delete",
    "DROP TRIGGER IF EXISTS emails_fts_insert",
    "DROP TABLE IF EXISTS emails_fts",
    SQLITE_VIEW,
    f"""CREATE VIRTUAL TABLE emails_fts USING fts5({_COLUMNS},
        content='emails_fts_source', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER emails_fts_insert AFTER INSERT ON emails BEGIN
        {_INDEX} WHERE id = new.id;
    END""",
    # The old words come from the view while the row still holds them.
    f"""CREATE TRIGGER emails_fts_delete BEFORE DELETE ON emails BEGIN
        {_UNINDEX} WHERE id = old.id;
    END""",
    f"""CREATE TRIGGER emails_fts_unindex BEFORE UPDATE OF {_WATCHED} ON emails BEGIN
        {_UNINDEX} WHERE id = old.id;
    END""",
    f"""CREATE TRIGGER emails_fts_update AFTER UPDATE OF {_WATCHED} ON emails BEGIN
        {_INDEX} WHERE id = new.id;
    END""",
    "INSERT INTO emails_fts(emails_fts) VALUES ('rebuild')",
]

# 0002's table and triggers.
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS emails_fts_update",
    "DROP TRIGGER IF EXISTS emails_fts_unindex",
    "DROP TRIGGER IF EXISTS emails_fts_delete",
    "DROP TRIGGER IF EXISTS emails_fts_insert",
    "DROP TABLE IF EXISTS emails_fts",
    "DROP VIEW IF EXISTS emails_fts_source",
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

# --- PostgreSQL -----------------------------------------------------------------------------

# Words of plain ASCII skip the unaccent dictionary; every other word goes through it first.
PG_CONFIG = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION crm_unaccent (COPY = simple)",
    """ALTER TEXT SEARCH CONFIGURATION crm_unaccent
        ALTER MAPPING FOR word, hword, hword_part, numword, numhword, hword_numpart
        WITH unaccent, simple""",
]


def _vector(config: str, extra: bool) -> str:
    def field(column: str, line: int | None, first: bool = False) -> str:
        text = f"translate({column}, '@.', '  ')"
        if extra:
            part = f"split_part(search_extra, E'\\n', {line})"
            text = f"{part} || ' ' || {text}" if first else f"{text} || ' ' || {part}"
        return f"to_tsvector('{config}', {text})"

    return f"""ALTER TABLE emails ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight({field("coalesce(subject, '')", 1)}, 'A')
        || setweight({field("coalesce(address_text, '')", 3)}, 'B')
        || {field("left(coalesce(body_text, ''), 200000)", 2, first=True)}
    ) STORED"""


def _pg_vectors(config: str, extra: bool, watched: str) -> list[str]:
    """search_vector again with another expression, the trigger of 0003, the readers' copies."""
    return [
        "DROP TRIGGER IF EXISTS emails_search_changed ON emails",
        "DROP INDEX IF EXISTS ix_email_user_states_search",
        "ALTER TABLE emails DROP COLUMN search_vector",
        _vector(config, extra),
        f"""CREATE TRIGGER emails_search_changed AFTER UPDATE OF {watched}
            ON emails FOR EACH ROW
            WHEN (OLD.search_vector IS DISTINCT FROM NEW.search_vector)
            EXECUTE FUNCTION crm_email_search_changed()""",
        """UPDATE email_user_states s SET search_vector = e.search_vector
             FROM emails e WHERE e.id = s.email_id""",
        """CREATE INDEX ix_email_user_states_search ON email_user_states
            USING gin (user_id, search_vector)""",
    ]


# --- records --------------------------------------------------------------------------------

# (table, the columns its search_key folds); contacts and leads read "first last" as one.
RECORD_KEYS = {
    "accounts": ("name", "website", "phone"),
    "contacts": ("first_name", "last_name", "phone"),
    "leads": ("first_name", "last_name", "account_name", "phone"),
    "opportunities": ("name",),
    "cases": ("name",),
    "tasks": ("name",),
}


def _fill_record_keys(conn) -> None:
    for table, columns in RECORD_KEYS.items():
        rows = conn.execute(sa.text(f"SELECT id, {', '.join(columns)} FROM {table}")).all()
        values = [{"id": row[0], "key": folding.key(*row[1:])} for row in rows]
        if values:
            conn.execute(sa.text(f"UPDATE {table} SET search_key = :key WHERE id = :id"), values)


def _fill_search_extra(conn) -> None:
    last = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, subject, body_text, address_text FROM emails "
                "WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH},
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        values = [
            {"id": row[0], "extra": extra}
            for row in rows
            if (extra := folding.search_extra(row[1], row[2], row[3]))
        ]
        if values:
            conn.execute(sa.text("UPDATE emails SET search_extra = :extra WHERE id = :id"), values)


def upgrade():
    conn = op.get_bind()
    postgresql = conn.dialect.name == "postgresql"
    for table in RECORD_KEYS:
        op.add_column(table, sa.Column("search_key", sa.Text(), nullable=False, server_default=""))
    _fill_record_keys(conn)
    op.add_column("emails", sa.Column("search_extra", sa.Text(), nullable=False, server_default=""))
    _fill_search_extra(conn)
    if postgresql:
        statements = PG_CONFIG + _pg_vectors("crm_unaccent", True, _WATCHED)
    else:
        statements = SQLITE_UP
    for sql in statements:
        op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        statements = _pg_vectors("simple", False, "subject, body_text, address_text") + [
            "DROP TEXT SEARCH CONFIGURATION IF EXISTS crm_unaccent"  # unaccent stays, as btree_gin
        ]
    else:
        statements = list(SQLITE_DOWN)
    # SQLite drops a column in place (3.35+): a batch copy of emails would lose its triggers.
    statements.append("ALTER TABLE emails DROP COLUMN search_extra")
    statements += [f"ALTER TABLE {table} DROP COLUMN search_key" for table in RECORD_KEYS]
    for sql in statements:
        op.execute(sql)

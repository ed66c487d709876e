"""PostgreSQL search per reader: each user's state row carries its mail's tsvector

A search asks for one user's newest matching mail. With the GIN index on `emails`, PostgreSQL
had to visit a mail row per candidate: every match in the database, or the user's list newest
first until a page was full (6,000 to 10,000 row visits for a word in 0.5 % of mail: 60 ms at
a million mail). A GIN index over (user_id, search_vector) on the state rows (btree_gin) finds
exactly the user's matches, and reading the user's list newest first checks the vector
without a join (about 9 ms).

The vector is still computed once per mail (the generated `emails.search_vector` of 0002) and
copied to each reader's row by trigger, so shared mail costs one copy and one index entry set
per reader, not one text analysis per reader (GIN inserts measured at about 40 µs a row).

Hand-written: autogenerate cannot express triggers or functions. SQLite keeps FTS5 (0002),
whose lookups never visit table rows. btree_gin is a trusted extension: the database's owner
may create it.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PG_UP = [
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    "ALTER TABLE email_user_states ADD COLUMN search_vector tsvector",
    # A new reader's row takes its mail's words.
    """CREATE FUNCTION crm_state_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT e.search_vector INTO NEW.search_vector FROM emails e WHERE e.id = NEW.email_id;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER email_user_states_search BEFORE INSERT ON email_user_states
        FOR EACH ROW EXECUTE FUNCTION crm_state_search_vector()""",
    # A changed mail (a draft being written) passes its new words on to every reader's row.
    """CREATE FUNCTION crm_email_search_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE email_user_states SET search_vector = NEW.search_vector WHERE email_id = NEW.id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER emails_search_changed AFTER UPDATE OF subject, body_text, address_text
        ON emails FOR EACH ROW
        WHEN (OLD.search_vector IS DISTINCT FROM NEW.search_vector)
        EXECUTE FUNCTION crm_email_search_changed()""",
    """UPDATE email_user_states s SET search_vector = e.search_vector
         FROM emails e WHERE e.id = s.email_id""",
    """CREATE INDEX ix_email_user_states_search ON email_user_states
        USING gin (user_id, search_vector)""",
    # Nothing searches all mail at once any more.
    "DROP INDEX IF EXISTS ix_emails_search_vector",
]

# Back to 0002's shape. The btree_gin extension stays: other objects may use it.
PG_DOWN = [
    "CREATE INDEX IF NOT EXISTS ix_emails_search_vector ON emails USING gin (search_vector)",
    "DROP INDEX IF EXISTS ix_email_user_states_search",
    "DROP TRIGGER IF EXISTS emails_search_changed ON emails",
    "DROP TRIGGER IF EXISTS email_user_states_search ON email_user_states",
    "DROP FUNCTION IF EXISTS crm_email_search_changed()",
    "DROP FUNCTION IF EXISTS crm_state_search_vector()",
    "ALTER TABLE email_user_states DROP COLUMN IF EXISTS search_vector",
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        for sql in PG_UP:
            op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for sql in PG_DOWN:
            op.execute(sql)

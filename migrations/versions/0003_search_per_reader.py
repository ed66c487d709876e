"""PostgreSQL search per reader: the tsvector moves from `emails` to each user's state row

A search asks for one user's newest matching mail. With the vector on `emails`, PostgreSQL had
to visit a mail row for every candidate: either every match in the whole database, or the
user's list newest first until a page was full (10,000 row visits for a word in 0.5 % of mail).
On the state row, a GIN index over (user_id, search_vector) (btree_gin) finds exactly the
user's matches, and reading the user's list newest first checks the vector without a join.

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

# The one definition of what is searchable ('@' and '.' become spaces so addresses split into
# words as FTS5 splits them; the body is capped because a tsvector must stay under 1 MB).
VECTOR_FUNCTION = """CREATE OR REPLACE FUNCTION crm_mail_search_vector(
        subject text, address_text text, body_text text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT setweight(to_tsvector('simple', translate(coalesce(subject, ''), '@.', '  ')), 'A')
            || setweight(to_tsvector('simple', translate(coalesce(address_text, ''), '@.', '  ')), 'B')
            || to_tsvector('simple', translate(left(coalesce(body_text, ''), 200000), '@.', '  '))
    $$"""

PG_UP = [
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    VECTOR_FUNCTION,
    "ALTER TABLE email_user_states ADD COLUMN search_vector tsvector",
    # A new state row takes its mail's words.
    """CREATE FUNCTION crm_state_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT crm_mail_search_vector(e.subject, e.address_text, e.body_text)
          INTO NEW.search_vector FROM emails e WHERE e.id = NEW.email_id;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER email_user_states_search BEFORE INSERT ON email_user_states
        FOR EACH ROW EXECUTE FUNCTION crm_state_search_vector()""",
    # A changed mail (a draft being written) passes its words on to every reader's row.
    """CREATE FUNCTION crm_email_search_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE email_user_states
           SET search_vector = crm_mail_search_vector(NEW.subject, NEW.address_text, NEW.body_text)
         WHERE email_id = NEW.id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER emails_search_changed AFTER UPDATE OF subject, body_text, address_text
        ON emails FOR EACH ROW
        WHEN (OLD.subject IS DISTINCT FROM NEW.subject
              OR OLD.body_text IS DISTINCT FROM NEW.body_text
              OR OLD.address_text IS DISTINCT FROM NEW.address_text)
        EXECUTE FUNCTION crm_email_search_changed()""",
    """UPDATE email_user_states s
          SET search_vector = crm_mail_search_vector(e.subject, e.address_text, e.body_text)
         FROM emails e WHERE e.id = s.email_id""",
    """CREATE INDEX ix_email_user_states_search ON email_user_states
        USING gin (user_id, search_vector)""",
    "DROP INDEX IF EXISTS ix_emails_search_vector",
    "ALTER TABLE emails DROP COLUMN IF EXISTS search_vector",
]

# Back to 0002's shape. The btree_gin extension stays: other objects may use it.
PG_DOWN = [
    """ALTER TABLE emails ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', translate(coalesce(subject, ''), '@.', '  ')), 'A')
        || setweight(to_tsvector('simple', translate(coalesce(address_text, ''), '@.', '  ')), 'B')
        || to_tsvector('simple', translate(left(coalesce(body_text, ''), 200000), '@.', '  '))
    ) STORED""",
    "CREATE INDEX ix_emails_search_vector ON emails USING gin (search_vector)",
    "DROP INDEX IF EXISTS ix_email_user_states_search",
    "DROP TRIGGER IF EXISTS emails_search_changed ON emails",
    "DROP TRIGGER IF EXISTS email_user_states_search ON email_user_states",
    "DROP FUNCTION IF EXISTS crm_email_search_changed()",
    "DROP FUNCTION IF EXISTS crm_state_search_vector()",
    "ALTER TABLE email_user_states DROP COLUMN IF EXISTS search_vector",
    "DROP FUNCTION IF EXISTS crm_mail_search_vector(text, text, text)",
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        for sql in PG_UP:
            op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for sql in PG_DOWN:
            op.execute(sql)

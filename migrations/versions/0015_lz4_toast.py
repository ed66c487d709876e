"""PostgreSQL: the large columns compressed with lz4 instead of pglz (issue 14)

Raw mail, attachments and bodies are stored out of line (TOAST), compressed with pglz unless told
otherwise. pglz is slow: storing 91 MB of generated mail into `blobs` took 2.75 s with pglz and
0.57 s with lz4, for about the same size (pglz gains almost nothing on base64 attachments). New
values are compressed with lz4; existing ones stay as they are and stay readable. A server built
without lz4 keeps pglz (nothing changes). SQLite has nothing of the kind.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COLUMNS = (
    ("blobs", "data"),
    ("emails", "body_text"),
    ("emails", "body_html"),
    ("emails", "search_vector"),
    ("email_user_states", "search_vector"),
)


def _has_lz4(bind) -> bool:
    enumvals = bind.exec_driver_sql(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
    ).scalar()
    return "lz4" in (enumvals or [])


def _set(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _has_lz4(bind):
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade():
    _set("lz4")


def downgrade():
    _set("pglz")

"""users.mail_as_conversations: the mail lists show one row per conversation

Off for everyone (one row per mail, as before); each user switches it in Preferences.

Added and dropped in place (ALTER TABLE ... ADD / DROP COLUMN, SQLite 3.35+), never through a
batch rebuild: SQLite rebuilds a table by dropping it, and with foreign keys on, dropping
`users` cascades to every mail state, folder and mail account.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "users",
        sa.Column("mail_as_conversations", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade():
    op.drop_column("users", "mail_as_conversations")

"""Our own mail: deleted_messages, the identities of mail deleted for everyone, per account

An account's import skips the identities listed for it, so mail deleted for everyone is not
fetched again (not by the next sync, not after "Reset fetch state").

A new table only; nothing is rebuilt (on SQLite a batch rebuild drops the table, and with foreign
keys on that cascades).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "deleted_messages",
        sa.Column(
            "mail_account_id",
            sa.Integer(),
            sa.ForeignKey("mail_accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("identity", sa.String(512), primary_key=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
    )


def downgrade():
    op.drop_table("deleted_messages")

"""email_addresses.subscribed_again_at: when an address subscribed again after an opt-out

The subscribe-again button of the unsubscribe page set `opted_out` back and kept no time, so
the mass mail log could only say "unsubscribed <date>, then subscribed again". Addresses that
subscribed again before this migration keep no date (NULL) and the log words them as before.

Added and dropped in place (ALTER TABLE ... ADD / DROP COLUMN), never through a batch rebuild:
on SQLite a rebuild drops the table, and with foreign keys on that cascades to the address links.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("email_addresses", sa.Column("subscribed_again_at", sa.DateTime(), nullable=True))


def downgrade():
    op.drop_column("email_addresses", "subscribed_again_at")

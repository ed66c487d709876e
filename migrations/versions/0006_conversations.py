"""users.mail_as_conversations: the mail lists show one row per conversation

Off for everyone (one row per mail, as before); each user switches it in Preferences.

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
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "mail_as_conversations", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("mail_as_conversations")

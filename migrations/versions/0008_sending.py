"""Sending: SMTP settings on mail accounts, the outbox and its recipients, reply preference

Columns are added and dropped in place (ALTER TABLE ... ADD / DROP COLUMN), never through a
batch rebuild: on SQLite a rebuild drops the table, and with foreign keys on that cascades.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACCOUNT_COLUMNS = (
    sa.Column("smtp_host", sa.String(255), nullable=False, server_default=""),
    sa.Column("smtp_port", sa.Integer(), nullable=False, server_default="587"),
    sa.Column("smtp_security", sa.String(10), nullable=False, server_default="starttls"),
    sa.Column("smtp_auth", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("smtp_login", sa.String(320), nullable=False, server_default=""),
    sa.Column("smtp_password_enc", sa.LargeBinary(), nullable=True),
    sa.Column("store_sent", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("sent_folder", sa.String(255), nullable=False, server_default="Sent"),
    sa.Column("auto_reply", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("auto_reply_subject", sa.String(255), nullable=False, server_default=""),
    sa.Column("auto_reply_text", sa.Text(), nullable=False, server_default=""),
)


def upgrade():
    for column in ACCOUNT_COLUMNS:
        op.add_column("mail_accounts", column)
    op.add_column(
        "users",
        sa.Column("reply_all_default", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "email_id",
            sa.Integer(),
            sa.ForeignKey("emails.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column(
            "mail_account_id", sa.Integer(), sa.ForeignKey("mail_accounts.id", ondelete="SET NULL")
        ),
        sa.Column("from_address", sa.String(320), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("claim", sa.String(32)),
        sa.Column("last_code", sa.Integer()),
        sa.Column("last_reply", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "due_at"])
    op.create_index("ix_outbox_user_id", "outbox", ["user_id"])
    op.create_index("ix_outbox_mail_account_id", "outbox", ["mail_account_id"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_table(
        "outbox_recipients",
        sa.Column(
            "entry_id",
            sa.Integer(),
            sa.ForeignKey("outbox.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("code", sa.Integer()),
        sa.Column("reply", sa.Text(), nullable=False),
    )


def downgrade():
    op.drop_table("outbox_recipients")
    op.drop_index("ix_outbox_created_at", "outbox")
    op.drop_index("ix_outbox_mail_account_id", "outbox")
    op.drop_index("ix_outbox_user_id", "outbox")
    op.drop_index("ix_outbox_due", "outbox")
    op.drop_table("outbox")
    op.drop_column("users", "reply_all_default")
    for column in reversed(ACCOUNT_COLUMNS):
        op.drop_column("mail_accounts", column.name)

"""Delivery reports: bounces and delay warnings linked to the mail they report on

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "delivery_reports",
        sa.Column(
            "email_id",
            sa.Integer(),
            sa.ForeignKey("emails.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("original_message_id", sa.String(998)),
        sa.Column(
            "original_email_id", sa.Integer(), sa.ForeignKey("emails.id", ondelete="SET NULL")
        ),
        sa.Column("original_subject", sa.Text(), nullable=False),
        sa.Column("reporting_mta", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_delivery_reports_original_message_id", "delivery_reports", ["original_message_id"]
    )
    op.create_index(
        "ix_delivery_reports_original_email_id", "delivery_reports", ["original_email_id"]
    )
    op.create_table(
        "delivery_report_recipients",
        sa.Column(
            "report_id",
            sa.Integer(),
            sa.ForeignKey("delivery_reports.email_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("original_recipient", sa.String(320), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("remote_mta", sa.String(255), nullable=False),
    )


def downgrade():
    op.drop_table("delivery_report_recipients")
    op.drop_index("ix_delivery_reports_original_email_id", "delivery_reports")
    op.drop_index("ix_delivery_reports_original_message_id", "delivery_reports")
    op.drop_table("delivery_reports")

"""E-mail templates (issue 13): name, subject, body, category, one-off, sharing

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "email_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_html", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("one_off", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("is_shared", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_email_templates_name", "email_templates", ["name"])
    op.create_index("ix_email_templates_category", "email_templates", ["category"])
    op.create_index("ix_email_templates_owner_id", "email_templates", ["owner_id"])
    op.create_table(
        "email_template_teams",
        sa.Column(
            "template_id",
            sa.Integer(),
            sa.ForeignKey("email_templates.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_table(
        "email_template_attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "template_id",
            sa.Integer(),
            sa.ForeignKey("email_templates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(500), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_email_template_attachments_template_id",
        "email_template_attachments",
        ["template_id"],
    )


def downgrade():
    op.drop_index("ix_email_template_attachments_template_id", "email_template_attachments")
    op.drop_table("email_template_attachments")
    op.drop_table("email_template_teams")
    op.drop_index("ix_email_templates_owner_id", "email_templates")
    op.drop_index("ix_email_templates_category", "email_templates")
    op.drop_index("ix_email_templates_name", "email_templates")
    op.drop_table("email_templates")

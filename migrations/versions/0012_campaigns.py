"""Target lists, mass mail and opt-out / opt-in (issue 13)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _fk(target: str, ondelete: str):
    return sa.ForeignKey(target, ondelete=ondelete)


def upgrade():
    op.create_table(
        "target_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("requires_opt_in", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), _fk("users.id", "SET NULL")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_target_lists_owner_id", "target_lists", ["owner_id"])
    op.create_table(
        "target_list_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("list_id", sa.Integer(), _fk("target_lists.id", "CASCADE"), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("list_id", "entity_type", "entity_id"),
    )
    op.create_index(
        "ix_target_list_members_entity", "target_list_members", ["entity_type", "entity_id"]
    )
    op.create_table(
        "mass_mails",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("template_id", sa.Integer(), _fk("email_templates.id", "SET NULL")),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_html", sa.Boolean(), nullable=False),
        sa.Column("mail_account_id", sa.Integer(), _fk("mail_accounts.id", "SET NULL")),
        sa.Column("from_name", sa.String(320), nullable=False),
        sa.Column("start_at", sa.DateTime()),
        sa.Column("per_hour", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("next_batch_at", sa.DateTime()),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), _fk("users.id", "SET NULL")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
    )
    op.create_index("ix_mass_mails_created_by_id", "mass_mails", ["created_by_id"])
    op.create_table(
        "mass_mail_lists",
        sa.Column("mass_mail_id", sa.Integer(), _fk("mass_mails.id", "CASCADE"), primary_key=True),
        sa.Column("list_id", sa.Integer(), _fk("target_lists.id", "CASCADE"), primary_key=True),
        sa.Column("excluded", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "mass_mail_recipients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mass_mail_id", sa.Integer(), _fk("mass_mails.id", "CASCADE"), nullable=False),
        sa.Column("address_id", sa.Integer(), _fk("email_addresses.id", "CASCADE"), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("email_id", sa.Integer(), _fk("emails.id", "SET NULL")),
        sa.Column("queued_at", sa.DateTime()),
        sa.Column("opted_out_at", sa.DateTime()),
        sa.UniqueConstraint("mass_mail_id", "address_id"),
    )
    op.create_index(
        "ix_mass_mail_recipients_state", "mass_mail_recipients", ["mass_mail_id", "status", "id"]
    )
    op.create_index("ix_mass_mail_recipients_email_id", "mass_mail_recipients", ["email_id"])
    op.create_table(
        "address_confirmations",
        sa.Column(
            "address_id", sa.Integer(), _fk("email_addresses.id", "CASCADE"), primary_key=True
        ),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.Column("mass_mail_id", sa.Integer(), _fk("mass_mails.id", "SET NULL")),
    )


def downgrade():
    op.drop_table("address_confirmations")
    op.drop_index("ix_mass_mail_recipients_email_id", "mass_mail_recipients")
    op.drop_index("ix_mass_mail_recipients_state", "mass_mail_recipients")
    op.drop_table("mass_mail_recipients")
    op.drop_table("mass_mail_lists")
    op.drop_index("ix_mass_mails_created_by_id", "mass_mails")
    op.drop_table("mass_mails")
    op.drop_index("ix_target_list_members_entity", "target_list_members")
    op.drop_table("target_list_members")
    op.drop_index("ix_target_lists_owner_id", "target_lists")
    op.drop_table("target_lists")

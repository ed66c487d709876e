"""mail_accounts.case_last_assignee_id: the round-robin turn of email-to-case, on the account

It was kept in the settings table under generated keys (`case_round_robin:<account id>`); the
turn belongs to the account, and a column goes away with it. The stored turns are carried over.

Added and dropped in place (ALTER TABLE ... ADD / DROP COLUMN), never through a batch rebuild:
on SQLite a rebuild drops the table, and with foreign keys on that cascades to its mail.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PREFIX = "case_round_robin:"
settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.JSON))
accounts = sa.table(
    "mail_accounts", sa.column("id", sa.Integer), sa.column("case_last_assignee_id", sa.Integer)
)


def upgrade():
    op.add_column("mail_accounts", sa.Column("case_last_assignee_id", sa.Integer(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(settings.c.key, settings.c.value).where(settings.c.key.like(PREFIX + "%"))
    ).all()
    for key, value in rows:
        account_id = key[len(PREFIX) :]
        if account_id.isdigit() and isinstance(value, int):
            bind.execute(
                accounts.update()
                .where(accounts.c.id == int(account_id))
                .values(case_last_assignee_id=value)
            )
    bind.execute(settings.delete().where(settings.c.key.like(PREFIX + "%")))


def downgrade():
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(accounts.c.id, accounts.c.case_last_assignee_id).where(
            accounts.c.case_last_assignee_id.is_not(None)
        )
    ).all()
    for account_id, last in rows:
        bind.execute(settings.insert().values(key=f"{PREFIX}{account_id}", value=last))
    op.drop_column("mail_accounts", "case_last_assignee_id")

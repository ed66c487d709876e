"""OAuth2 (XOAUTH2) accounts and provider settings (issue 15)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


COLUMNS = (
    ("auth_method", lambda: sa.Column(
        "auth_method", sa.String(10), nullable=False, server_default="password")),
    ("oauth_provider", lambda: sa.Column("oauth_provider", sa.String(20))),
    ("oauth_access_token_enc", lambda: sa.Column("oauth_access_token_enc", sa.LargeBinary())),
    ("oauth_refresh_token_enc", lambda: sa.Column("oauth_refresh_token_enc", sa.LargeBinary())),
    ("oauth_expires_at", lambda: sa.Column("oauth_expires_at", sa.DateTime())),
    ("oauth_refresh_claim", lambda: sa.Column("oauth_refresh_claim", sa.String(32))),
    ("oauth_refresh_claimed_at", lambda: sa.Column("oauth_refresh_claimed_at", sa.DateTime())),
    ("oauth_reauth_reason", lambda: sa.Column("oauth_reauth_reason", sa.Text())),
    ("oauth_reauth_since", lambda: sa.Column("oauth_reauth_since", sa.DateTime())),
)  # fmt: skip


def upgrade():
    for _name, column in COLUMNS:
        op.add_column("mail_accounts", column())


def downgrade():
    for name, _column in reversed(COLUMNS):
        op.drop_column("mail_accounts", name)

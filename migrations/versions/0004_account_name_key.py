"""accounts.name_key, and the accounts the CSV import duplicated merged into one

SQLite's lower() folds ASCII only, so the import's case-insensitive name lookup never found
"Électricité du Rhône SA" or "АО «Волга-Пром»" again and made a new account per CSV row. Names
are now compared through `name_key` (computed in Python, the same on both databases).

Accounts with the same key, owner and team are merged into the oldest: contacts, leads,
opportunities, cases, mail (its derived account and its parent), tasks, attachments and
addresses move to it, and it takes the copies' website, phone and description where its own
are empty. Accounts of different owners or teams are left apart: they may be different
customers of the same name, and moving one team's records onto another's would hide them.

Revision ID: 0004
Revises: 0003
"""

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The same function as crm.models.records.name_key, frozen here: a migration must keep
# doing what it did when it was written.


def _name_key(name: str | None) -> str:
    return " ".join(unicodedata.normalize("NFKC", name or "").casefold().split())[:255]


# (table, column) holding an account id, and (table, type column, id column) holding a parent.
ACCOUNT_COLUMNS = [
    ("contacts", "account_id"),
    ("leads", "converted_account_id"),
    ("opportunities", "account_id"),
    ("cases", "account_id"),
    ("emails", "account_id"),
]
PARENT_COLUMNS = [
    ("emails", "parent_type", "parent_id"),
    ("tasks", "parent_type", "parent_id"),
    ("attachments", "parent_type", "parent_id"),
]
FILLED_FROM_COPIES = ("website", "phone", "description")


def upgrade():
    # In place, never through a batch rebuild: SQLite rebuilds a table by dropping it, and
    # with foreign keys on, dropping `accounts` would clear every contact's and mail's account.
    op.add_column(
        "accounts", sa.Column("name_key", sa.String(255), nullable=False, server_default="")
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, name, assigned_user_id, team_id, website, phone, description "
            "FROM accounts ORDER BY id"
        )
    ).mappings()
    groups = defaultdict(list)
    for row in rows:
        key = _name_key(row["name"])
        conn.execute(
            sa.text("UPDATE accounts SET name_key = :key WHERE id = :id"),
            {"key": key, "id": row["id"]},
        )
        groups[(key, row["assigned_user_id"], row["team_id"])].append(dict(row))
    for accounts in groups.values():
        if len(accounts) > 1:
            _merge(conn, accounts[0], accounts[1:])
    op.create_index("ix_accounts_name_key", "accounts", ["name_key"])


def _merge(conn, keeper: dict, copies: list[dict]) -> None:
    ids = [c["id"] for c in copies]
    params = {"keep": keeper["id"], "ids": ids}
    for table, column in ACCOUNT_COLUMNS:
        conn.execute(
            sa.text(f"UPDATE {table} SET {column} = :keep WHERE {column} IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            params,
        )
    for table, type_column, id_column in PARENT_COLUMNS:
        conn.execute(
            sa.text(
                f"UPDATE {table} SET {id_column} = :keep "
                f"WHERE {type_column} = 'Account' AND {id_column} IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            params,
        )
    _merge_addresses(conn, keeper["id"], ids)
    filled = {
        field: next((c[field] for c in copies if c[field]), "")
        for field in FILLED_FROM_COPIES
        if not keeper[field]
    }
    if any(filled.values()):
        assignments = ", ".join(f"{field} = :{field}" for field in filled)
        conn.execute(
            sa.text(f"UPDATE accounts SET {assignments} WHERE id = :keep"),
            {**filled, "keep": keeper["id"]},
        )
    conn.execute(
        sa.text("DELETE FROM accounts WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)
        ),
        params,
    )


def _merge_addresses(conn, keep: int, ids: list[int]) -> None:
    """Addresses of the copies move to the keeper, once each; the keeper's primary stays."""
    links = conn.execute(
        sa.text(
            "SELECT id, address_id, entity_id, is_primary FROM email_address_links "
            "WHERE entity_type = 'Account' AND entity_id IN :ids ORDER BY entity_id, id"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"ids": [keep, *ids]},
    ).mappings()
    held, has_primary = set(), False
    for link in sorted(links, key=lambda r: r["entity_id"] != keep):
        if link["address_id"] in held:
            conn.execute(
                sa.text("DELETE FROM email_address_links WHERE id = :id"), {"id": link["id"]}
            )
            continue
        held.add(link["address_id"])
        primary = bool(link["is_primary"]) and not has_primary
        has_primary = has_primary or primary
        conn.execute(
            sa.text(
                "UPDATE email_address_links SET entity_id = :keep, is_primary = :primary "
                "WHERE id = :id"
            ),
            {"keep": keep, "primary": primary, "id": link["id"]},
        )


def downgrade():
    # Merged accounts stay merged: which copy held what is not kept.
    op.drop_index("ix_accounts_name_key", "accounts")
    op.drop_column("accounts", "name_key")

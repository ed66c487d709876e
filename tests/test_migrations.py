"""Migrations run up, down and up again on a fresh database of the chosen backend."""

from sqlalchemy import inspect

from crm.db import Base, make_engine
from crm.migrations import downgrade, upgrade
from tests.support.databases import create_database


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(tmp_path):
    url, drop = create_database(tmp_path)
    try:
        upgrade(url)
        assert set(Base.metadata.tables) <= _tables(url)
        downgrade(url, "base")
        assert _tables(url) <= {"alembic_version"}
        upgrade(url)
        assert set(Base.metadata.tables) <= _tables(url)
    finally:
        drop()


def test_migrations_match_the_models(database_url):
    """Every model change comes with its migration (alembic check finds nothing to add)."""
    from alembic import command

    from crm.migrations import alembic_config

    command.check(alembic_config(database_url))


# --- 0004: accounts the CSV import duplicated are merged ------------------------------------

NOW = "2026-01-01 00:00:00"


def _insert(conn, table: str, **values) -> None:
    from sqlalchemy import text

    columns = ", ".join(f'"{c}"' for c in values)
    marks = ", ".join(f":{c}" for c in values)
    conn.execute(text(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})'), values)


def _account(conn, id_, name, team=None, phone=""):
    _insert(
        conn, "accounts", id=id_, name=name, website="", phone=phone, description="",
        team_id=team, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def _seed_duplicates(conn) -> None:
    _insert(conn, "teams", id=1, name="South")
    _account(conn, 1, "Électricité du Rhône SA")
    _account(conn, 2, "ÉLECTRICITÉ DU RHÔNE SA", phone="+33 4 00 00 00")
    _account(conn, 3, "électricité  du rhône sa")
    _account(conn, 4, "Électricité du Rhône SA", team=1)  # another team's: stays apart
    _account(conn, 5, "АО «Волга-Пром»")
    _account(conn, 6, "ао «волга-пром»")
    person = {"title": "", "first_name": "Eva", "phone": "", "created_at": NOW, "updated_at": NOW}
    _insert(conn, "contacts", id=1, last_name="Nováková", account_id=2, description="", **person)
    _insert(conn, "contacts", id=2, last_name="Král", account_id=6, description="", **person)
    _insert(
        conn, "emails", id=1, identity="m1@x", references="[]", subject="Faktura", from_name="",
        body_text="", body_html="", snippet="", address_text="", status="Archived",
        has_attachments=False, is_auto_reply=False, is_bounce=False, size=0, problems="[]",
        created_at=NOW, parent_type="Account", parent_id=3, account_id=3,
    )  # fmt: skip
    _insert(
        conn, "tasks", id=1, name="Call back", status="Not Started", parent_type="Account",
        parent_id=2, created_at=NOW, updated_at=NOW, description="",
    )  # fmt: skip
    for id_, addr in ((1, "info@edr.example"), (2, "sales@edr.example")):
        _insert(conn, "email_addresses", id=id_, address=addr, lower=addr, opted_out=False,
                invalid=False)  # fmt: skip
    _insert(conn, "email_address_links", id=1, address_id=1, entity_type="Account", entity_id=1,
            is_primary=True)  # fmt: skip
    _insert(conn, "email_address_links", id=2, address_id=1, entity_type="Account", entity_id=2,
            is_primary=True)  # fmt: skip
    _insert(conn, "email_address_links", id=3, address_id=2, entity_type="Account", entity_id=3,
            is_primary=True)  # fmt: skip


def test_0004_merges_accounts_whose_names_differ_only_in_case(tmp_path):
    from sqlalchemy import text

    url, drop = create_database(tmp_path)
    engine = make_engine(url)
    try:
        upgrade(url, "0003")
        with engine.begin() as conn:
            _seed_duplicates(conn)
        upgrade(url, "0004")
        with engine.connect() as conn:
            accounts = dict(conn.execute(text("SELECT id, phone FROM accounts ORDER BY id")).all())
            assert accounts == {1: "+33 4 00 00 00", 4: "", 5: ""}
            contacts = conn.execute(text("SELECT id, account_id FROM contacts ORDER BY id")).all()
            assert [tuple(r) for r in contacts] == [(1, 1), (2, 5)]
            mail = conn.execute(text("SELECT parent_id, account_id FROM emails")).one()
            assert tuple(mail) == (1, 1)
            assert conn.scalar(text("SELECT parent_id FROM tasks")) == 1
            links = conn.execute(
                text(
                    "SELECT address_id, entity_id, is_primary FROM email_address_links "
                    "ORDER BY address_id"
                )
            ).all()
            assert [tuple(r) for r in links] == [(1, 1, True), (2, 1, False)]
            keys = conn.execute(text("SELECT name_key FROM accounts ORDER BY id")).scalars().all()
            assert keys == ["électricité du rhône sa"] * 2 + ["ао «волга-пром»"]
        downgrade(url, "0003")  # the column goes; the links to the accounts stay
        with engine.connect() as conn:
            contacts = conn.execute(text("SELECT id, account_id FROM contacts ORDER BY id")).all()
            assert [tuple(r) for r in contacts] == [(1, 1), (2, 5)]
            assert conn.execute(text("SELECT parent_id, account_id FROM emails")).one() == (1, 1)
    finally:
        engine.dispose()
        drop()


# --- 0006: users.mail_as_conversations ------------------------------------------------------


def test_0006_keeps_everything_that_hangs_off_users(tmp_path):
    """SQLite rebuilds a table by dropping it, and with foreign keys on that drop cascades: the
    column must be added in place, or every user's mail state, folders and accounts go."""
    from sqlalchemy import text

    url, drop = create_database(tmp_path)
    engine = make_engine(url)
    try:
        upgrade(url, "0005")
        with engine.begin() as conn:
            _insert(conn, "users", id=1, username="rep", name="", password_hash="", is_admin=False,
                    is_active=True, created_at=NOW, signature="", use_external_client=False,
                    time_zone="UTC", date_format="%Y-%m-%d", session_version=1)  # fmt: skip
            _insert(conn, "folders", id=1, name="Projects", user_id=1, is_group=False, position=0,
                    skip_notifications=False)  # fmt: skip
        counts = "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM folders)"
        upgrade(url, "0006")
        with engine.connect() as conn:
            assert tuple(conn.execute(text(counts)).one()) == (1, 1)
            assert conn.scalar(text("SELECT mail_as_conversations FROM users")) in (False, 0)
        downgrade(url, "0005")
        with engine.connect() as conn:
            assert tuple(conn.execute(text(counts)).one()) == (1, 1)
    finally:
        engine.dispose()
        drop()


# --- 0007: the round-robin turn moves from the settings table onto the account -------------


def test_0007_carries_the_round_robin_turn_over_and_back(tmp_path):
    from sqlalchemy import text

    url, drop = create_database(tmp_path)
    engine = make_engine(url)
    try:
        upgrade(url, "0006")
        with engine.begin() as conn:
            _insert(conn, "users", id=7, username="rep", name="", password_hash="", is_admin=False,
                    is_active=True, created_at=NOW, signature="", use_external_client=False,
                    time_zone="UTC", date_format="%Y-%m-%d", session_version=1,
                    mail_as_conversations=False)  # fmt: skip
            _insert(conn, "mail_accounts", id=3, is_group=True, name="Support",
                    email_address="support@example.com", imap_host="h", imap_port=143,
                    imap_security="none", imap_login="s", secret_scope="x",
                    monitored_folders="[]", folder_map="{}", is_active=True,
                    add_all_team_users=False, create_case=True, case_distribution="round-robin",
                    sync_state="idle", created_at=NOW)  # fmt: skip
            _insert(conn, "settings", key="case_round_robin:3", value="7")
            _insert(conn, "settings", key="b2c_mode", value="false")
        upgrade(url, "0007")
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT case_last_assignee_id FROM mail_accounts")) == 7
            assert conn.scalars(text("SELECT key FROM settings")).all() == ["b2c_mode"]
            assert conn.scalar(text("SELECT count(*) FROM users")) == 1
        downgrade(url, "0006")
        with engine.connect() as conn:
            keys = sorted(conn.scalars(text("SELECT key FROM settings")))
            assert keys == ["b2c_mode", "case_round_robin:3"]
            assert conn.scalar(text("SELECT count(*) FROM mail_accounts")) == 1
    finally:
        engine.dispose()
        drop()

"""Our own mail over Dovecot: Sent folders are sent mail, our accounts' addresses are ours, and
mail deleted for everyone stays deleted, also after "Reset fetch state" (issue 16)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm import settings
from crm.accounts.manage import connect, create_account, reset_fetch_state
from crm.mail.hosts import Endpoint
from crm.mail.imap import FolderInfo, ImapConnection, _folder_infos
from crm.mailbox import actions
from crm.models import (
    Case,
    DeletedMessage,
    Email,
    EmailLocation,
    EmailUserState,
    MailAccount,
    Notification,
    OutboxEntry,
    User,
)
from tests.support import records
from tests.support.dovecot import PASSWORD
from tests.support.mailboxes import LONG_AGO, fetch, make_account, raw_message


def _states(db, message_id: str) -> dict[int, tuple[bool, int | None]]:
    """user id -> (is_outgoing, folder id) of one mail."""
    db.rollback()  # a fresh snapshot (SQLite keeps showing the old one otherwise)
    rows = db.execute(
        select(EmailUserState.user_id, EmailUserState.is_outgoing, EmailUserState.folder_id)
        .join(Email, Email.id == EmailUserState.email_id)
        .where(Email.message_id == message_id)
    )
    return {user_id: (outgoing, folder_id) for user_id, outgoing, folder_id in rows}


def _status(db, message_id: str) -> str | None:
    db.rollback()
    return db.scalar(select(Email.status).where(Email.message_id == message_id))


def _new_mail_notes(db) -> list[Notification]:
    db.rollback()
    stmt = select(Notification).where(Notification.kind == "new_mail").order_by(Notification.id)
    return list(db.scalars(stmt))


def _notified_ids(db) -> set[int]:
    return {i for note in _new_mail_notes(db) for i in note.data.get("email_ids", [])}


def _email_id(db, message_id: str) -> int | None:
    db.rollback()
    return db.scalar(select(Email.id).where(Email.message_id == message_id))


# --- the \Sent special use, read from LIST ---------------------------------------------------


def _login(imap_server, box) -> ImapConnection:
    return ImapConnection(
        Endpoint(imap_server.host, imap_server.host, imap_server.port), "none", box, PASSWORD
    )


def test_the_test_server_marks_its_sent_folder_and_folders_stay_names(imap_server):
    box = imap_server.new_user()
    imap_server.append(box, raw_message(), folder="Archive")
    with _login(imap_server, box) as conn:
        infos = {f.name: f for f in conn.folder_list()}
        assert infos["Sent"].has("\\sent") and infos["Trash"].special_use == ("\\Trash",)
        assert infos["Archive"].special_use == ()
        assert conn.sent_folders() == ["Sent"]
        assert sorted(conn.folders()) == ["Archive", "INBOX", "Sent", "Trash"]


def test_special_use_is_asked_for_when_a_plain_list_does_not_show_it(imap_server, monkeypatch):
    """RFC 6154 lets a server leave the attributes out of a plain LIST: then LIST ... RETURN
    (SPECIAL-USE) is asked, and only of a server that announces SPECIAL-USE."""
    box = imap_server.new_user()
    with _login(imap_server, box) as conn:
        real_list = conn.client.list

        def plain_list(*args):
            typ, data = real_list(*args)
            return typ, [line.replace(b" \\Sent", b"").replace(b" \\Trash", b"") for line in data]

        monkeypatch.setattr(conn.client, "list", plain_list)
        assert conn.sent_folders() == ["Sent"]
        infos = {f.name: f for f in conn.folder_list()}
        assert infos["Sent"].flags == ("\\HasNoChildren", "\\Sent")
        conn._caps = {"IMAP4REV1"}  # a server without the extension is not asked
        assert conn.sent_folders() == []
        assert sorted(conn.folders()) == ["INBOX", "Sent", "Trash"]


def test_list_lines_with_quoted_and_literal_names():
    infos = _folder_infos(
        [
            b'(\\HasNoChildren \\Sent) "/" "Sent Items"',
            b'(\\HasNoChildren) "/" "back\\\\slash \\"q\\""',
            (b'(\\Sent) "." {9}', b"Odesl&AOE-no"),
            b"",
            b"(\\Noselect) NIL Parent",
            b"garbage",
        ]
    )
    assert infos == [
        FolderInfo("Sent Items", ("\\HasNoChildren", "\\Sent")),
        FolderInfo('back\\slash "q"', ("\\HasNoChildren",)),
        FolderInfo("Odesláno", ("\\Sent",)),
        FolderInfo("Parent", ("\\Noselect",)),
    ]
    assert not infos[-1].selectable


# --- 1. a monitored Sent folder is sent mail ---------------------------------------------------


def _alias_mail(message_id: str, subject: str = "Offer") -> bytes:
    """Sent by the owner from an alias that is not on their user record."""
    return raw_message(
        subject=subject,
        from_="Rep <rep.alias@other.example>",
        to="buyer@customer.example",
        message_id=f"<{message_id}>",
    )


def test_the_special_use_sent_folder_is_the_owners_sent_mail_whatever_the_alias(
    services, db, make_user, imap_server
):
    rep = make_user("rep", ["rep@example.com"])
    colleague = make_user("col", ["col@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, _alias_mail("alias@test.example"), folder="Sent")
    imap_server.append(
        box,
        raw_message(
            from_="Rep <rep.alias@other.example>",
            to="col@example.com",
            message_id="<to-colleague@test.example>",
        ),
        folder="Sent",
    )
    imap_server.append(box, raw_message(message_id="<in@test.example>"))
    # The account names another folder: the server's \Sent attribute alone makes Sent sent mail.
    account = make_account(
        services, rep, imap_server, box, folders=("INBOX", "Sent"), sent_folder="Outgoing"
    )
    assert fetch(services, account).imported == 3
    assert _states(db, "alias@test.example") == {rep: (True, None)}
    assert _status(db, "alias@test.example") == "Archived"
    # The colleague it was written to received it; for the owner it is sent mail.
    assert _states(db, "to-colleague@test.example") == {rep: (True, None), colleague: (False, None)}
    assert _states(db, "in@test.example") == {rep: (False, None)}
    # Only received mail notifies.
    notified = _notified_ids(db)
    assert _email_id(db, "in@test.example") in notified
    assert _email_id(db, "alias@test.example") not in notified


def test_a_sent_folder_chosen_by_hand_is_sent_mail_and_other_folders_are_not(
    services, db, make_user, imap_server
):
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, _alias_mail("by-hand@test.example"), folder="Gesendet")
    imap_server.append(box, _alias_mail("archived@test.example"), folder="Archive")
    imap_server.append(
        box,
        raw_message(from_="Rep <REP@example.com>", message_id="<own@test.example>"),
        folder="Archive",
    )
    account = make_account(
        services,
        rep,
        imap_server,
        box,
        folders=("INBOX", "Gesendet", "Archive"),
        sent_folder="Gesendet",
    )
    assert fetch(services, account).imported == 3
    assert _states(db, "by-hand@test.example") == {rep: (True, None)}
    assert _status(db, "by-hand@test.example") == "Archived"
    # An alias in another folder is received mail; the user's own address is sent mail anywhere.
    assert _states(db, "archived@test.example") == {rep: (False, None)}
    assert _states(db, "own@test.example") == {rep: (True, None)}


def test_a_group_accounts_sent_folder_opens_no_case(services, db, make_user, imap_server):
    a, b = make_user("a"), make_user("b")
    team = records.team_of(db, "Support", [a, b])
    db.commit()
    box = imap_server.new_user()
    imap_server.append(box, _alias_mail("group-sent@test.example"), folder="Sent")
    account = make_account(
        services, a, imap_server, box, folders=("Sent",), is_group=True,
        email="support@example.com", team_ids=[team.id], add_all_team_users=True,
        create_case=True, case_distribution="round-robin", case_team_id=team.id,
    )  # fmt: skip
    assert fetch(services, account).imported == 1
    assert _states(db, "group-sent@test.example") == {a: (True, None), b: (True, None)}
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    assert _new_mail_notes(db) == []


# --- 2. a group account's own address is ours ------------------------------------------------


@pytest.fixture
def support(services, db, make_user, imap_server):
    """A group account of a three-member team, every member receiving its mail, email-to-case
    by round-robin and an auto-reply: (imap user, account id, member ids)."""
    members = [make_user(n, [f"{n}@example.com"]) for n in ("ann", "ben", "cid")]
    team = records.team_of(db, "Support", members)
    db.commit()
    box = imap_server.new_user()
    account = make_account(
        services, members[0], imap_server, box, is_group=True, email="support@example.com",
        name="ACME Support", team_ids=[team.id], add_all_team_users=True, create_case=True,
        case_distribution="round-robin", case_team_id=team.id, auto_reply=True,
        smtp_host="smtp.example.com", smtp_port=25, smtp_security="none", smtp_auth=False,
    )  # fmt: skip
    return box, account, members


def _system_account(services, address="crm@example.com") -> int:
    with services.session() as session:
        system = create_account(
            session, services.secret_box, user_id=None, email=address, host="", port=993,
            security="ssl", login="", password="", name="CRM",
            smtp={"smtp_host": "smtp.example.com", "smtp_port": 25, "smtp_security": "none"},
        )  # fmt: skip
        settings.put(session, "system_smtp_account_id", system.id)
        return system.id


def test_mail_from_the_groups_own_address_is_its_sent_mail_and_opens_no_case(
    services, db, imap_server, support
):
    box, account, members = support
    _system_account(services)
    imap_server.append(
        box,
        raw_message(
            subject="Your order",
            from_="ACME Support <Support@Example.com>",
            to="buyer@customer.example",
            headers={"Bcc": "support@example.com"},
            message_id="<own-copy@test.example>",
        ),
    )
    imap_server.append(
        box,
        raw_message(
            subject="Test from the CRM",
            from_="CRM <crm@example.com>",
            to="support@example.com",
            message_id="<system@test.example>",
        ),
    )
    imap_server.append(
        box,
        raw_message(
            subject="Printer broken",
            to="support@example.com",
            message_id="<customer@test.example>",
        ),
    )
    assert fetch(services, account).imported == 3
    # Only the customer's mail opened a case and got an auto-reply queued.
    cases = list(db.scalars(select(Case)))
    assert [c.name for c in cases] == ["Printer broken"]
    assert db.scalar(select(func.count()).select_from(OutboxEntry)) == 1
    for message_id in ("own-copy@test.example", "system@test.example"):
        email = db.scalars(select(Email).where(Email.message_id == message_id)).one()
        assert email.parent_type is None and email.status == "Archived"
    # The group's own copy is the team's sent mail, not three Inboxes; nobody is told about it.
    assert _states(db, "own-copy@test.example") == {m: (True, None) for m in members}
    # The system account's mail is ours (no case) but it was written to the group: received.
    assert _states(db, "system@test.example") == {m: (False, None) for m in members}
    notified = _notified_ids(db)
    assert _email_id(db, "own-copy@test.example") not in notified
    assert _email_id(db, "customer@test.example") in notified


def test_the_groups_answer_joins_its_case_as_sent_mail(services, db, imap_server, support):
    box, account, members = support
    imap_server.append(
        box,
        raw_message(
            subject="Printer broken", to="support@example.com", message_id="<ask@test.example>"
        ),
    )
    fetch(services, account)
    case = db.scalars(select(Case)).one()
    imap_server.append(
        box,
        raw_message(
            subject=f"Re: Printer broken [#{case.number}]",
            from_="support@example.com",
            to="sam@customer.example",
            in_reply_to="<ask@test.example>",
            message_id="<answer@test.example>",
        ),
    )
    fetch(services, account)
    db.rollback()
    answer = db.scalars(select(Email).where(Email.message_id == "answer@test.example")).one()
    assert (answer.parent_type, answer.parent_id) == ("Case", case.id)
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    assert db.scalar(select(func.count()).select_from(OutboxEntry)) == 1  # the first mail's
    assert _states(db, "answer@test.example") == {m: (True, None) for m in members}


def test_another_group_accounts_address_is_ours_too(services, db, make_user, imap_server, support):
    """Sales writes to Support: no case at Support, Support's team received it, and it is the
    sent mail of Sales' receiver."""
    box, account, members = support
    seller = make_user("seller", ["seller@example.com"])
    make_account(
        services, seller, imap_server, imap_server.new_user(), is_group=True,
        email="sales@example.com", name="Sales",
    )  # fmt: skip
    imap_server.append(
        box,
        raw_message(
            subject="Customer handover",
            from_="Sales <sales@example.com>",
            to="support@example.com",
            message_id="<handover@test.example>",
        ),
    )
    fetch(services, account)
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    assert _states(db, "handover@test.example") == {
        **{m: (False, None) for m in members},
        seller: (True, None),
    }


# --- 3. deleted mail stays deleted -----------------------------------------------------------


def _delete_for_everyone(services, email_ids: list[int]) -> None:
    with services.session() as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        actions.apply(session, admin, "delete", email_ids)


def _reset(services, account_id: int, folder: str = "INBOX", since: date = LONG_AGO) -> None:
    with services.session() as session:
        reset_fetch_state(session, session.get(MailAccount, account_id), folder, since)


def test_delete_then_reset_keeps_it_deleted_and_tells_nobody_about_old_mail(
    services, db, make_user, imap_server
):
    make_user("admin", ["admin@example.com"], admin=True)
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    # Written today, but on the server since long before the account's "fetch since".
    long_ago = (datetime.now(UTC) - timedelta(days=40)).timestamp()
    imap_server.append(box, raw_message(message_id="<older@test.example>"), date=long_ago)
    imap_server.append(box, raw_message(message_id="<keep@test.example>"))
    imap_server.append(box, raw_message(message_id="<gone@test.example>"))
    account = make_account(services, rep, imap_server, box, since=date.today() - timedelta(days=7))
    assert fetch(services, account).imported == 2
    notes_before = len(_new_mail_notes(db))
    assert notes_before == 1
    gone = _email_id(db, "gone@test.example")
    _delete_for_everyone(services, [gone])
    db.rollback()
    assert db.scalars(select(DeletedMessage.identity)).all() == ["gone@test.example"]
    _reset(services, account)
    summary = fetch(services, account)
    # The deleted mail is skipped, the older one is read for the first time, quietly.
    assert (summary.imported, summary.skipped, summary.error) == (1, 1, None)
    assert _email_id(db, "gone@test.example") is None
    assert _states(db, "older@test.example") == {rep: (False, None)}
    assert len(_new_mail_notes(db)) == notes_before
    # Reset again, from a later date: still deleted, still quiet.
    _reset(services, account, since=date.today() - timedelta(days=1))
    assert fetch(services, account).imported == 0
    assert _email_id(db, "gone@test.example") is None
    assert len(_new_mail_notes(db)) == notes_before
    # Mail that arrives after the reset is new mail and notifies as ever.
    imap_server.append(box, raw_message(message_id="<fresh@test.example>"))
    assert fetch(services, account).imported == 1
    latest = _new_mail_notes(db)[-1]
    assert (latest.text, latest.data["email_id"]) == (
        "1 new mail",
        _email_id(db, "fresh@test.example"),
    )


def test_deleted_stays_deleted_for_every_account_that_had_it_only(
    services, db, make_user, imap_server
):
    make_user("admin", ["admin@example.com"], admin=True)
    ann = make_user("ann", ["ann@example.com"])
    bob = make_user("bob", ["bob@example.com"])
    carol = make_user("carol", ["carol@example.com"])
    raw = raw_message(to="ann@example.com, bob@example.com", message_id="<shared@test.example>")
    boxes = [imap_server.new_user() for _ in range(3)]
    for box in boxes[:2]:
        imap_server.append(box, raw)
        imap_server.append(box, raw, folder="Archive")
    ann_account = make_account(services, ann, imap_server, boxes[0], folders=("INBOX", "Archive"))
    bob_account = make_account(services, bob, imap_server, boxes[1])
    fetch(services, ann_account)
    fetch(services, bob_account)
    _delete_for_everyone(services, [_email_id(db, "shared@test.example")])
    db.rollback()
    pairs = set(db.execute(select(DeletedMessage.mail_account_id, DeletedMessage.identity)))
    assert pairs == {(ann_account, "shared@test.example"), (bob_account, "shared@test.example")}
    for account, folders in ((ann_account, ("INBOX", "Archive")), (bob_account, ("INBOX",))):
        for folder in folders:
            _reset(services, account, folder)
        assert fetch(services, account).imported == 0
    assert _email_id(db, "shared@test.example") is None
    # An account that never had it imports it as any other mail.
    imap_server.append(boxes[2], raw)
    carol_account = make_account(services, carol, imap_server, boxes[2])
    assert fetch(services, carol_account).imported == 1
    assert carol in _states(db, "shared@test.example")


def test_mail_sent_through_the_crm_and_deleted_is_not_fetched_from_sent(
    services, db, make_user, imap_server
):
    """The sending account had it too (its copy in Sent is fetched later)."""
    make_user("admin", ["admin@example.com"], admin=True)
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    account = make_account(services, rep, imap_server, box, folders=("INBOX", "Sent"))
    raw = raw_message(from_="rep@example.com", message_id="<via-crm@test.example>")
    with services.session() as session:
        email = Email(identity="via-crm@test.example", message_id="via-crm@test.example",
                      subject="Hello", status="Sent")  # fmt: skip
        session.add(email)
        session.flush()
        session.add(OutboxEntry(email_id=email.id, user_id=rep, mail_account_id=account,
                                from_address="rep@example.com", state="sent"))  # fmt: skip
        email_id = email.id
    _delete_for_everyone(services, [email_id])
    imap_server.append(box, raw, folder="Sent")
    summary = fetch(services, account)
    assert (summary.imported, summary.skipped) == (0, 1)
    assert _email_id(db, "via-crm@test.example") is None
    assert db.scalar(select(func.count()).select_from(EmailLocation)) == 0


def test_sync_reads_the_sent_folders_from_the_server(services, db, make_user, imap_server):
    """The account's Sent folders are what the server marks plus what the account names."""
    from crm.inbound.sync import sent_folders

    box = imap_server.new_user()
    account_id = make_account(services, make_user("rep"), imap_server, box, sent_folder=" Mine ")
    with services.session() as session:
        account = session.get(MailAccount, account_id)
        with connect(account, services.secret_box, {"127.0.0.1:*"}) as conn:
            assert sent_folders(conn, account) == {"Sent", "Mine"}
            account.sent_folder = ""
            assert sent_folders(conn, account) == {"Sent"}

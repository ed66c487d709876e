"""Filters through real imports from Dovecot: not imported, imported to Trash, moved, shared."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from crm.mail.imap import ImapConnection
from crm.mailbox import folders
from crm.models import Email, EmailFilter, EmailLocation, EmailUserState, Notification, User
from tests.support.mailboxes import fetch, make_account, raw_message

NO_BODY = {"body_any": [], "body_all": []}


def add_filter(services, **fields) -> int:
    with services.session() as session:
        row = EmailFilter(**(NO_BODY | fields))
        session.add(row)
        session.flush()
        return row.id


def make_folder(services, user_id, name, **kwargs) -> int:
    with services.session() as session:
        return folders.create_folder(session, user_id, name, **kwargs).id


def subjects(db, **where) -> list[str]:
    db.rollback()  # a fresh snapshot: the sync committed in its own session
    stmt = select(Email.subject).join(EmailUserState, EmailUserState.email_id == Email.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(EmailUserState, key) == value)
    return sorted(db.scalars(stmt))


def all_subjects(db) -> list[str]:
    db.rollback()
    return sorted(db.scalars(select(Email.subject)))


def notified(db, user_id) -> int:
    """How many mails the user was told about."""
    db.rollback()
    stmt = select(Notification).where(
        Notification.user_id == user_id, Notification.kind == "new_mail"
    )
    return sum(note.data.get("count", 0) for note in db.scalars(stmt))


@pytest.fixture
def rep(make_user):
    return make_user("rep", ["rep@example.com"])


def mailbox(imap_server, *messages) -> str:
    box = imap_server.new_user()
    for subject, sender, body in messages:
        imap_server.append(box, raw_message(subject=subject, from_=sender, body=body))
    return box


def test_global_ignore_filter_keeps_mail_out_of_every_account(
    services, db, rep, make_user, imap_server
):
    ann = make_user("ann", ["ann@example.com"])
    add_filter(services, scope="global", from_pattern="*@SPAM.example")
    for user_id in (rep, ann):
        box = mailbox(
            imap_server,
            ("Cheap pills", "x@spam.example", "buy"),
            ("Meeting", "boss@corp.example", "at 10"),
        )
        summary = fetch(services, make_account(services, user_id, imap_server, box))
        assert (summary.imported, summary.skipped) == (1, 1)
    assert all_subjects(db) == ["Meeting", "Meeting"]


def test_global_body_filter_is_decided_after_the_body_is_downloaded(services, db, rep, imap_server):
    add_filter(services, scope="global", subject_pattern="offer*", body_all=["unsubscribe"])
    box = mailbox(
        imap_server,
        ("Offer 1", "a@shop.example", "Great deals. Unsubscribe here."),
        ("Offer 2", "a@shop.example", "Your order has shipped."),
    )
    fetch(services, make_account(services, rep, imap_server, box))
    assert all_subjects(db) == ["Offer 2"]


def test_account_ignore_filter_applies_to_that_account_only(services, db, rep, imap_server):
    message = raw_message(
        subject="Newsletter", from_="news@list.example", message_id="<news-1@list.example>"
    )
    boxes = [imap_server.new_user(), imap_server.new_user()]
    for box in boxes:
        imap_server.append(box, message)
    filtered, plain = (make_account(services, rep, imap_server, box) for box in boxes)
    add_filter(services, scope="account", mail_account_id=filtered, subject_pattern="NEWS*")
    assert fetch(services, filtered).skipped == 1
    assert all_subjects(db) == []
    assert fetch(services, plain).imported == 1
    db.rollback()
    assert [loc.mail_account_id for loc in db.scalars(select(EmailLocation))] == [plain]


def test_inbox_ignore_filter_imports_to_trash_without_notifying(
    services, db, rep, make_user, imap_server
):
    ann = make_user("ann", ["ann@example.com"])
    add_filter(services, scope="inbox", user_id=rep, from_pattern="*@noisy.example")
    box = imap_server.new_user()
    imap_server.append(
        box,
        raw_message(
            subject="Noise", from_="bot@noisy.example", to="rep@example.com, ann@example.com"
        ),
    )
    imap_server.append(box, raw_message(subject="Real", from_="c@customer.example"))
    fetch(services, make_account(services, rep, imap_server, box))
    assert subjects(db, user_id=rep, in_trash=True) == ["Noise"]
    assert subjects(db, user_id=rep, in_trash=False) == ["Real"]
    assert subjects(db, user_id=ann, in_trash=False) == ["Noise"]  # her filters, not his
    assert notified(db, rep) == 1 and notified(db, ann) == 1


def test_inbox_move_filter_files_marks_read_and_skips_notification(services, db, rep, imap_server):
    receipts = make_folder(services, rep, "Receipts")
    add_filter(
        services,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=receipts,
        subject_pattern="*receipt*",
        mark_read=True,
        skip_notification=True,
    )
    box = mailbox(
        imap_server,
        ("Your RECEIPT #1", "shop@shop.example", "thanks"),
        ("Question", "c@customer.example", "hi"),
    )
    fetch(services, make_account(services, rep, imap_server, box))
    assert subjects(db, user_id=rep, folder_id=receipts, is_read=True) == ["Your RECEIPT #1"]
    assert subjects(db, user_id=rep, folder_id=None) == ["Question"]
    assert notified(db, rep) == 1


def test_mail_filed_in_a_skip_notifications_folder_notifies_nobody(services, db, rep, imap_server):
    quiet = make_folder(services, rep, "Quiet", skip_notifications=True)
    add_filter(
        services,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=quiet,
        from_pattern="*@updates.example",
    )
    box = mailbox(
        imap_server,
        ("Update", "a@updates.example", "x"),
        ("Other update", "b@updates.example", "y"),
    )
    fetch(services, make_account(services, rep, imap_server, box))
    assert subjects(db, user_id=rep, folder_id=quiet, is_read=False) == ["Other update", "Update"]
    assert notified(db, rep) == 0


def test_ignore_beats_move_whatever_the_priority(services, db, rep, imap_server):
    folder = make_folder(services, rep, "Customers")
    add_filter(
        services,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=folder,
        priority=-10,
        from_pattern="*@customer.example",
    )
    add_filter(
        services,
        scope="inbox",
        user_id=rep,
        action="ignore",
        priority=10,
        subject_pattern="*unsubscribe*",
    )
    box = mailbox(
        imap_server,
        ("Please unsubscribe me", "c@customer.example", "x"),
        ("Order", "c@customer.example", "y"),
    )
    fetch(services, make_account(services, rep, imap_server, box))
    assert subjects(db, user_id=rep, in_trash=True) == ["Please unsubscribe me"]
    assert subjects(db, user_id=rep, folder_id=folder, in_trash=False) == ["Order"]


def test_group_account_move_filter_shares_mail_in_a_group_folder(
    services, db, make_user, imap_server
):
    sales = make_user("sales1", ["s1@example.com"], teams=["sales"])
    make_user("sales2", ["s2@example.com"], teams=["sales"])
    sup = make_user("sup1", ["p1@example.com"], teams=["support"])
    outsider = make_user("out", ["o@example.com"])
    db.rollback()
    team_ids = {t.name: t.id for u in db.scalars(select(User)) for t in u.teams}
    with services.session() as session:
        desk = folders.create_group_folder(
            session, "Escalations", [team_ids["sales"], team_ids["support"]]
        ).id
    box = mailbox(
        imap_server,
        ("URGENT: down", "c@customer.example", "help"),
        ("Hello", "c@customer.example", "hi"),
    )
    account = make_account(
        services,
        sales,
        imap_server,
        box,
        is_group=True,
        team_ids=[team_ids["sales"]],
        add_all_team_users=True,
        email="desk@example.com",
    )
    add_filter(
        services,
        scope="account",
        mail_account_id=account,
        action="move",
        folder_id=desk,
        subject_pattern="urgent*",
    )
    fetch(services, account)
    for member in (sales, sup):
        assert subjects(db, user_id=member, folder_id=desk) == ["URGENT: down"]
    assert subjects(db, user_id=outsider) == []
    db.rollback()
    with services.session() as session:
        folders.set_trash(
            session,
            session.get(User, sup),
            [session.scalars(select(Email.id).where(Email.subject == "URGENT: down")).one()],
            True,
        )
    assert subjects(db, user_id=sales, folder_id=desk, in_trash=True) == ["URGENT: down"]


def stored_raw(imap_server, box, uid) -> bytes:
    """The message as the server holds it (the bytes a body download would store)."""
    conn = imap_server.connect(box)
    conn.select("INBOX", readonly=True)
    _typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    conn.logout()
    return data[0][1]


@pytest.mark.parametrize("scope", ["global", "account"])
def test_mail_ignored_by_a_header_filter_is_never_downloaded(
    services, db, rep, imap_server, monkeypatch, scope
):
    downloaded: list[int] = []
    real_fetch = ImapConnection.fetch_bodies

    def spy(conn, uids):
        downloaded.extend(uids)
        return real_fetch(conn, uids)

    monkeypatch.setattr(ImapConnection, "fetch_bodies", spy)
    box = mailbox(
        imap_server,
        ("Cheap pills", "x@spam.example", "buy now"),
        ("Meeting", "boss@corp.example", "at 10"),
    )
    account = make_account(services, rep, imap_server, box)
    add_filter(
        services,
        scope=scope,
        mail_account_id=account if scope == "account" else None,
        from_pattern="*@spam.example",
    )
    summary = fetch(services, account)
    assert (summary.imported, summary.skipped) == (1, 1)
    assert downloaded == [2]
    # No Ignore filter needs a body, so downloaded mail is stored as it is parsed: no blob, no fetch.
    assert not services.blobs.exists(hashlib.sha256(stored_raw(imap_server, box, 1)).hexdigest())
    assert services.blobs.exists(hashlib.sha256(stored_raw(imap_server, box, 2)).hexdigest())
    assert all_subjects(db) == ["Meeting"]


def two_accounts_with_one_newsletter(services, make_user, imap_server, rep):
    """rep's and ann's accounts both hold the same newsletter (sent to a list, not to them)."""
    ann = make_user("ann", ["ann@example.com"])
    message = raw_message(
        subject="Newsletter",
        from_="news@list.example",
        to="all@list.example",
        message_id="<news-2@list.example>",
        body="Read online. Unsubscribe here.",
    )
    boxes = [imap_server.new_user(), imap_server.new_user()]
    for box in boxes:
        imap_server.append(box, message)
    return ann, [make_account(services, u, imap_server, b) for u, b in zip((rep, ann), boxes)]


@pytest.mark.parametrize("criteria", [{"subject_pattern": "news*"}, {"body_any": ["unsubscribe"]}])
def test_account_ignore_keeps_out_mail_that_another_account_imported_first(
    services, db, rep, make_user, imap_server, criteria
):
    ann, (filtered, plain) = two_accounts_with_one_newsletter(services, make_user, imap_server, rep)
    add_filter(services, scope="account", mail_account_id=filtered, **(NO_BODY | criteria))
    assert fetch(services, plain).imported == 1
    assert fetch(services, filtered).skipped == 1
    assert subjects(db, user_id=ann) == ["Newsletter"]
    assert subjects(db, user_id=rep) == []
    assert [loc.mail_account_id for loc in db.scalars(select(EmailLocation))] == [plain]


def test_a_group_folder_that_skips_notifications_silences_the_group_accounts_move_filter(
    services, db, make_user, imap_server
):
    sales = make_user("sales1", ["s1@example.com"], teams=["sales"])
    db.rollback()
    team_id = db.get(User, sales).teams[0].id
    with services.session() as session:
        quiet = folders.create_group_folder(session, "Bulk", [team_id], skip_notifications=True).id
    box = mailbox(
        imap_server,
        ("Weekly digest", "bot@vendor.example", "x"),
        ("Question", "c@customer.example", "y"),
    )
    account = make_account(
        services,
        sales,
        imap_server,
        box,
        is_group=True,
        team_ids=[team_id],
        add_all_team_users=True,
        email="desk@example.com",
    )
    add_filter(
        services,
        scope="account",
        mail_account_id=account,
        action="move",
        folder_id=quiet,
        from_pattern="*@vendor.example",
    )
    fetch(services, account)
    assert subjects(db, user_id=sales, folder_id=quiet) == ["Weekly digest"]
    assert notified(db, sales) == 1  # the question only


def test_a_personal_account_files_incoming_mail_in_its_chosen_and_mapped_folders(
    services, db, rep, imap_server
):
    work = make_folder(services, rep, "Work")
    archived = make_folder(services, rep, "Archived", skip_notifications=True)
    box = imap_server.new_user()
    imap_server.append(box, raw_message(subject="New"))
    imap_server.append(box, raw_message(subject="Old"), folder="Archive")
    account = make_account(
        services,
        rep,
        imap_server,
        box,
        folders=("INBOX", "Archive"),
        target_folder_id=work,
        folder_map={"Archive": archived},
    )
    fetch(services, account)
    assert subjects(db, user_id=rep, folder_id=work) == ["New"]
    assert subjects(db, user_id=rep, folder_id=archived) == ["Old"]
    assert notified(db, rep) == 1  # "Archived" skips notifications


def test_inbox_filters_apply_to_mail_that_reaches_a_colleague_through_another_account(
    services, db, rep, make_user, imap_server
):
    ann = make_user("ann", ["ann@example.com"])
    orders = make_folder(services, ann, "Orders")
    add_filter(
        services,
        scope="inbox",
        user_id=ann,
        action="move",
        folder_id=orders,
        subject_pattern="order*",
    )
    box = imap_server.new_user()
    imap_server.append(
        box, raw_message(subject="Order 7", to="rep@example.com", cc="ann@example.com")
    )
    fetch(services, make_account(services, rep, imap_server, box))  # rep's account, not hers
    assert subjects(db, user_id=ann, folder_id=orders) == ["Order 7"]
    assert subjects(db, user_id=rep, folder_id=None) == ["Order 7"]

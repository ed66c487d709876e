"""Mail without a Message-ID through Dovecot (issue 14): only byte-identical copies merge.

An automated sender that mails the same subject to the same person within one second, without
Message-IDs, writes mails that share every header; each is its own mail. A copy of the same
bytes (another folder, the Sent folder, the folder listed again) is the same mail.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from crm.accounts.manage import reset_fetch_state
from crm.mailbox import actions
from crm.models import DeletedMessage, Email, EmailLocation, MailAccount, User
from tests.support.mailboxes import LONG_AGO, fetch, make_account, raw_message

SAME_SECOND = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)


def _alert(code: int) -> bytes:
    return raw_message(
        subject="Your sign-in code",
        from_="Alerts <noreply@bank.example>",
        body=f"Your code is {code}.\n",
        message_id=False,
        date=SAME_SECOND,
    )


def _bodies(db) -> list[str]:
    db.rollback()
    return sorted(db.scalars(select(Email.body_text)))


def _count(db, model) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model))


def test_mails_sharing_every_header_without_message_id_are_all_stored(
    services, db, make_user, imap_server
):
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append_many(box, [_alert(code) for code in (1111, 2222, 3333, 4444, 5555)])
    # Batches of two: copies and lookalikes fall into different batches too.
    summary = fetch(services, make_account(services, rep, imap_server, box), batch_size=2)
    assert (summary.imported, summary.duplicates, summary.failed) == (5, 0, 0)
    assert [b.strip() for b in _bodies(db)] == [
        f"Your code is {c}." for c in range(1111, 6666, 1111)
    ]
    assert all(i.startswith("hash:") for i in db.scalars(select(Email.identity)))


def test_byte_identical_copies_are_one_mail_in_every_place(services, db, make_user, imap_server):
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    copy = _alert(1111)
    imap_server.append_many(box, [copy, _alert(2222), copy, copy])
    imap_server.append(box, copy, folder="Archive")
    account = make_account(services, rep, imap_server, box, folders=("INBOX", "Archive"))
    summary = fetch(services, account, batch_size=2)
    assert (summary.imported, summary.duplicates) == (2, 3)
    assert _count(db, Email) == 2
    assert _count(db, EmailLocation) == 5


def test_the_sent_folders_copy_of_our_own_mail_without_message_id_is_the_same_mail(
    services, db, make_user, imap_server
):
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    mine = raw_message(from_="Rep <rep@example.com>", to="rep@example.com", message_id=False)
    imap_server.append(box, mine)
    imap_server.append(box, mine, folder="Sent")
    account = make_account(services, rep, imap_server, box, folders=("INBOX", "Sent"))
    assert fetch(services, account).imported == 1
    assert _count(db, Email) == 1
    assert {loc.folder for loc in db.scalars(select(EmailLocation))} == {"INBOX", "Sent"}


def test_a_folder_listed_again_finds_its_mail_without_message_id_again(
    services, db, make_user, imap_server
):
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    alerts = [_alert(code) for code in (1111, 2222, 3333)]
    imap_server.append_many(box, alerts, folder="Alerts")
    account = make_account(services, rep, imap_server, box, folders=("Alerts",))
    assert fetch(services, account, batch_size=2).imported == 3
    # The folder recreated (new UIDVALIDITY): the same three and one more.
    conn = imap_server.connect(box)
    conn.delete('"Alerts"')
    conn.logout()
    imap_server.append_many(box, [*alerts, _alert(4444)], folder="Alerts")
    summary = fetch(services, account, batch_size=2)
    assert (summary.imported, summary.duplicates) == (1, 3)
    assert _count(db, Email) == 4
    assert _count(db, EmailLocation) == 4


def test_mail_without_message_id_deleted_for_everyone_stays_deleted(
    services, db, make_user, imap_server
):
    make_user("admin", ["admin@example.com"], admin=True)
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append_many(box, [_alert(1111), _alert(2222)])
    account = make_account(services, rep, imap_server, box)
    assert fetch(services, account).imported == 2
    gone = db.scalars(select(Email.id).where(Email.body_text.contains("2222"))).one()
    with services.session() as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        actions.apply(session, admin, "delete", [gone])
    with services.session() as session:
        reset_fetch_state(session, session.get(MailAccount, account), "INBOX", LONG_AGO)
    summary = fetch(services, account)
    assert (summary.imported, summary.skipped) == (0, 1)
    assert [b.strip() for b in _bodies(db)] == ["Your code is 1111."]
    assert _count(db, DeletedMessage) == 1

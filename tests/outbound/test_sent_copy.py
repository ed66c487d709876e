"""Store sent mail: APPENDed to the IMAP Sent folder, and never stored twice when fetched."""

from sqlalchemy import func, select

from crm import settings
from crm.models import Email, EmailLocation, EmailUserState, User
from crm.outbound import drafts, outbox
from crm.outbound.drafts import DraftInput
from crm.outbound.sending import deliver_due
from tests.support.mailboxes import fetch, make_account


def test_a_sent_copy_lands_in_sent_and_its_fetch_adds_nothing(
    services, db, make_user, imap_server, smtp_server
):
    box = imap_server.new_user()
    user_id = make_user("rep", [f"{box}@example.com"])
    account_id = make_account(
        services,
        user_id,
        imap_server,
        box,
        folders=("INBOX", "Sent"),
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        smtp_auth=False,
        store_sent=True,
        sent_folder="Sent",
    )
    imap_server.append(
        box, b"Subject: seed\r\nMessage-ID: <seed@x.example>\r\n\r\nx\r\n", folder="Sent"
    )
    settings.put(db, "undo_send_seconds", 0)
    db.commit()
    fetch(services, account_id)
    rep = db.get(User, user_id)
    draft = DraftInput(from_address=f"{box}@example.com", to="ann@customer.example", subject="Hi")
    email = drafts.save(db, services.blobs, rep, draft)
    outbox.submit(db, services.blobs, rep, email)
    db.commit()
    [outcome] = deliver_due(services)
    assert outcome.state == "sent"
    assert len(imap_server.uids(box, "Sent")) == 2
    db.rollback()
    before = db.scalar(select(func.count()).select_from(Email))
    summary = fetch(services, account_id)
    assert (summary.imported, summary.error) == (0, None)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Email)) == before
    assert (
        db.scalar(
            select(func.count())
            .select_from(EmailLocation)
            .where(EmailLocation.email_id == email.id)
        )
        == 1
    )
    assert db.query(EmailUserState).filter_by(email_id=email.id).count() == 1

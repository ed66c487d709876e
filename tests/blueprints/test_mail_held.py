"""The mail page of a mass mail's mail that a pause holds in the outbox: it says held, never
the stored far-future due time, and it says when it is sent again once resumed."""

from __future__ import annotations

from sqlalchemy import select

from crm.campaigns import mass_mail
from crm.models import MassMailRecipient, OutboxEntry
from crm.outbound import outbox
from tests.campaigns import conftest as campaign_support

campaign = campaign_support.campaign  # the fixture, shared with tests/campaigns

HELD = "Held: the mass mail is paused"


def _paused(db, services, campaign):
    """A mass mail queued whole an hour ago and then paused; its recipients' email ids."""
    found = campaign_support.queued_an_hour_ago(db, services, campaign)
    assert mass_mail.pause(db, found) == 3
    db.commit()
    db.expire_all()  # the hold is a bulk UPDATE: read the rows afresh
    ids = db.scalars(
        select(MassMailRecipient.email_id).where(MassMailRecipient.mass_mail_id == found.id)
    ).all()
    return found, sorted(ids)


def _sending_panel(client, email_id: int) -> str:
    response = client.get(f"/mail/{email_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    start = page.index('id="sending"')
    return page[start : page.index("</div>", start)]


def test_a_held_mail_says_held_and_shows_no_due_time(admin_client, db, services, campaign):
    _found, email_ids = _paused(db, services, campaign)
    for email_id in email_ids:
        entry = db.scalar(select(OutboxEntry).where(OutboxEntry.email_id == email_id))
        assert entry.due_at == outbox.HELD_UNTIL  # held as stored: the page must not show it
        panel = _sending_panel(admin_client, email_id)
        assert HELD in panel and "Sending at" not in panel
        assert "Undo send" not in panel  # a mass mail's mail is paused and resumed as a whole
        page = admin_client.get(f"/mail/{email_id}").get_data(as_text=True)
        assert "9999" not in page


def test_a_resumed_mail_is_sending_at_its_new_due_time(admin_client, db, services, campaign):
    found, email_ids = _paused(db, services, campaign)
    mass_mail.resume(db, found)
    db.commit()
    panel = _sending_panel(admin_client, email_ids[0])
    assert "Sending at" in panel and HELD not in panel and "9999" not in panel


def test_a_mail_cancelled_while_held_shows_no_sending_panel(admin_client, db, services, campaign):
    found, email_ids = _paused(db, services, campaign)
    mass_mail.cancel(db, found)
    db.commit()
    page = admin_client.get(f"/mail/{email_ids[0]}").get_data(as_text=True)
    assert 'id="sending"' not in page and HELD not in page and "9999" not in page

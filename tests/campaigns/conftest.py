"""A marketing user with an allowed group account (Dovecot for its bounces, aiosmtpd for its
mail), a template, the site URL, and a target list of contacts."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from crm import settings
from crm.campaigns import batches, mass_mail, senders, target_lists
from crm.db import utcnow
from crm.models import EmailTemplate, MassMail, User
from tests.support import records
from tests.support.mailboxes import make_account

SITE = "https://crm.example.com"
BODY = "Hello {Contact.firstName}, news for {Person.emailAddress}. {optOutLink}"


@pytest.fixture
def campaign(services, make_user, imap_server, smtp_server):
    user_id = make_user("mara", ["mara@example.com"], teams=["Marketing"], name="Mara Market")
    box = imap_server.new_user()
    account_id = make_account(
        services, user_id, imap_server, box, is_group=True, email="news@example.com",
        name="ACME News", smtp_host=smtp_server.host, smtp_port=smtp_server.port,
        smtp_security="none", smtp_auth=False,
    )  # fmt: skip
    with services.session() as session:
        settings.put(session, "site_url", SITE + "/")
        senders.allow(session, [account_id])
        user = session.get(User, user_id)
        template = EmailTemplate(name="News", subject="News for {Contact.firstName}", body=BODY,
                                 is_html=False, owner_id=user_id)  # fmt: skip
        session.add(template)
        people = [
            records.contact(session, first, "Buyer", [f"{first.lower()}@customer.example"])
            for first in ("Ann", "Bob", "Cyd")
        ]
        for person in people:
            person.created_by_id = user_id
        found = target_lists.save_list(session, user, {"name": "Customers"})
        target_lists.add_members(session, found, "Contact", [p.id for p in people], user)
        session.commit()
        ids = SimpleNamespace(
            user_id=user_id, account_id=account_id, template_id=template.id, list_id=found.id,
            contact_ids=[p.id for p in people], imap_user=box,
        )  # fmt: skip
    return ids


def queued_an_hour_ago(db, services, campaign, name="News", per_hour=3600) -> MassMail:
    """A mass mail of the campaign's list started and queued whole an hour ago: stored
    complete, every recipient's mail due in the outbox, nothing sent yet."""
    user = db.get(User, campaign.user_id)
    found = mass_mail.save(db, user, {"name": name, "template_id": campaign.template_id,
                                      "mail_account_id": campaign.account_id,
                                      "list_ids": [campaign.list_id], "per_hour": per_hour})  # fmt: skip
    past = utcnow() - timedelta(hours=1)
    mass_mail.start(db, found, user, now=past)
    batches.queue_batch(db, services.blobs, found, past)
    db.commit()
    return found


def queue_whole_an_hour_back(services, mass_mail_id: int) -> None:
    """A mass mail started through a page or the CLI, its batches queued as if an hour had
    passed: stored complete, its mail still in the outbox."""
    with services.session() as session:
        found = session.get(MassMail, mass_mail_id)
        found.next_batch_at = utcnow() - timedelta(hours=1)
        batches.queue_batch(session, services.blobs, found, found.next_batch_at)
        session.commit()
        assert found.status == "complete"

"""A marketing user with an allowed group account (Dovecot for its bounces, aiosmtpd for its
mail), a template, the site URL, and a target list of contacts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from crm import settings
from crm.campaigns import senders, target_lists
from crm.models import EmailTemplate, User
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

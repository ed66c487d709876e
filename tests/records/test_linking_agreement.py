"""The import links mail in small batches (`find_parents`, then propagation to replies that came
first); linking every mail one by one afterwards (`find_parent`) must give the same answer, in
whatever order and batching the mail arrived."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crm import settings
from crm.mail.threadtoken import make_message_id
from crm.models import Email, MailAccount
from crm.records import linking
from tests.support import records
from tests.support.mailboxes import fetch, make_account, raw_message

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
STRANGERS = [f"who{i}@nowhere.example" for i in range(4)]
PEOPLE = [
    "info@acme.example",  # Account
    "ann@acme.example",  # Contact of the Account
    "bob@solo.example",  # Contact without Account
    "lee@lead.example",  # open Lead
    "old@lead.example",  # converted Lead
]


def population(services):
    """Records behind the known addresses, and two signed thread tokens (one forged)."""
    with services.session() as s:
        acme = records.account(s, addresses=["info@acme.example"])
        ann = records.contact(s, addresses=["ann@acme.example"], account=acme)
        records.contact(s, first="Bob", addresses=["bob@solo.example"])
        records.lead(s, addresses=["lee@lead.example"])
        records.lead(
            s,
            first="Old",
            addresses=["old@lead.example"],
            status="Converted",
            converted_contact_id=ann.id,
            converted_account_id=acme.id,
        )
        opp = records.opportunity(s, account=acme)
        good = make_message_id(services.secret_key(), "Opportunity", opp.id, "crm.example")
        victim = records.account(s, name="Victim")
        forged = good.replace(f".{opp.id}.", f".{victim.id}.")
        return good, forged


def mailbox(good_token: str, forged_token: str, seed: int) -> list[dict]:
    """About fifty mails in a dozen threads, oldest first, with every way replies name parents."""
    rng = random.Random(seed)
    senders = [*PEOPLE, *STRANGERS, "rep@example.com"]
    mails, when = [], START
    for t in range(12):
        chain: list[str] = []
        first_reply_to = {0: good_token, 1: forged_token}.get(t % 6)
        if first_reply_to:
            chain.append(first_reply_to)
        for n in range(rng.randint(2, 6)):
            when += timedelta(minutes=rng.randint(1, 30))
            own = f"<t{t}m{n}@mua.example>"
            sender = rng.choice(senders)
            mail = {
                "subject": f"thread {t} mail {n}",
                "message_id": own,
                "from_": sender,
                "to": "rep@example.com" if sender != "rep@example.com" else rng.choice(senders),
                "date": when,
            }
            if sender.startswith("who") and rng.random() < 0.3:
                mail["headers"] = {"Reply-To": rng.choice(PEOPLE)}
            if chain:
                shape = rng.choice(["both", "both", "refs-only", "gap", "skewed"])
                refs = list(chain)
                if shape == "gap":  # the direct parent never reaches us, an ancestor does
                    refs.append(f"<lost-t{t}m{n}@mua.example>")
                mail["references"] = " ".join(refs)
                if shape != "refs-only":
                    mail["in_reply_to"] = refs[-1]
                if shape == "skewed":  # the sender's clock is behind its parent's
                    mail["date"] = when - timedelta(minutes=45)
            mails.append(mail)
            chain.append(own)
    return mails


def stored_and_recomputed(services, account_id):
    with services.session() as s:
        account = s.get(MailAccount, account_id)
        out = []
        for email in s.scalars(select(Email).order_by(Email.date_sent, Email.id)):
            link = linking.find_parent(s, email, None, account)
            stored = (email.parent_type, email.parent_id, email.account_id, email.link_rule)
            again = (
                (link.parent_type, link.parent_id, link.account_id, link.rule)
                if link
                else (None, None, None, None)
            )
            out.append((email.subject, stored, again))
        return out


@pytest.mark.parametrize("b2c", [False, True])
@pytest.mark.parametrize("order", ["chronological", "shuffled"])
def test_batch_import_links_every_mail_as_find_parent_does_one_by_one(
    services, imap_server, make_user, b2c, order
):
    rep = make_user("rep", ["rep@example.com"])
    with services.session() as s:
        settings.put(s, "b2c_mode", b2c)
    mails = mailbox(*population(services), seed=4)
    if order == "shuffled":
        random.Random(7).shuffle(mails)
    imap_user = imap_server.new_user()
    for mail in mails:
        imap_server.append(imap_user, raw_message(**mail))
    account_id = make_account(services, rep, imap_server, imap_user)
    summary = fetch(services, account_id, batch_size=3)
    assert summary.error is None and summary.imported == len(mails) >= 40

    results = stored_and_recomputed(services, account_id)
    mismatches = [
        f"{subject}: stored {stored}, one by one {again}"
        for subject, stored, again in results
        if stored != again
    ]
    assert not mismatches, "\n".join(mismatches)
    rules = {stored[3] for _, stored, _ in results}
    assert {"thread-token", "replied-mail", "sender-address", None} <= rules

"""Mass mail through the outbox and the real SMTP fixture: each recipient's own mail, the
opt-out header and link, skips before rendering, the rate, pause and resume, bounces."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from crm.campaigns import batches, mass_mail, progress, target_lists
from crm.campaigns.mass_mail import MassMailError
from crm.db import utcnow
from crm.models import EmailAddress, MassMail, MassMailRecipient, OutboxEntry, User
from crm.outbound.sending import deliver_due
from tests.campaigns.conftest import SITE
from tests.support import records

NOW = datetime(2026, 12, 3, 8, 0, 0)


def _draft(db, campaign, **values) -> MassMail:
    user = db.get(User, campaign.user_id)
    values = {"name": "December news", "template_id": campaign.template_id,
              "mail_account_id": campaign.account_id, "list_ids": [campaign.list_id],
              "per_hour": 3600, **values}  # fmt: skip
    found = mass_mail.save(db, user, values)
    db.commit()
    return found


def _started(db, campaign, now=None, **values) -> MassMail:
    found = _draft(db, campaign, **values)
    mass_mail.start(db, found, db.get(User, campaign.user_id), now=now)
    db.commit()
    return found


def _run(db, services, found, now=None) -> list[batches.Batch]:
    """Queue batches until none is due (bounded), committing each like the job."""
    done = []
    for _ in range(20):
        batch = batches.queue_batch(db, services.blobs, found, now)
        db.commit()
        done.append(batch)
        if not batch.more:
            break
    return done


def _past() -> datetime:
    """A start an hour ago: every mail of the batch is due now, whatever the spacing."""
    return utcnow() - timedelta(hours=1)


def _mark(db, address, **flags):
    row = db.scalar(select(EmailAddress).where(EmailAddress.lower == address))
    for key, value in flags.items():
        setattr(row, key, value)
    db.commit()


def _parsed(message):
    return message_from_bytes(message["data"], policy=policy.default)


def test_each_recipient_gets_their_own_mail_with_a_one_click_opt_out(
    db, services, campaign, smtp_server
):
    _mark(db, "bob@customer.example", opted_out=True)
    extra = records.contact(db, "Dee", "Gone", ["dee@customer.example"],
                            created_by_id=campaign.user_id)  # fmt: skip
    target_lists.add_members(db, db.get(target_lists.TargetList, campaign.list_id), "Contact",
                             [extra.id], db.get(User, campaign.user_id))  # fmt: skip
    db.commit()
    _mark(db, "dee@customer.example", invalid=True)
    found = _started(db, campaign, now=_past())
    _run(db, services, found, _past())
    outcomes = deliver_due(services)
    assert sorted(o.state for o in outcomes) == ["sent", "sent"]
    by_rcpt = {m["rcpt_tos"][0]: _parsed(m) for m in smtp_server.messages}
    assert set(by_rcpt) == {"ann@customer.example", "cyd@customer.example"}
    ann = by_rcpt["ann@customer.example"]
    assert ann["Subject"] == "News for Ann"
    assert ann["From"] == "ACME News <news@example.com>"
    text = ann.get_body(("plain",)).get_content()
    assert "Hello Ann, news for ann@customer.example." in text
    unsubscribe = ann["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{SITE}/campaigns/unsubscribe/u") and unsubscribe.endswith(">")
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe.strip("<>") in text  # {optOutLink} in a plain body is the URL
    assert "Hello Cyd" in by_rcpt["cyd@customer.example"].get_body(("plain",)).get_content()
    db.expire_all()
    counts = progress.counts(db, found)
    assert counts["sent"] == 2 and counts["opted_out"] == 1 and counts["invalid"] == 1
    assert db.get(MassMail, found.id).status == "complete"
    assert progress.progress(db, found).finished


def test_a_template_without_an_opt_out_placeholder_gets_an_opt_out_line(
    db, services, campaign, smtp_server
):
    from crm.models import EmailTemplate

    template = db.get(EmailTemplate, campaign.template_id)
    template.body, template.is_html = "<p>Hi {Contact.firstName}</p>", True
    db.commit()
    found = _started(db, campaign, now=_past())
    _run(db, services, found, _past())
    deliver_due(services)
    mail = _parsed(smtp_server.messages[0])
    html = mail.get_body(("html",)).get_content()
    assert "<p>Hi Ann</p>" in html
    assert f'<a href="{mail["List-Unsubscribe"].strip("<>")}">Unsubscribe</a>' in html


def test_recipients_are_one_per_address_and_excluded_lists_win(db, services, campaign):
    user = db.get(User, campaign.user_id)
    again = target_lists.save_list(db, user, {"name": "Also customers"})
    target_lists.add_members(db, again, "Contact", campaign.contact_ids, user)
    keep_out = target_lists.save_list(db, user, {"name": "Do not mail"})
    target_lists.add_members(db, keep_out, "Contact", campaign.contact_ids[:1], user)
    db.commit()
    found = _started(db, campaign, list_ids=[campaign.list_id, again.id],
                     excluded_ids=[keep_out.id])  # fmt: skip
    rows = db.scalars(select(MassMailRecipient).where(MassMailRecipient.mass_mail_id == found.id))
    assert sorted(r.entity_id for r in rows) == campaign.contact_ids[1:]


def test_the_rate_spaces_the_due_times_and_batches_wait_their_turn(db, services, campaign):
    user = db.get(User, campaign.user_id)
    more = [records.contact(db, f"P{i}", "Many", [f"p{i}@customer.example"],
                            created_by_id=campaign.user_id) for i in range(4)]  # fmt: skip
    target_lists.add_members(db, db.get(target_lists.TargetList, campaign.list_id), "Contact",
                             [p.id for p in more], user)  # fmt: skip
    db.commit()
    found = _started(db, campaign, now=NOW, per_hour=60)  # one a minute
    found.batch_size = 3
    db.commit()
    first = batches.queue_batch(db, services.blobs, found, NOW)
    db.commit()
    assert [due for _, due in first.queued] == [NOW, NOW + timedelta(minutes=1),
                                                NOW + timedelta(minutes=2)]  # fmt: skip
    assert found.next_batch_at == NOW + timedelta(minutes=3)
    # Not due yet: nothing is queued.
    assert batches.queue_batch(db, services.blobs, found, NOW + timedelta(minutes=2)).queued == []
    later = NOW + timedelta(minutes=3, seconds=20)
    second = batches.queue_batch(db, services.blobs, found, later)
    db.commit()
    assert [due for _, due in second.queued] == [later + timedelta(minutes=i) for i in range(3)]
    stored = db.scalars(select(OutboxEntry.due_at).order_by(OutboxEntry.due_at)).all()
    assert len(stored) == 6 and stored[0] == NOW


def test_pause_stops_queuing_and_resume_continues(db, services, campaign):
    found = _started(db, campaign, now=NOW)
    found.batch_size = 1
    db.commit()
    assert len(batches.queue_batch(db, services.blobs, found, NOW).queued) == 1
    mass_mail.pause(db, found)
    db.commit()
    assert batches.due(db, NOW + timedelta(hours=1)) == []
    assert batches.queue_batch(db, services.blobs, found, NOW + timedelta(hours=1)).queued == []
    with pytest.raises(MassMailError):
        mass_mail.pause(db, found)
    mass_mail.resume(db, found, now=NOW + timedelta(hours=1))
    found.batch_size = 100
    db.commit()
    assert batches.due(db, NOW + timedelta(hours=1)) == [found.id]
    _run(db, services, found, NOW + timedelta(hours=1))
    counts = progress.counts(db, found)
    assert counts["queued"] == 3 and counts["pending"] == 0


def test_starting_needs_the_site_url_an_allowed_account_and_recipients(db, services, campaign):
    from crm import settings

    settings.put(db, "site_url", None)
    db.commit()
    found = _draft(db, campaign)
    with pytest.raises(MassMailError, match="public address"):
        mass_mail.start(db, found, db.get(User, campaign.user_id))
    db.rollback()
    settings.put(db, "site_url", SITE)
    empty = target_lists.save_list(db, db.get(User, campaign.user_id), {"name": "Empty"})
    db.commit()
    nobody = _draft(db, campaign, name="To nobody", list_ids=[empty.id])
    with pytest.raises(MassMailError, match="nobody"):
        mass_mail.start(db, nobody, db.get(User, campaign.user_id))
    db.rollback()
    with pytest.raises(MassMailError, match="account"):
        _draft(db, campaign, mail_account_id=campaign.account_id + 100)


def test_a_template_error_pauses_before_anything_is_queued(db, services, campaign):
    found = _started(db, campaign)
    found.body = "{{#if firstName}}unclosed"
    db.commit()
    assert batches.queue_batch(db, services.blobs, found).queued == []
    db.commit()
    assert found.status == "paused" and "template" in found.last_error
    assert db.scalar(select(OutboxEntry.id)) is None


def test_the_template_files_go_with_every_mail(db, services, campaign, smtp_server):
    from crm.models import Email
    from crm.models.templates import TemplateAttachment

    data = b"%PDF-1.4 price list"
    db.add(TemplateAttachment(template_id=campaign.template_id, filename="Ceník 2027.pdf",
                              content_type="application/pdf", size=len(data),
                              sha256=services.blobs.put(data)))  # fmt: skip
    db.commit()
    found = _started(db, campaign, now=_past())
    _run(db, services, found, _past())
    deliver_due(services)
    assert len(smtp_server.messages) == 3
    for message in smtp_server.messages:
        [part] = list(_parsed(message).iter_attachments())
        assert part.get_filename() == "Ceník 2027.pdf" and part.get_content() == data
    email = db.scalars(select(Email).where(Email.link_rule == "mass-mail")).first()
    assert email.has_attachments and email.attachments[0].filename == "Ceník 2027.pdf"

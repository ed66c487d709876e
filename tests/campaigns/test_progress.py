"""What a mass mail shows while its mail is in the outbox: still sending after every recipient
was queued, pause holding and cancel cancelling only what waits (never what a worker is
sending or has sent), a draft that has not started, and a recipient who subscribed again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.campaigns import batches, mass_mail, opt_out, outbox_rows, progress
from crm.campaigns.mass_mail import MassMailError
from crm.db import utcnow
from crm.models import Email, EmailAddress, MassMail, MassMailRecipient, OutboxEntry, User
from crm.models.mail import STATUS_FAILED, STATUS_SENT
from crm.outbound import outbox
from crm.outbound.sending import deliver_due
from tests.campaigns.conftest import queued_an_hour_ago


def _queued(db, services, campaign) -> MassMail:
    found = queued_an_hour_ago(db, services, campaign)
    assert found.status == "complete"
    return found


def _entries(db, found) -> dict[str, OutboxEntry]:
    """The mass mail's outbox rows by recipient address."""
    db.expire_all()
    rows = db.execute(
        select(EmailAddress.lower, OutboxEntry)
        .join(MassMailRecipient, MassMailRecipient.address_id == EmailAddress.id)
        .join(OutboxEntry, OutboxEntry.email_id == MassMailRecipient.email_id)
        .where(MassMailRecipient.mass_mail_id == found.id)
    )
    return {address.split("@")[0]: entry for address, entry in rows}


def test_a_complete_mass_mail_is_sending_while_its_mail_waits_in_the_outbox(
    db, services, campaign, smtp_server
):
    found = _queued(db, services, campaign)
    shown = progress.progress(db, found)
    assert shown.state == "sending" and shown.label == "Sending"
    assert shown.actions == ("pause", "cancel") and not shown.finished
    assert progress.states(db, [found]) == {found.id: "sending"}
    assert len(deliver_due(services)) == 3
    db.expire_all()
    shown = progress.progress(db, found)
    assert shown.state == "complete" and shown.actions == () and shown.finished
    assert shown.percent == 100 and shown.counts["sent"] == 3
    with pytest.raises(MassMailError, match="already ended"):
        mass_mail.cancel(db, found)


def test_cancel_cancels_only_mail_still_queued(db, services, campaign, smtp_server):
    found = _queued(db, services, campaign)
    entries = _entries(db, found)
    deliver_due(services, ids=[entries["ann"].id])  # sent
    outbox.take_due(db, utcnow(), ids=[entries["bob"].id], claim="w1")  # a worker has it
    db.commit()
    assert mass_mail.cancel(db, found) == 1
    db.commit()
    entries = _entries(db, found)
    assert {k: e.state for k, e in entries.items()} == {
        "ann": "sent", "bob": "sending", "cyd": "cancelled"}  # fmt: skip
    assert db.get(Email, entries["cyd"].email_id).status == STATUS_FAILED
    assert db.get(Email, entries["ann"].email_id).status == STATUS_SENT
    shown = progress.progress(db, db.get(MassMail, found.id))
    assert shown.state == "cancelled" and shown.actions == ()
    assert shown.counts["cancelled"] == 1 and shown.counts["sent"] == 1
    assert not shown.finished  # bob's mail is still being sent
    assert len(smtp_server.messages) == 1


def test_pause_holds_what_waits_and_resume_sends_it(db, services, campaign, smtp_server):
    found = _queued(db, services, campaign)
    assert mass_mail.pause(db, found) == 3
    db.commit()
    assert deliver_due(services) == []  # held: no worker takes it
    shown = progress.progress(db, found)
    assert shown.state == "paused" and shown.actions == ("resume", "cancel")
    assert shown.finished  # nothing moves while paused: the bar stops polling
    mass_mail.resume(db, found, now=utcnow() - timedelta(minutes=1))
    db.commit()
    assert len(deliver_due(services)) == 3
    assert batches.queue_batch(db, services.blobs, found).queued == []
    assert found.status == "complete"


def test_the_next_batch_waits_for_held_mail_released_at_resume(db, services, campaign):
    found = _queued(db, services, campaign)
    mass_mail.pause(db, found)
    now = utcnow()
    mass_mail.resume(db, found, now=now)
    db.commit()
    dues = sorted(e.due_at for e in _entries(db, found).values())
    assert dues == [now, now + timedelta(seconds=1), now + timedelta(seconds=2)]
    assert outbox_rows.last_due(db, found) == now + timedelta(seconds=2)


def test_a_draft_has_not_started_and_says_how_many_its_lists_hold(db, campaign):
    user = db.get(User, campaign.user_id)
    found = mass_mail.save(db, user, {"name": "Draft", "template_id": campaign.template_id,
                                      "mail_account_id": campaign.account_id,
                                      "list_ids": [campaign.list_id]})  # fmt: skip
    shown = progress.progress(db, found)
    assert shown.state == "draft" and shown.label == "Not started"
    assert shown.total == 0 and shown.percent == 0 and shown.expected == 3
    assert shown.actions == ("start", "cancel")
    assert db.scalar(select(MassMailRecipient.id)) is None  # counting wrote nothing


def test_the_log_shows_a_recipient_who_subscribed_again(db, services, campaign, smtp_server):
    found = _queued(db, services, campaign)
    deliver_due(services)
    db.expire_all()
    ann = db.scalar(select(EmailAddress).where(EmailAddress.lower == "ann@customer.example"))
    recipient = db.scalar(select(MassMailRecipient).where(MassMailRecipient.address_id == ann.id))
    token = opt_out.Token(opt_out.UNSUBSCRIBE, ann.id, recipient.id)
    opt_out.opt_out(db, token, ann)
    db.commit()
    line = {x.address: x for x in progress.recipients_page(db, found).items}
    assert line["ann@customer.example"].subscription == "unsubscribed"
    opt_out.subscribe_again(db, ann)
    db.commit()
    line = {x.address: x for x in progress.recipients_page(db, found).items}
    assert line["ann@customer.example"].subscription == "resubscribed"
    assert line["ann@customer.example"].opted_out_at is not None  # the history stays
    assert line["ann@customer.example"].subscribed_again_on == ann.subscribed_again_at
    assert line["bob@customer.example"].subscription == ""
    assert line["bob@customer.example"].subscribed_again_on is None


def _ann(db, found) -> tuple[EmailAddress, opt_out.Token]:
    ann = db.scalar(select(EmailAddress).where(EmailAddress.lower == "ann@customer.example"))
    recipient = db.scalar(select(MassMailRecipient).where(
        MassMailRecipient.mass_mail_id == found.id, MassMailRecipient.address_id == ann.id))  # fmt: skip
    return ann, opt_out.Token(opt_out.UNSUBSCRIBE, ann.id, recipient.id)


def _ann_line(db, found) -> progress.Line:
    db.expire_all()
    return {x.address: x for x in progress.recipients_page(db, found).items}["ann@customer.example"]


def test_subscribing_again_is_dated_once_and_a_later_opt_out_clears_the_date(
    db, services, campaign, smtp_server
):
    found = _queued(db, services, campaign)
    deliver_due(services)
    ann, token = _ann(db, found)
    opt_out.opt_out(db, token, ann)
    db.commit()
    assert ann.subscribed_again_at is None
    before = utcnow()
    opt_out.subscribe_again(db, ann)
    db.commit()
    dated = ann.subscribed_again_at
    assert dated is not None and before <= dated <= utcnow()
    assert _ann_line(db, found).subscribed_again_on == dated
    opt_out.subscribe_again(db, ann)  # the button again, or the page reloaded: same date
    db.commit()
    assert ann.subscribed_again_at == dated
    opt_out.opt_out(db, token, ann)  # unsubscribed again: that subscribing again is over
    db.commit()
    assert (ann.opted_out, ann.subscribed_again_at) == (True, None)
    line = _ann_line(db, found)
    assert line.subscription == "unsubscribed" and line.subscribed_again_on is None


def test_subscribe_again_of_an_address_never_unsubscribed_keeps_no_date(
    db, services, campaign, smtp_server
):
    found = _queued(db, services, campaign)
    ann, _token = _ann(db, found)
    opt_out.subscribe_again(db, ann)
    db.commit()
    assert (ann.opted_out, ann.subscribed_again_at) == (False, None)


def test_subscribed_again_without_a_kept_date_shows_none(db, services, campaign, smtp_server):
    """Cleared on the record's page (or before the date was stored): no date to show."""
    found = _queued(db, services, campaign)
    deliver_due(services)
    ann, token = _ann(db, found)
    opt_out.opt_out(db, token, ann)
    db.commit()
    ann.opted_out = False
    db.commit()
    line = _ann_line(db, found)
    assert line.subscription == "resubscribed" and line.subscribed_again_on is None


def test_a_recipient_skipped_as_opted_out_shows_when_it_subscribed_again(db, services, campaign):
    ann = db.scalar(select(EmailAddress).where(EmailAddress.lower == "ann@customer.example"))
    ann.opted_out = True
    db.commit()
    found = _queued(db, services, campaign)
    opt_out.subscribe_again(db, ann)
    db.commit()
    line = _ann_line(db, found)
    assert (line.status, line.subscription) == ("opted_out", "subscribed_again_since")
    assert ann.subscribed_again_at is not None
    assert line.subscribed_again_on == ann.subscribed_again_at


def test_recipients_never_queued_of_a_cancelled_mass_mail_show_as_cancelled(db, services, campaign):
    user = db.get(User, campaign.user_id)
    found = mass_mail.save(db, user, {"name": "News", "template_id": campaign.template_id,
                                      "mail_account_id": campaign.account_id,
                                      "list_ids": [campaign.list_id]})  # fmt: skip
    mass_mail.start(db, found, user)
    found.batch_size = 1
    assert len(batches.queue_batch(db, services.blobs, found).queued) == 1
    assert progress.counts(db, found)["pending"] == 2
    assert mass_mail.cancel(db, found) == 1
    db.commit()
    counts = progress.counts(db, found)
    assert counts["cancelled"] == 3 and counts["pending"] == 0
    assert progress.progress(db, found).finished

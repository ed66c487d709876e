"""The outbox against the real (scriptable) SMTP server: every mail exactly once, or marked."""

from datetime import timedelta
from email import message_from_bytes, policy

import pytest

from crm import settings
from crm.db import utcnow
from crm.models import Email, EmailUserState, Notification, OutboxEntry
from crm.models.outbox import PHASE_DATA, SENDING
from crm.outbound import drafts, outbox
from crm.outbound.drafts import DraftInput
from crm.outbound.senders import SendRefused
from crm.outbound.sending import deliver_all_due, deliver_due


def _queue(db, services, user, **fields):
    draft = DraftInput(
        from_address=fields.pop("from_address", "rep@example.com"),
        to=fields.pop("to", "Ann Buyer <ann@customer.example>"),
        subject=fields.pop("subject", "Offer"),
        body=fields.pop("body", "<p>Dear Ann,</p><p>our offer.</p>"),
        **fields,
    )
    email = drafts.save(db, services.blobs, user, draft)
    handed = outbox.submit(db, services.blobs, user, email)
    db.commit()
    return handed


def _entry(db, handed) -> OutboxEntry:
    db.expire_all()
    return db.get(OutboxEntry, handed.entry_id)


def test_a_mail_is_sent_once_and_filed_as_sent(db, services, rep, smtp_account, smtp_server):
    handed = _queue(db, services, rep, cc="Boss <boss@customer.example>", bcc="audit@example.org")
    outcomes = deliver_due(services)
    assert [o.state for o in outcomes] == ["sent"]
    assert deliver_due(services) == []  # nothing twice
    [received] = smtp_server.messages
    assert sorted(received["rcpt_tos"]) == [
        "ann@customer.example",
        "audit@example.org",
        "boss@customer.example",
    ]
    parsed = message_from_bytes(received["data"], policy=policy.default)
    assert parsed["Message-ID"] == f"<{handed.message_id}>"
    assert "Bcc" not in parsed and parsed["Subject"] == "Offer"
    entry = _entry(db, handed)
    email = db.get(Email, handed.email_id)
    assert (entry.state, email.status) == ("sent", "Sent")
    assert entry.last_reply.startswith("250")
    state = db.query(EmailUserState).filter_by(email_id=email.id, user_id=rep.id).one()
    assert state.is_outgoing and not state.in_trash


def test_batches_share_one_connection_and_every_outcome_is_written(
    db, services, rep, smtp_account, smtp_server
):
    """Outcomes are written with the next mail's commit (and the last with the batch's): all
    five rows end sent, recipients accepted, over one connection kept across batches."""
    handed = [_queue(db, services, rep, subject=f"Offer {i}") for i in range(5)]
    outcomes = deliver_all_due(services, limit=2)
    assert [o.state for o in outcomes] == ["sent"] * 5
    assert smtp_server.connections == 1 and len(smtp_server.messages) == 5
    for h in handed:
        entry = _entry(db, h)
        assert (entry.state, entry.phase, entry.lease_until) == ("sent", "data", None)
        assert entry.last_code == 250 and entry.finished_at is not None
        assert [r.state for r in entry.recipients] == ["accepted"]
        assert db.get(Email, h.email_id).status == "Sent"
    assert deliver_all_due(services) == []


def test_only_own_addresses_may_send(db, services, rep, smtp_account, smtp_server):
    email = drafts.save(
        db, services.blobs, rep, DraftInput(from_address="ceo@example.com", to="a@b.example")
    )
    with pytest.raises(SendRefused, match="may not send from ceo@example.com"):
        outbox.submit(db, services.blobs, rep, email)
    assert db.query(OutboxEntry).count() == 0


def test_a_permanent_refusal_fails_with_the_servers_words(
    db, services, rep, smtp_account, smtp_server
):
    smtp_server.script(answer_data="554 5.7.1 Message rejected as spam")
    handed = _queue(db, services, rep)
    [outcome] = deliver_due(services)
    entry = _entry(db, handed)
    assert (outcome.state, entry.state) == ("failed", "failed")
    assert "5.7.1 Message rejected as spam" in entry.last_reply
    assert db.get(Email, handed.email_id).status == "Failed"
    note = db.query(Notification).filter_by(user_id=rep.id, kind="send_problem").one()
    assert "Offer" in note.text


def test_a_temporary_failure_is_retried_with_the_same_message_id(
    db, services, rep, smtp_account, smtp_server
):
    smtp_server.script(answer_data="451 4.3.0 Try again later", fail_times=1)
    handed = _queue(db, services, rep)
    [outcome] = deliver_due(services)
    entry = _entry(db, handed)
    assert (outcome.state, entry.attempts) == ("queued", 1)
    assert entry.due_at > utcnow() and "4.3.0" in entry.last_reply
    entry.due_at = utcnow() - timedelta(seconds=1)  # the backoff has passed
    db.commit()
    [outcome] = deliver_due(services)
    assert outcome.state == "sent"
    [received] = smtp_server.messages
    assert f"<{handed.message_id}>".encode() in received["data"]


def test_one_refused_recipient_is_recorded_and_the_rest_delivered(
    db, services, rep, smtp_account, smtp_server
):
    smtp_server.script(answer_rcpt={"gone@customer.example": "550 5.1.1 No such user"})
    handed = _queue(db, services, rep, to="ann@customer.example, gone@customer.example")
    [outcome] = deliver_due(services)
    assert outcome.state == "sent"
    assert outcome.refused == [("gone@customer.example", 550, "550 5.1.1 No such user")]
    [received] = smtp_server.messages
    assert received["rcpt_tos"] == ["ann@customer.example"]
    states = {r.address: r.state for r in _entry(db, handed).recipients}
    assert states == {"ann@customer.example": "accepted", "gone@customer.example": "refused"}


def test_a_connection_lost_before_data_is_retried(db, services, rep, smtp_account, smtp_server):
    smtp_server.script(drop="before_data", fail_times=1)
    _queue(db, services, rep)
    [outcome] = deliver_due(services)
    assert outcome.state == "queued" and smtp_server.messages == []


def test_a_connection_lost_after_the_dot_is_unknown_and_never_resent(
    db, services, rep, smtp_account, smtp_server
):
    smtp_server.script(drop="after_dot", fail_times=1)
    handed = _queue(db, services, rep)
    [outcome] = deliver_due(services)
    assert outcome.state == "unknown"
    entry = _entry(db, handed)
    entry.due_at = utcnow() - timedelta(hours=1)
    db.commit()
    assert deliver_due(services) == []
    assert len(smtp_server.messages) == 1  # the server has it; we never sent it again
    assert db.get(Email, handed.email_id).status == "Unknown"


def test_the_sweeper_requeues_before_data_and_marks_unknown_after(db, services, rep, smtp_account):
    first, second = _queue(db, services, rep), _queue(db, services, rep, subject="Second")
    assert outbox.take_due(db, utcnow()) == sorted([first.entry_id, second.entry_id])
    stalled = db.get(OutboxEntry, second.entry_id)
    outbox.mark_data_phase(db, stalled)
    db.commit()
    assert outbox.sweep(db, utcnow() + outbox.LEASE + timedelta(seconds=1)) == {
        "requeued": [first.entry_id],
        "unknown": [second.entry_id],
    }
    db.commit()
    assert _entry(db, first).state == "queued" and _entry(db, second).state == "unknown"


def test_a_row_swept_back_and_retaken_is_not_sent_by_its_first_worker(
    db, services, rep, smtp_account
):
    handed = _queue(db, services, rep)
    assert outbox.take_due(db, utcnow(), claim="first") == [handed.entry_id]
    db.commit()
    with services.session() as other:  # the first batch is slow; its lease runs out
        outbox.sweep(other, utcnow() + outbox.LEASE + timedelta(seconds=1))
    with services.session() as other:
        assert outbox.take_due(other, utcnow(), claim="second") == [handed.entry_id]
    entry = _entry(db, handed)
    assert not outbox.mark_data_phase(db, entry, "first")
    assert outbox.mark_data_phase(db, entry, "second")
    db.commit()
    assert (_entry(db, handed).phase, _entry(db, handed).attempts) == (PHASE_DATA, 1)


def test_a_taken_row_is_not_taken_twice(db, services, rep, smtp_account):
    handed = _queue(db, services, rep)
    assert outbox.take_due(db, utcnow()) == [handed.entry_id]
    assert outbox.take_due(db, utcnow()) == []
    assert _entry(db, handed).state == SENDING


def test_undo_returns_the_mail_to_drafts_and_nothing_is_sent(
    db, services, rep, smtp_account, smtp_server
):
    settings.put(db, "undo_send_seconds", 30)
    handed = _queue(db, services, rep)
    email = db.get(Email, handed.email_id)
    assert outbox.cancel(db, rep, email)
    db.commit()
    assert deliver_due(services) == [] and smtp_server.messages == []
    assert db.get(Email, handed.email_id).status == "Draft"


def test_a_recipient_who_is_a_user_gets_it_in_the_inbox(db, services, rep, smtp_account, make_user):
    colleague = make_user("colleague", ["colleague@example.com"])
    handed = _queue(db, services, rep, to="colleague@example.com")
    assert [o.state for o in deliver_due(services)] == ["sent"]
    db.expire_all()
    state = db.query(EmailUserState).filter_by(email_id=handed.email_id, user_id=colleague).one()
    assert not state.is_outgoing and not state.is_read


def test_limits_refuse_with_a_clear_message(db, services, rep, smtp_account):
    settings.put(db, "max_recipients_per_mail", 2)
    email = drafts.save(
        db,
        services.blobs,
        rep,
        DraftInput(from_address="rep@example.com", to="a@x.example, b@x.example, c@x.example"),
    )
    with pytest.raises(SendRefused, match="at most 2 recipients"):
        outbox.submit(db, services.blobs, rep, email)


def test_the_phase_is_committed_before_data(db, services, rep, smtp_account):
    handed = _queue(db, services, rep)
    [entry_id] = outbox.take_due(db, utcnow())
    entry = db.get(OutboxEntry, entry_id)
    outbox.mark_data_phase(db, entry)
    db.commit()
    assert _entry(db, handed).phase == PHASE_DATA

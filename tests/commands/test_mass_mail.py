"""`flask crm mass-mail create|start|pause|resume|cancel|status` end to end: the command line,
the database, Redis (the batch job queued), the outbox and the SMTP fixture."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from crm.campaigns import batches
from crm.db import utcnow
from crm.models import EmailAddress, MassMail
from crm.outbound.sending import deliver_due
from tests.campaigns import conftest as campaign_support

campaign = campaign_support.campaign  # the fixture, shared with tests/campaigns


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["crm", "mass-mail", *args])


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def _create(app, campaign, *more) -> int:
    out = _ok(_cli(app, "create", "--user", "mara", "--name", "News", "--template",
                   str(campaign.template_id), "--account", str(campaign.account_id),
                   "--list", str(campaign.list_id), "--json", *more))  # fmt: skip
    return json.loads(out)["id"]


def _status(app, mass_mail_id) -> dict:
    return json.loads(_ok(_cli(app, "status", str(mass_mail_id), "--json")))


def test_create_start_pause_resume_and_status_counts(app, db, services, redis, campaign,
                                                     smtp_server):  # fmt: skip
    row = db.query(EmailAddress).filter_by(lower="cyd@customer.example").one()
    row.opted_out = True
    db.commit()
    mass_mail_id = _create(app, campaign, "--per-hour", "600")
    assert _status(app, mass_mail_id)["status"] == "draft"
    assert "3 recipients" in _ok(_cli(app, "start", str(mass_mail_id)))
    assert redis.llen("rq:queue:mail") == 1  # the batch job, queued at once
    assert "Paused" in _ok(_cli(app, "pause", str(mass_mail_id)))
    refused = _cli(app, "pause", str(mass_mail_id))
    assert refused.exit_code == 1 and "Only a running mass mail" in refused.output
    assert "Sending" in _ok(_cli(app, "resume", str(mass_mail_id)))
    with services.session() as session:
        found = session.get(MassMail, mass_mail_id)
        found.next_batch_at = utcnow() - timedelta(hours=1)
        batches.queue_batch(session, services.blobs, found, found.next_batch_at)
        session.commit()
    deliver_due(services)
    status = _status(app, mass_mail_id)
    assert status["status"] == "complete" and status["total"] == 3
    assert status["state"] == "complete" and status["state_label"] == "Complete"
    assert status["counts"]["sent"] == 2 and status["counts"]["opted_out"] == 1
    assert status["counts"]["queued"] == 0 and status["done"] == 3
    text = _ok(_cli(app, "status", str(mass_mail_id)))
    assert "Sent: 2" in text and "Opted out: 1" in text
    assert text.startswith("News: Complete, 3 of 3 done")


def _queued_whole(app, services, campaign) -> int:
    """Started and queued whole an hour back: stored complete, its mail still in the outbox."""
    mass_mail_id = _create(app, campaign, "--per-hour", "3600")
    _ok(_cli(app, "start", str(mass_mail_id)))
    campaign_support.queue_whole_an_hour_back(services, mass_mail_id)
    return mass_mail_id


def test_status_says_sending_while_the_mail_of_a_complete_mass_mail_waits(
    app, services, redis, campaign, smtp_server
):
    mass_mail_id = _queued_whole(app, services, campaign)
    status = _status(app, mass_mail_id)
    assert status["status"] == "complete"  # the stored status, as before
    assert status["state"] == "sending" and status["state_label"] == "Sending"
    assert _ok(_cli(app, "status", str(mass_mail_id))).startswith("News: Sending, 0 of 3 done")
    assert len(deliver_due(services)) == 3
    assert _status(app, mass_mail_id)["state"] == "complete"


def test_pause_holds_the_waiting_mail_and_resume_releases_it(
    app, services, redis, campaign, smtp_server
):
    mass_mail_id = _queued_whole(app, services, campaign)
    paused = _ok(_cli(app, "pause", str(mass_mail_id)))
    assert paused.strip() == f"mass mail {mass_mail_id}: Paused, 3 mails waiting in the outbox held"
    assert deliver_due(services) == [] and smtp_server.messages == []
    assert _status(app, mass_mail_id)["state_label"] == "Paused"
    assert "Sending" in _ok(_cli(app, "resume", str(mass_mail_id)))
    assert len(deliver_due(services)) >= 1  # the first is due at once, the rest spaced after


def _outbox_list(app, *more) -> str:
    return _ok(app.test_cli_runner().invoke(args=["crm", "outbox", "list", *more]))


def test_outbox_list_says_held_for_the_mail_a_paused_mass_mail_holds(
    app, services, redis, campaign, smtp_server
):
    mass_mail_id = _queued_whole(app, services, campaign)
    _ok(_cli(app, "pause", str(mass_mail_id)))
    text = _outbox_list(app).splitlines()
    assert len(text) == 3
    assert all(" state=queued attempts=0 due_at=held (mass mail paused) last_reply=" in line
               for line in text)  # fmt: skip
    assert "9999" not in "".join(text)
    rows = [json.loads(line) for line in _outbox_list(app, "--json").splitlines()]
    assert [(r["state"], r["held"], r["due_at"]) for r in rows] == [("queued", True, None)] * 3
    _ok(_cli(app, "resume", str(mass_mail_id)))
    rows = [json.loads(line) for line in _outbox_list(app, "--json").splitlines()]
    assert {r["held"] for r in rows} == {False}
    due = sorted(datetime.fromisoformat(r["due_at"]) for r in rows)
    assert utcnow() - timedelta(minutes=1) < due[0] < due[-1] < utcnow() + timedelta(hours=1)
    assert "held" not in _outbox_list(app)


def test_outbox_list_gives_no_due_time_to_mail_cancelled_while_held(
    app, services, redis, campaign, smtp_server
):
    mass_mail_id = _queued_whole(app, services, campaign)
    _ok(_cli(app, "pause", str(mass_mail_id)))
    _ok(_cli(app, "cancel", str(mass_mail_id)))
    rows = [json.loads(line) for line in _outbox_list(app, "--json").splitlines()]
    assert [(r["state"], r["held"], r["due_at"]) for r in rows] == [("cancelled", False, None)] * 3
    text = _outbox_list(app)
    assert text.count(" state=cancelled attempts=0 due_at=- ") == 3 and "9999" not in text


def test_cancel_says_how_many_queued_mails_it_cancelled(
    app, services, redis, campaign, smtp_server
):
    mass_mail_id = _queued_whole(app, services, campaign)
    cancelled = _ok(_cli(app, "cancel", str(mass_mail_id)))
    assert cancelled.strip() == (
        f"mass mail {mass_mail_id}: Cancelled, 3 queued mails will not be sent"
    )
    assert deliver_due(services) == [] and smtp_server.messages == []
    status = _status(app, mass_mail_id)
    assert status["state"] == "cancelled" and status["counts"]["cancelled"] == 3


def test_a_draft_says_not_started_and_whom_it_would_reach(app, campaign):
    mass_mail_id = _create(app, campaign)
    text = _ok(_cli(app, "status", str(mass_mail_id)))
    assert text.startswith("News: Not started, 3 recipients on the target lists now")
    status = _status(app, mass_mail_id)
    assert status["state_label"] == "Not started" and status["expected"] == 3


def test_help_says_pause_holds_and_cancel_cancels_the_waiting_mail(app):
    def words(*args):  # click wraps the help text
        return " ".join(_ok(_cli(app, *args)).split())

    assert "create, start, pause, resume, cancel, status" in words("--help")
    assert "hold the mail waiting in the outbox until resumed" in words("pause", "--help")
    assert "mail waiting in the outbox is cancelled" in words("cancel", "--help")


def test_bad_input_is_a_message_and_no_mass_mail(app, db, campaign):
    result = _cli(app, "create", "--user", "mara", "--name", "X", "--template", "999",
                  "--account", str(campaign.account_id), "--list", str(campaign.list_id))  # fmt: skip
    assert result.exit_code == 1 and "template" in result.output
    assert db.query(MassMail).count() == 0
    assert _cli(app, "status", "42").exit_code == 1
    bad_time = _cli(app, "create", "--user", "mara", "--name", "X", "--template", "1",
                    "--account", "1", "--list", "1", "--start-at", "tomorrow")  # fmt: skip
    assert bad_time.exit_code == 1 and "YYYY-MM-DD" in bad_time.output

"""`flask crm mass-mail create|start|pause|resume|cancel|status` end to end: the command line,
the database, Redis (the batch job queued), the outbox and the SMTP fixture."""

from __future__ import annotations

import json
from datetime import timedelta

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
    assert "paused" in _ok(_cli(app, "pause", str(mass_mail_id)))
    refused = _cli(app, "pause", str(mass_mail_id))
    assert refused.exit_code == 1 and "Only a running mass mail" in refused.output
    assert "running" in _ok(_cli(app, "resume", str(mass_mail_id)))
    with services.session() as session:
        found = session.get(MassMail, mass_mail_id)
        found.next_batch_at = utcnow() - timedelta(hours=1)
        batches.queue_batch(session, services.blobs, found, found.next_batch_at)
        session.commit()
    deliver_due(services)
    status = _status(app, mass_mail_id)
    assert status["status"] == "complete" and status["total"] == 3
    assert status["counts"]["sent"] == 2 and status["counts"]["opted_out"] == 1
    assert status["counts"]["queued"] == 0 and status["done"] == 3
    text = _ok(_cli(app, "status", str(mass_mail_id)))
    assert "Sent: 2" in text and "Opted out: 1" in text


def test_bad_input_is_a_message_and_no_mass_mail(app, db, campaign):
    result = _cli(app, "create", "--user", "mara", "--name", "X", "--template", "999",
                  "--account", str(campaign.account_id), "--list", str(campaign.list_id))  # fmt: skip
    assert result.exit_code == 1 and "template" in result.output
    assert db.query(MassMail).count() == 0
    assert _cli(app, "status", "42").exit_code == 1
    bad_time = _cli(app, "create", "--user", "mara", "--name", "X", "--template", "1",
                    "--account", "1", "--list", "1", "--start-at", "tomorrow")  # fmt: skip
    assert bad_time.exit_code == 1 and "YYYY-MM-DD" in bad_time.output

"""The periodic mass mail job on real Redis: due batches queued, one send job per due second,
and the mail out through a burst worker to the SMTP fixture."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from crm.campaigns import mass_mail
from crm.db import utcnow
from crm.models import MassMail, OutboxEntry, User
from crm.queue import end_of_second, mail_queue
from workers import jobs


@pytest.fixture
def worker_services(services, monkeypatch):
    monkeypatch.setattr(jobs, "_services", services)
    return services


def test_the_job_queues_due_batches_and_the_worker_sends_them(
    worker_services, db, redis, campaign, smtp_server
):
    user = db.get(User, campaign.user_id)
    found = mass_mail.save(db, user, {"name": "News", "template_id": campaign.template_id,
                                      "mail_account_id": campaign.account_id,
                                      "list_ids": [campaign.list_id], "per_hour": 100_000})  # fmt: skip
    mass_mail.start(db, found, user, now=utcnow() - timedelta(minutes=5))
    found.next_batch_at = utcnow() - timedelta(minutes=5)
    db.commit()
    assert jobs.run_mass_mails()["send_jobs"] >= 1
    db.expire_all()
    assert db.get(MassMail, found.id).status == "complete"
    queue = mail_queue(redis, "mail")
    _until_the_scheduled_send_jobs_are_due(queue)
    worker = SimpleWorker([queue], connection=redis, serializer=queue.serializer)
    worker.work(burst=True, max_jobs=100, with_scheduler=True)
    assert sorted(m["rcpt_tos"][0] for m in smtp_server.messages) == [
        "ann@customer.example", "bob@customer.example", "cyd@customer.example"]  # fmt: skip
    assert jobs.run_mass_mails() == {"send_jobs": 0}  # nothing more is due


def test_a_seconds_send_job_waits_for_the_last_mail_due_in_that_second(
    worker_services, db, redis, campaign
):
    """Three mails 36 ms apart share one second's job; it is scheduled at that second's end,
    never before the last of them is due (RQ keeps whole seconds, rounded down: a job queued
    for its first mail ran before the others were due, and they waited for the sweep)."""
    user = db.get(User, campaign.user_id)
    found = mass_mail.save(db, user, {"name": "News", "template_id": campaign.template_id,
                                      "mail_account_id": campaign.account_id,
                                      "list_ids": [campaign.list_id], "per_hour": 100_000})  # fmt: skip
    mass_mail.start(db, found, user, now=utcnow() - timedelta(minutes=5))
    found.next_batch_at = utcnow() + timedelta(seconds=5)  # its batch is queued 5 s ahead
    db.commit()
    assert jobs.run_mass_mails()["send_jobs"] >= 1
    registry = mail_queue(redis, "mail").scheduled_job_registry
    runs = [registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()]
    dues = sorted(e.due_at for e in db.scalars(select(OutboxEntry)))
    assert len(dues) == 3 and runs
    assert max(runs) >= dues[-1].replace(tzinfo=UTC)


def test_a_job_runs_at_the_end_of_its_due_second():
    assert end_of_second(datetime(2026, 12, 4, 10, 0, 0, 900_000)) == datetime(
        2026, 12, 4, 10, 0, 1
    )
    assert end_of_second(datetime(2026, 12, 4, 10, 0, 1)) == datetime(2026, 12, 4, 10, 0, 1)


def _until_the_scheduled_send_jobs_are_due(queue, limit: float = 5.0) -> None:
    """Send jobs for mail due within this second wait for its end (at most a second)."""
    registry = queue.scheduled_job_registry
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        runs = [registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()]
        if all(run <= datetime.now(UTC) for run in runs):
            return
        time.sleep(0.05)

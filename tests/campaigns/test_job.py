"""The periodic mass mail job on real Redis: due batches queued, one send job per due second,
and the mail out through a burst worker to the SMTP fixture."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import SimpleWorker

from crm.campaigns import mass_mail
from crm.db import utcnow
from crm.models import MassMail, User
from crm.queue import mail_queue
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
    worker = SimpleWorker([queue], connection=redis, serializer=queue.serializer)
    worker.work(burst=True, max_jobs=100)
    assert sorted(m["rcpt_tos"][0] for m in smtp_server.messages) == [
        "ann@customer.example", "bob@customer.example", "cyd@customer.example"]  # fmt: skip
    assert jobs.run_mass_mails() == {"send_jobs": 0}  # nothing more is due

"""Jobs run by a real RQ worker (burst mode) against Redis, Dovecot and the test database."""

from __future__ import annotations

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from crm.models import Email
from crm.queue import mail_queue
from tests.support.mailboxes import make_account, raw_message
from workers import jobs


@pytest.fixture
def worker_services(services, monkeypatch):
    """The worker builds its services from the environment; point it at the test's."""
    monkeypatch.setattr(jobs, "_services", services)
    return services


def _drain(redis):
    queue = mail_queue(redis)
    worker = SimpleWorker([queue], connection=redis, serializer=queue.serializer)
    worker.work(burst=True, max_jobs=100)


def test_dispatch_enqueues_one_fetch_per_active_account_and_never_twice(
    worker_services, redis, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    make_account(worker_services, uid, imap_server, imap_server.new_user())
    make_account(worker_services, uid, imap_server, imap_server.new_user(), is_active=False)
    assert jobs.dispatch_fetches() == 1
    assert jobs.dispatch_fetches() == 0  # still queued
    assert len(mail_queue(redis)) == 1


def test_dispatch_skips_an_account_waiting_to_be_reconnected(
    worker_services, redis, db, make_user, imap_server
):
    """An OAuth2 account whose provider refused the grant is not fetched until its owner
    reconnects it (the fetch would only fail again)."""
    from crm.db import utcnow
    from crm.models import MailAccount

    uid = make_user("rep", ["rep@example.com"])
    waiting = make_account(worker_services, uid, imap_server, imap_server.new_user())
    make_account(worker_services, uid, imap_server, imap_server.new_user())
    db.get(MailAccount, waiting).oauth_reauth_since = utcnow()
    db.commit()
    assert jobs.dispatch_fetches() == 1
    [job] = mail_queue(redis).get_jobs()
    assert waiting not in job.args


def test_fetch_job_imports_and_continues_in_a_new_job(
    worker_services, redis, db, make_user, imap_server, monkeypatch
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append_many(box, [raw_message(message_id=f"<j{i}@test.example>") for i in range(5)])
    account = make_account(worker_services, uid, imap_server, box)
    monkeypatch.setattr(jobs, "JOB_BUDGET", jobs.Budget(batch_size=2, max_batches=1))
    jobs.dispatch_fetches()
    _drain(redis)
    assert db.scalar(select(func.count()).select_from(Email)) == 5
    assert account


def test_a_failing_account_does_not_stop_the_others(
    worker_services, redis, db, make_user, imap_server
):
    from tests.support.dovecot import free_port

    uid = make_user("rep", ["rep@example.com"])
    make_account(worker_services, uid, imap_server, "nobody", imap_port=free_port())
    box = imap_server.new_user()
    imap_server.append(box, raw_message(message_id="<ok@test.example>"))
    make_account(worker_services, uid, imap_server, box)
    jobs.dispatch_fetches()
    _drain(redis)
    assert list(db.scalars(select(Email.message_id))) == ["ok@test.example"]


def test_the_worker_process_runs_jobs_without_warnings(redis, redis_url, tmp_path):
    """`make run`'s worker: starts quietly (rq's CLI warned twice about --serializer)."""
    import os
    import subprocess
    import sys

    queue = mail_queue(redis, "mail")
    job = queue.enqueue("os.getpid")
    env = {**os.environ, "REDIS_URL": redis_url, "CRM_QUEUE": "mail"}
    env["CRM_INSTANCE_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-m", "workers.worker", "--burst"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "used more than once" not in done.stderr + done.stdout
    assert job.get_status(refresh=True) == "finished"


def test_the_procfile_starts_that_worker():
    from pathlib import Path

    procfile = (Path(__file__).resolve().parents[2] / "Procfile").read_text()
    worker = next(line for line in procfile.splitlines() if line.startswith("worker:"))
    assert worker.split()[2:] == ["-m", "workers.worker"]


def test_dispatch_replaces_a_fetch_job_whose_worker_died(
    worker_services, redis, db, make_user, imap_server, monkeypatch
):
    """A worker killed mid-fetch leaves its job "started" in Redis until RQ's own timeout
    (minutes): once the account's lease has lapsed, dispatch queues the fetch again."""
    from datetime import timedelta

    from rq.job import JobStatus

    from crm.db import utcnow
    from crm.inbound.claims import claim
    from crm.models import MailAccount
    from crm.queue import JsonJob, fetch_job_id

    monkeypatch.setattr(worker_services.config, "sync_lease_seconds", 20)
    uid = make_user("rep", ["rep@example.com"])
    account = make_account(worker_services, uid, imap_server, imap_server.new_user())
    assert jobs.dispatch_fetches() == 1
    queue = mail_queue(redis)
    job = JsonJob.fetch(fetch_job_id(account), connection=redis)
    queue.remove(job)  # taken by a worker, which claimed the account
    job.set_status(JobStatus.STARTED)
    with worker_services.session() as s:
        assert claim(s, account)
    assert jobs.dispatch_fetches() == 0  # its worker reports progress: still running
    with worker_services.session() as s:
        s.get(MailAccount, account).sync_claimed_at = utcnow() - timedelta(seconds=21)
    assert jobs.dispatch_fetches() == 1
    assert job.get_status(refresh=True) == "queued" and len(queue) == 1
    db.expire_all()
    assert db.get(MailAccount, account).sync_state == "running"  # the next fetch takes it over

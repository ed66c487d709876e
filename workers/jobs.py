"""Every job entry point; each takes ids, opens its services and calls one domain function."""

from __future__ import annotations

import logging
from datetime import timedelta

from rq import get_current_job
from sqlalchemy import select

from crm.campaigns import batches
from crm.config import Config
from crm.db import utcnow
from crm.inbound.claims import lease_expired
from crm.inbound.sync import Budget, sync_account
from crm.models import MailAccount, MassMail
from crm.outbound import outbox
from crm.outbound.sending import deliver_all_due
from crm.queue import (
    SEND_JOB,
    enqueue_fetch,
    enqueue_send,
    fetch_job_id,
    forget_dead_fetch,
    is_pending,
    mail_queue,
    send_job_id,
)
from crm.services import Services
from workers.schedule import MASS_MAIL_SECONDS

log = logging.getLogger(__name__)

# One job does at most this much, then hands over to a fresh job (resumable backfills).
JOB_BUDGET = Budget(batch_size=200, max_batches=50, max_seconds=25)

_services: Services | None = None


def services() -> Services:
    """The worker process's services, built once from the environment."""
    global _services
    if _services is None:
        _services = Services(Config.from_env())
    return _services


def sync_lease() -> timedelta:
    return services().config.sync_lease


def dispatch_fetches() -> int:
    """Periodic: enqueue one fetch per active account that has none waiting or running (a
    job whose worker died, seen by its account's lapsed lease, is not running)."""
    svc = services()
    queue = mail_queue(svc.redis, svc.config.queue_name)
    with svc.session() as session:
        ids = list(
            session.scalars(
                select(MailAccount.id).where(
                    MailAccount.is_active.is_(True),
                    MailAccount.fetch_since.is_not(None),
                    MailAccount.imap_host != "",  # SMTP-only accounts have nothing to fetch
                    # OAuth2 accounts the provider refused wait for their owner to reconnect.
                    MailAccount.oauth_reauth_since.is_(None),
                )
            )
        )
        dead = lease_expired(session, ids, sync_lease())
    enqueued = 0
    for account_id in ids:
        if account_id in dead:
            forget_dead_fetch(queue, account_id)
        enqueued += enqueue_fetch(queue, account_id)
    return enqueued


def fetch_account(account_id: int) -> dict:
    """Sync one account within the job budget; continue in a new job if there is more."""
    job = get_current_job()
    summary = sync_account(services(), account_id, JOB_BUDGET, stale_after=sync_lease())
    log.info("job %s account %s: %s", job.id if job else "-", account_id, summary.as_dict())
    if summary.error:
        raise RuntimeError(f"account {account_id}: {summary.error}")
    if not summary.done and not summary.busy:
        svc = services()
        next_id = fetch_job_id(account_id) + (
            "-next" if job is None or not job.id.endswith("-next") else ""
        )
        mail_queue(svc.redis, svc.config.queue_name).enqueue(
            fetch_account, account_id, job_id=next_id, job_timeout=600, result_ttl=300
        )
    return summary.as_dict()


def send_due(entry_id: int | None = None) -> list[dict]:
    """Deliver what is due in the outbox (the row this job was queued for among them).

    Every send job drains what is due, one SMTP connection per account, so a burst of mail
    goes out over few connections; rows move to "sending" atomically, so two jobs running at
    once never send the same mail.
    """
    outcomes = deliver_all_due(services())
    log.info("send job for outbox %s: %s outcomes", entry_id, len(outcomes))
    return [o.__dict__ for o in outcomes]


def sweep_outbox() -> dict:
    """Periodic: rows stuck past their lease go back to the queue (or to unknown after DATA
    began), and due rows whose job was lost (Redis restarted) get one again."""
    svc = services()
    with svc.session() as session:
        swept = outbox.sweep(session)
        due = [entry_id for entry_id, at in outbox.due_queued(session, utcnow()) if at <= utcnow()]
    queue = mail_queue(svc.redis, svc.config.queue_name)
    if due and not is_pending(svc.redis, "send-outbox-sweep"):
        queue.enqueue(SEND_JOB, None, job_id="send-outbox-sweep", job_timeout=600, result_ttl=300)
    return {**swept, "due": due}


# Mass mail: one run queues at most this many batches per mass mail (the next run goes on),
# and what falls due before the next run (workers.schedule.MASS_MAIL_SECONDS).
MASS_MAIL_BATCHES_PER_RUN = 20


def _last_of_its_second(jobs: dict, entry_id: int, due_at) -> None:
    """Keep, per second of due time, the mail due last in it: the second's one send job must
    not run before that mail is due (crm.queue.enqueue_send), or it would leave it behind."""
    key = send_job_id(due_at)
    if key not in jobs or due_at > jobs[key][1]:
        jobs[key] = (entry_id, due_at)


def run_mass_mails() -> dict:
    """Periodic (and after a start or resume): queue the due batches of running mass mail,
    each committed on its own, then a send job per second of due time."""
    svc = services()
    ahead = timedelta(seconds=MASS_MAIL_SECONDS)
    jobs: dict[str, tuple[int, object]] = {}
    with svc.session() as session:
        for mass_mail_id in batches.due(session, utcnow() + ahead):
            for _ in range(MASS_MAIL_BATCHES_PER_RUN):
                found = session.get(MassMail, mass_mail_id)
                batch = batches.queue_batch(session, svc.blobs, found, utcnow(), ahead)
                session.commit()
                for entry_id, due_at in batch.queued:
                    _last_of_its_second(jobs, entry_id, due_at)
                if not batch.more:
                    break
    queue = mail_queue(svc.redis, svc.config.queue_name)
    for entry_id, due_at in jobs.values():
        enqueue_send(queue, entry_id, due_at)
    log.info("mass mail job: %s send jobs", len(jobs))
    return {"send_jobs": len(jobs)}

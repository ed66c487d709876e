"""The declared periodic jobs, reconciled with rq-scheduler under deterministic ids.

Reconciling adds what is declared and missing, cancels what is scheduled but no longer
declared (or declared differently), and keeps the rest untouched, so restarting the scheduler
never duplicates a periodic job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis import Redis
from rq_scheduler import Scheduler
from sqlalchemy.orm import Session

from crm import settings
from crm.db import utcnow
from crm.queue import JsonJob

log = logging.getLogger(__name__)
PREFIX = "periodic:"
# The outbox sweeper: often enough that a lost send job costs at most this much delay.
SWEEP_SECONDS = 30
# Mass mail batches: how often due ones are queued (workers.jobs looks this far ahead).
MASS_MAIL_SECONDS = 30


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str
    interval: int  # seconds


def declared(session: Session) -> list[Periodic]:
    """What should run periodically, with intervals from the admin's settings."""
    period = max(int(settings.get(session, "fetch_period_seconds")), 10)
    return [
        Periodic("dispatch-fetches", "workers.jobs.dispatch_fetches", period),
        Periodic("sweep-outbox", "workers.jobs.sweep_outbox", SWEEP_SECONDS),
        Periodic("mass-mail", "workers.jobs.run_mass_mails", MASS_MAIL_SECONDS),
    ]


def make_scheduler(connection: Redis, queue_name: str, interval: int = 5) -> Scheduler:
    return Scheduler(
        queue_name=queue_name, connection=connection, interval=interval, job_class=JsonJob
    )


def reconcile(
    scheduler: Scheduler, wanted: list[Periodic], queue_name: str
) -> dict[str, list[str]]:
    """Make the scheduled periodic jobs match `wanted`; returns what changed."""
    current = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(PREFIX)}
    desired = {PREFIX + p.name: p for p in wanted}
    changes = {"added": [], "cancelled": [], "kept": []}
    for job_id, job in current.items():
        p = desired.get(job_id)
        if p is None or job.func_name != p.func or job.meta.get("interval") != p.interval:
            scheduler.cancel(job)
            job.delete()
            changes["cancelled"].append(job_id)
        else:
            changes["kept"].append(job_id)
    for job_id, p in desired.items():
        if job_id in changes["kept"]:
            continue
        scheduler.schedule(
            scheduled_time=utcnow(),
            func=p.func,
            interval=p.interval,
            repeat=None,
            id=job_id,
            queue_name=queue_name,
            timeout=120,
            result_ttl=600,
        )
        changes["added"].append(job_id)
    return changes


def run_forever(services, poll_seconds: int = 5, stop_after: float | None = None) -> None:
    """The scheduler process: reconcile, then move due jobs to the queue, every few seconds."""
    scheduler = make_scheduler(services.redis, services.config.queue_name, poll_seconds)
    scheduler.register_birth()
    started = time.monotonic()
    try:
        while stop_after is None or time.monotonic() - started < stop_after:
            scheduler.heartbeat()
            with services.session() as session:
                wanted = declared(session)
            if scheduler.acquire_lock():
                changes = reconcile(scheduler, wanted, services.config.queue_name)
                if changes["added"] or changes["cancelled"]:
                    log.info("schedule reconciled: %s", changes)
                scheduler.enqueue_jobs()
                scheduler.remove_lock()
            time.sleep(poll_seconds)
    finally:
        scheduler.remove_lock()
        scheduler.register_death()

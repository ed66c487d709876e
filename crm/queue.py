"""RQ plumbing with the JSON serializer: job arguments are ids, never objects or secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from crm.db import utcnow


class JsonJob(Job):
    """A Job that always (de)serialises with JSON, also when rq-scheduler creates it."""

    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id, connection, serializer or JSONSerializer)

    @classmethod
    def create(cls, *args, serializer=None, **kwargs):
        return super().create(*args, serializer=serializer or JSONSerializer, **kwargs)


def mail_queue(connection: Redis, name: str = "mail") -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer, job_class=JsonJob)


def is_pending(connection: Redis, job_id: str) -> bool:
    """True when a job with this id is waiting or running."""
    try:
        job = JsonJob.fetch(job_id, connection=connection)
    except Exception:  # noqa: BLE001 - NoSuchJobError, or a job saved by an older version
        return False
    return job.get_status(refresh=False) in ("queued", "started", "deferred", "scheduled")


# The fetch job by its import path: the web process queues it without importing the workers.
FETCH_JOB = "workers.jobs.fetch_account"


def fetch_job_id(account_id: int) -> str:
    return f"fetch-account-{account_id}"


def enqueue_fetch(queue: Queue, account_id: int) -> bool:
    """Queue a fetch unless one is already pending for this account."""
    job_id = fetch_job_id(account_id)
    if is_pending(queue.connection, job_id) or is_pending(queue.connection, job_id + "-next"):
        return False
    queue.enqueue(
        FETCH_JOB, account_id, job_id=job_id, job_timeout=600, result_ttl=300, failure_ttl=86400
    )
    return True


def forget_dead_fetch(queue: Queue, account_id: int) -> None:
    """Drop the account's fetch job that the queue still counts as started although its
    worker is gone (the account's claim lease ran out): RQ itself notices only after the job's
    timeout, and until then nothing would fetch the account again."""
    for job_id in (fetch_job_id(account_id), fetch_job_id(account_id) + "-next"):
        if _status(queue.connection, job_id) == "started":
            JsonJob.fetch(job_id, connection=queue.connection).delete()


def _status(connection: Redis, job_id: str) -> str | None:
    try:
        job = JsonJob.fetch(job_id, connection=connection)
    except Exception:  # noqa: BLE001 - no such job, or one saved by an older version
        return None
    return job.get_status(refresh=False)


def _waiting(connection: Redis, job_id: str) -> bool:
    try:
        job = JsonJob.fetch(job_id, connection=connection)
    except Exception:  # noqa: BLE001 - no such job, or one saved by an older version
        return False
    return job.get_status(refresh=False) in ("queued", "scheduled", "deferred")


# The delivery job by its import path, like the fetch job.
SEND_JOB = "workers.jobs.send_due"


def send_job_id(due_at: datetime) -> str:
    """One job per second of due time: a burst of mail handed over together shares a job."""
    return f"send-due-{due_at.replace(tzinfo=UTC).strftime('%Y%m%d%H%M%S')}"


def enqueue_send(queue: Queue, entry_id: int, due_at: datetime) -> None:
    """Queue delivery of what is due at `due_at` (the undo delay or the schedule).

    The job only names a row; it sends whatever is due when it runs, so a job that runs
    late, twice or after an undo does no harm (crm.outbound.outbox owns the state), and a
    job already waiting for that second is not queued again.
    """
    job_id = send_job_id(due_at)
    if _waiting(queue.connection, job_id):
        return  # (a job that already runs may have taken its last batch: queue another)
    kwargs = {"job_id": job_id, "job_timeout": 600, "result_ttl": 300, "failure_ttl": 86400}
    if due_at <= utcnow():
        queue.enqueue(SEND_JOB, entry_id, **kwargs)
    else:
        queue.enqueue_at(end_of_second(due_at).replace(tzinfo=UTC), SEND_JOB, entry_id, **kwargs)


def end_of_second(due_at: datetime) -> datetime:
    """When a job for mail due at `due_at` may run. RQ's scheduler keeps whole seconds,
    rounded down: queued for its due second, the job could run before the mail is due, find
    nothing to send, and leave the mail to the outbox sweep (up to 30 s later)."""
    whole = due_at.replace(microsecond=0)
    return whole if whole == due_at else whole + timedelta(seconds=1)

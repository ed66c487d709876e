"""kill -9 of a real worker process in the middle of an SMTP transaction.

The worker (`python -m workers.worker --burst`, RQ forking a work horse for the job) delivers
through the scriptable SMTP server, which is told to go silent either after the final dot (the
server has the message) or at the DATA command (it has not). The worker and its horse are then
killed with SIGKILL, the sweeper runs past the lease, and a second worker is given a send job.

What the code promises (crm/outbound/outbox.py): the phase "data" is committed before MAIL
FROM, so a row found past its lease in that phase is marked unknown and never sent again by
itself. At the DATA command the server has not got the message, yet the row is in phase
"data" too: the outbox cannot tell the two apart, so both end as unknown (the safe side: at
worst the user is asked about a mail that was in fact not delivered, never a mail twice).

Every wait is bounded (a poll with a deadline); everything is on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import syntax
from sqlalchemy import select

from crm.db import utcnow
from crm.models import Email, Notification, OutboxEntry
from crm.models.outbox import PHASE_DATA, SENDING, UNKNOWN
from crm.outbound import drafts, outbox
from crm.outbound.drafts import DraftInput
from crm.queue import SEND_JOB, JsonJob, enqueue_send, mail_queue
from tests.support.smtp import _ScriptedSMTP
from workers import jobs

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30  # seconds: the longest any single wait may take (the SMTP client's own timeout)

# The production worker, optionally with a shorter lease (patched before the fork, so the work
# horse that runs the job has it too).
WORKER = """
import sys
from datetime import timedelta
from crm.outbound import outbox
if len(sys.argv) > 1:
    outbox.LEASE = timedelta(seconds=float(sys.argv[1]))
from workers.worker import main
main(["--burst"])
"""


# --- helpers -------------------------------------------------------------------------------


def _until(what: str, check, timeout: float = WAIT, every: float = 0.05):
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class _SignallingSMTP(_ScriptedSMTP):
    """The scripted server, also telling the test the moment a DATA command arrives."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.crm_server.data_command_seen.set()
        await super().smtp_DATA(arg)


def _signal_data_commands(server) -> threading.Event:
    server.data_command_seen = threading.Event()
    controller = server.controller
    controller.factory = lambda: _SignallingSMTP(server, **controller.SMTP_kwargs)
    return server.data_command_seen


def _worker_env(config) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "REDIS_URL": config.redis_url,
        "CRM_QUEUE": config.queue_name,
        "CRM_INSTANCE_DIR": str(config.instance_dir),
        "CRM_DATA_DIR": str(config.data_dir),
        "SECRET_KEY": config.secret_key,
        "CRM_MAIL_HOST_ALLOWLIST": config.mail_host_allowlist,
    }


def _start_worker(config, log: Path, lease_seconds: float | None = None) -> subprocess.Popen:
    args = [sys.executable, "-c", WORKER] + ([str(lease_seconds)] if lease_seconds else [])
    with log.open("ab") as out:
        return subprocess.Popen(
            args, cwd=ROOT, env=_worker_env(config), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so nothing else is signalled
        )  # fmt: skip


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _horse_of(worker: subprocess.Popen) -> int:
    """The work horse RQ forked for the job (it calls setsid, so it has its own group)."""
    [horse] = _until("the work horse", lambda: _children(worker.pid))
    return horse


def _kill_9(worker: subprocess.Popen, horse: int, who: str) -> None:
    """SIGKILL the horse (it holds the SMTP connection), and with "both" the worker too: the
    machine or container going down. "horse" alone is the OOM killer's choice."""
    os.kill(horse, signal.SIGKILL)
    if who == "both":
        os.killpg(worker.pid, signal.SIGKILL)
    _until("the work horse to die", lambda: not _alive(horse))
    worker.wait(timeout=WAIT)  # a surviving burst worker notes the dead horse and exits


def _queue_mail(db, services, user, subject="Offer") -> outbox.Handed:
    draft = DraftInput(
        from_address="rep@example.com",
        to="Ann Buyer <ann@customer.example>",
        subject=subject,
        body="<p>Dear Ann,</p><p>our offer.</p>",
    )
    email = drafts.save(db, services.blobs, user, draft)
    handed = outbox.submit(db, services.blobs, user, email)
    db.commit()
    return handed


def _entry(db, entry_id: int) -> OutboxEntry:
    db.rollback()  # a fresh read: end whatever the session saw before
    db.expire_all()
    return db.get(OutboxEntry, entry_id)


def _no_resend(db, config, redis, tmp_path, smtp_server, entry_id: int, received: int) -> None:
    """The server answers normally again; a new send job runs in a fresh worker process and
    the sweeper runs again: nothing reaches the server, nothing changes on the row."""
    smtp_server.script(hang=None)  # answers again: a resend would be delivered and counted
    connections = smtp_server.connections
    queue = mail_queue(redis, config.queue_name)
    enqueue_send(queue, entry_id, utcnow())  # as if the user's job were queued again
    probe = queue.enqueue(SEND_JOB, None, job_id="resend-probe", result_ttl=600)
    second = _start_worker(config, tmp_path / "worker-2.log")
    assert second.wait(timeout=WAIT * 2) == 0, (tmp_path / "worker-2.log").read_text()[-3000:]
    assert JsonJob.fetch(probe.id, connection=redis).return_value() == []  # took nothing
    assert jobs.sweep_outbox() == {"requeued": [], "unknown": [], "due": []}
    assert len(smtp_server.messages) == received
    assert smtp_server.connections == connections  # no new SMTP session at all
    entry = _entry(db, entry_id)
    assert (entry.state, entry.attempts) == (UNKNOWN, 1)
    assert db.get(Email, entry.email_id).status == "Unknown"


@pytest.fixture
def worker_services(services, monkeypatch):
    """jobs.sweep_outbox, run in this process, on the test's services (the worker's own are
    built from the environment, pointing at the same database and Redis)."""
    monkeypatch.setattr(jobs, "_services", services)
    return services


@pytest.fixture
def started(request):
    """Worker processes a test started, killed (by their own id) if the test failed early."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            for pid in _children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=WAIT)


# --- the cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["both", "horse"])
def test_killed_after_the_dot_is_unknown_and_never_resent(
    who, db, config, redis, tmp_path, worker_services, rep, smtp_account, smtp_server, started
):
    smtp_server.script(hang="after_dot")  # keeps the message, then never answers
    handed = _queue_mail(db, worker_services, rep)
    enqueue_send(mail_queue(redis, config.queue_name), handed.entry_id, handed.due_at)
    lease = 3.0
    worker = _start_worker(config, tmp_path / "worker-1.log", lease_seconds=lease)
    started.append(worker)
    _until("the server to hold the message", lambda: smtp_server.messages)
    entry = _entry(db, handed.entry_id)
    assert (entry.state, entry.phase, entry.attempts) == (SENDING, PHASE_DATA, 1)
    assert worker.poll() is None  # still waiting for the reply to the dot
    _kill_9(worker, _horse_of(worker), who)

    # Nobody recorded an outcome: the row is still sending, under the (short) lease.
    entry = _entry(db, handed.entry_id)
    assert (entry.state, entry.phase) == (SENDING, PHASE_DATA)
    assert entry.lease_until <= utcnow() + timedelta(seconds=lease)
    swept = _until(
        "the lease to run out", lambda: jobs.sweep_outbox()["unknown"], timeout=lease + 10
    )
    assert swept == [handed.entry_id]
    entry = _entry(db, handed.entry_id)
    assert entry.state == UNKNOWN and "may have been delivered" in entry.last_reply
    [received] = smtp_server.messages
    assert f"<{handed.message_id}>".encode() in received["data"]
    _no_resend(db, config, redis, tmp_path, smtp_server, handed.entry_id, received=1)


def test_killed_at_the_data_command_is_unknown_too_and_never_sent(
    db, config, redis, tmp_path, worker_services, rep, smtp_account, smtp_server, started
):
    """Phase "data" is committed before MAIL FROM, so a worker that dies before the server
    has the message leaves the same row as one that dies after the dot: unknown, not resent."""
    data_command = _signal_data_commands(smtp_server)
    smtp_server.script(hang="before_data")  # MAIL and RCPT accepted, DATA never answered
    handed = _queue_mail(db, worker_services, rep)
    enqueue_send(mail_queue(redis, config.queue_name), handed.entry_id, handed.due_at)
    worker = _start_worker(config, tmp_path / "worker-1.log")  # the real lease: 5 minutes
    started.append(worker)
    _until("the DATA command", data_command.is_set)
    entry = _entry(db, handed.entry_id)
    assert (entry.state, entry.phase, entry.attempts) == (SENDING, PHASE_DATA, 1)
    assert worker.poll() is None and smtp_server.messages == []
    _kill_9(worker, _horse_of(worker), "both")

    # Inside the lease the sweeper leaves the row alone (its worker might still be alive).
    assert outbox.sweep(db, utcnow()) == {"requeued": [], "unknown": []}
    db.commit()
    assert _entry(db, handed.entry_id).state == SENDING
    after_lease = utcnow() + outbox.LEASE + timedelta(seconds=1)
    assert outbox.sweep(db, after_lease) == {"requeued": [], "unknown": [handed.entry_id]}
    db.commit()
    assert smtp_server.messages == []  # it was in fact never delivered
    _no_resend(db, config, redis, tmp_path, smtp_server, handed.entry_id, received=0)


def test_killed_before_the_data_phase_is_requeued_and_sent_once(
    db, config, redis, tmp_path, worker_services, rep, smtp_account, smtp_server, started
):
    """The other side of the line: a row the killed worker held but had not begun (it waited
    behind the first mail on the connection) is still in phase connect, so the sweeper puts it
    back in the queue and the next worker sends it, once."""
    smtp_server.script(hang="after_dot")
    hold = _queue_mail(db, worker_services, rep, subject="First")  # occupies the connection
    handed = _queue_mail(db, worker_services, rep, subject="Second")
    enqueue_send(mail_queue(redis, config.queue_name), hold.entry_id, hold.due_at)
    worker = _start_worker(config, tmp_path / "worker-1.log")
    started.append(worker)
    _until("the server to hold the first message", lambda: smtp_server.messages)
    # The worker took both rows; the second waits, in phase connect, behind the first.
    second = _entry(db, handed.entry_id)
    assert (second.state, second.phase, second.attempts) == (SENDING, "connect", 0)
    _kill_9(worker, _horse_of(worker), "both")
    after_lease = utcnow() + outbox.LEASE + timedelta(seconds=1)
    assert outbox.sweep(db, after_lease) == {
        "requeued": [handed.entry_id],
        "unknown": [hold.entry_id],
    }
    db.commit()
    smtp_server.script(hang=None)
    enqueue_send(mail_queue(redis, config.queue_name), handed.entry_id, utcnow())
    again = _start_worker(config, tmp_path / "worker-2.log")
    started.append(again)
    assert again.wait(timeout=WAIT * 2) == 0, (tmp_path / "worker-2.log").read_text()[-3000:]
    subjects = [m["data"].split(b"Subject: ")[1].split(b"\r\n")[0] for m in smtp_server.messages]
    assert subjects == [b"First", b"Second"]  # each once
    assert (_entry(db, handed.entry_id).state, _entry(db, hold.entry_id).state) == (
        "sent",
        UNKNOWN,
    )


def test_the_owner_is_told_when_the_sweeper_marks_a_mail_unknown(db, services, rep, smtp_account):
    handed = _queue_mail(db, services, rep)
    [entry_id] = outbox.take_due(db, utcnow())
    outbox.mark_data_phase(db, db.get(OutboxEntry, entry_id))
    db.commit()
    outbox.sweep(db, utcnow() + outbox.LEASE + timedelta(seconds=1))
    db.commit()
    notes = db.scalars(select(Notification).where(Notification.user_id == rep.id)).all()
    assert [n.kind for n in notes] == ["send_problem"]
    assert handed.email_id == notes[0].data.get("email_id")

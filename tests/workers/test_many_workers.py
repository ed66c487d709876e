"""Several worker processes over one PostgreSQL and one Redis (issue 14): each account is
fetched by one worker at a time, every mail is stored once, and the account of a worker killed
in the middle of a batch is taken over by another worker once its lease has run out."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Worker
from sqlalchemy import func, select

from crm.models import Email, EmailLocation, EmailUserState, MailAccount, SyncRun
from crm.queue import JsonJob, fetch_job_id
from crm.secrets import new_key
from tests.support import databases
from tests.support.mailboxes import make_account, raw_message
from workers import jobs

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3
ACCOUNTS = 10
MAILS = 60  # in each account's INBOX, besides the shared ones
VICTIM_MAILS = 1200  # six batches of the job budget: a kill lands in the middle of the fetch
SHARED = 30  # mails in two or three accounts' INBOX, as colleagues' mailboxes are
LEASE = 15  # seconds; longer than a batch takes on a busy machine

pytestmark = pytest.mark.skipif(
    databases.backend() != "postgresql",
    reason="several worker processes writing at once: issue 14 asks it of PostgreSQL "
    "(SQLite takes one writer at a time, on one machine)",
)


def _mailboxes(imap_server, n: int) -> list[tuple[str, list[str]]]:
    """n fresh mailboxes, each with its own mail and a share of the common mail."""
    boxes = [(imap_server.new_user(), []) for _ in range(n)]
    for i, (_, ids) in enumerate(boxes):
        count = VICTIM_MAILS if i == 0 else MAILS
        ids.extend(f"own-{i}-{k}@many.example" for k in range(count))
    for k in range(SHARED):
        for i in {k % n, (k + 1) % n, (k + 2) % n if k % 3 == 0 else k % n}:
            boxes[i][1].append(f"shared-{k}@many.example")
    for user, ids in boxes:
        imap_server.deliver_many(user, [raw_message(subject=m, message_id=f"<{m}>") for m in ids])
    return boxes


def _worker_env(config, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        DATABASE_URL=config.database_url,
        REDIS_URL=config.redis_url,
        SECRET_KEY=config.secret_key,
        CRM_SECRETS_KEY=config.read_or_create_instance_secret("secrets.key", new_key),
        CRM_INSTANCE_DIR=str(tmp_path / "worker-instance"),
        CRM_DATA_DIR=str(tmp_path / "worker-data"),
        CRM_MAIL_HOST_ALLOWLIST=config.mail_host_allowlist,
        CRM_QUEUE=config.queue_name,
        CRM_SYNC_LEASE_SECONDS=str(LEASE),
    )
    return env


def _descendants(pid: int) -> list[int]:
    """The process and every process below it (the work horse, its parse helper)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _kill_tree(pid: int) -> None:
    for p in _descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait(what: str, condition, timeout: float, logs: Path, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    tails = "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(logs.glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def _worker_of(redis, account_id: int) -> tuple[str, int] | None:
    """(name, pid) of the worker running the account's fetch job, if one runs it."""
    for job_id in (fetch_job_id(account_id), fetch_job_id(account_id) + "-next"):
        if not JsonJob.exists(job_id, connection=redis):
            continue
        job = JsonJob.fetch(job_id, connection=redis)
        if job.get_status() == "started" and job.worker_name:
            worker = Worker.find_by_key(
                Worker.redis_worker_namespace_prefix + job.worker_name, redis
            )
            if worker is not None and worker.pid:
                return job.worker_name, worker.pid
    return None


def _running_with_mail(services, account_id: int) -> bool:
    with services.session() as s:
        run = s.scalars(
            select(SyncRun).where(SyncRun.mail_account_id == account_id).order_by(SyncRun.id)
        ).first()
        return run is not None and run.state == "running" and run.imported > 0


def _all_fetched(services, expected: dict[int, int]) -> bool:
    jobs.dispatch_fetches()  # as the scheduler does, every fetch period
    with services.session() as s:
        stored = dict(
            s.execute(
                select(EmailLocation.mail_account_id, func.count()).group_by(
                    EmailLocation.mail_account_id
                )
            ).all()
        )
        running = s.scalar(select(func.count()).where(MailAccount.sync_state == "running"))
    return stored == expected and running == 0


def _overlapping_runs(db) -> list[tuple[int, int]]:
    """Pairs of one account's sync runs that were open at the same time: double claims."""
    runs = db.execute(
        select(
            SyncRun.mail_account_id, SyncRun.id, SyncRun.started_at, SyncRun.finished_at
        ).order_by(SyncRun.mail_account_id, SyncRun.started_at)
    ).all()
    overlaps = []
    for before, after in itertools.pairwise(runs):
        same = before.mail_account_id == after.mail_account_id
        if same and (before.finished_at is None or after.started_at < before.finished_at):
            overlaps.append((before.id, after.id))
    return overlaps


def test_three_workers_store_every_mail_once_and_take_over_a_killed_workers_account(
    services, db, redis, make_user, imap_server, config, tmp_path, monkeypatch
):
    monkeypatch.setattr(jobs, "_services", services)
    monkeypatch.setattr(services.config, "sync_lease_seconds", LEASE)
    boxes = _mailboxes(imap_server, ACCOUNTS)
    accounts = {}
    for i, (box, ids) in enumerate(boxes):
        user = make_user(f"rep{i}", [f"rep{i}@example.com"])
        accounts[make_account(services, user, imap_server, box)] = (user, ids)
    victim = next(iter(accounts))
    logs = tmp_path / "logs"
    logs.mkdir()
    env = _worker_env(config, tmp_path)
    procs: list[subprocess.Popen] = []
    try:
        for k in range(WORKERS):
            with (logs / f"worker-{k}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "workers.worker"],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        _wait("three workers", lambda: len(Worker.all(connection=redis)) >= WORKERS, 60, logs)
        assert jobs.dispatch_fetches() == ACCOUNTS
        _wait("the victim's batch", lambda: _running_with_mail(services, victim), 120, logs)
        name, pid = _wait("the victim's worker", lambda: _worker_of(redis, victim), 30, logs)
        _kill_tree(pid)
        next(p for p in procs if p.pid == pid).wait(10)
        db.expire_all()
        last_heartbeat = db.get(MailAccount, victim).sync_claimed_at
        db.rollback()

        expected = {account: len(set(ids)) for account, (_, ids) in accounts.items()}
        _wait("every mail", lambda: _all_fetched(services, expected), 300, logs, interval=1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)
                proc.wait(10)

    # Every mail once: one Email per Message-ID, one state per reader, one location per copy.
    all_ids = {m for _, ids in accounts.values() for m in ids}
    assert db.scalar(select(func.count()).select_from(Email)) == len(all_ids)
    assert set(db.scalars(select(Email.message_id))) == all_ids
    for account, (user, ids) in accounts.items():
        seen = db.scalars(
            select(Email.message_id).join(EmailUserState).where(EmailUserState.user_id == user)
        ).all()
        assert sorted(seen) == sorted(set(ids)), f"account {account}"
    # One worker at a time per account; the killed worker's run was closed when another
    # worker took the account over, after the lease, and that one finished the fetch.
    assert _overlapping_runs(db) == []
    runs = db.scalars(
        select(SyncRun).where(SyncRun.mail_account_id == victim).order_by(SyncRun.id)
    ).all()
    killed, takeover = runs[0], runs[1]
    assert killed.state == "failed" and "took over" in killed.error
    assert takeover.started_at >= last_heartbeat + timedelta(seconds=LEASE)
    assert takeover.state in ("done", "partial") and takeover.imported > 0
    assert _worker_of(redis, victim) is None or _worker_of(redis, victim)[0] != name

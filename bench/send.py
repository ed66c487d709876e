"""Send benchmark: mail through the outbox and RQ workers vs bare smtplib, to the same sink.

Usage:  .venv/bin/python bench/send.py [-n 1000] [--workers 1] [--database-url URL]
            [--attach-every 10] [--drain-seconds 30] [--json FILE] [--profile FILE]

In one run, against one local aiosmtpd sink (a minimal handler that counts and drops what it
is given, in a process of its own so that it never shares an interpreter with a sender; no
TLS, no login):
  - queue: n mails written as drafts and handed over with outbox.submit, one request's worth
    each, exactly as the compose page does (save, commit, submit, commit, enqueue the job)
  - smtplib: the same n messages' bytes (read back from the blob store) and envelopes, sent
    with smtplib.SMTP.sendmail over one connection
  - workers: `python -m workers.worker --burst` processes (the Procfile's worker) on a private
    queue deliver the n queued mails; timed from their start to the last mail at the sink
    ("delivered") and to the last outcome in the database ("recorded"). Each mail queued a
    job of its own and the first job sends everything that is due, so the other n - 1 find
    nothing; they are watched for --drain-seconds more, which gives the cost of one job
    ("seconds_per_empty_job", or "drained_seconds" when they all ran)
  - running workers: the same rows queued again for workers started beforehand and idle (as
    in production, where a worker starts once), one send job per second of due time, as
    compose's enqueue_send leaves them;
    timed from the first job queued to the last outcome in the database
and reports mails/s for each: running workers / smtplib is the target (0.5 or more);
workers / smtplib with the burst workers' start included is reported beside it.

The database is SQLite in a temporary folder by default. `--database-url` names a PostgreSQL
server (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test): a fresh database is created
there for the run and dropped afterwards. Redis: a free database index is claimed the way the
tests claim one (tests/support/redisdb.py) and a queue named for this run is used, so nothing
else is touched. `--profile FILE` then runs the delivery twice more in this process (the same
deliver_due the job calls, without RQ, the rows put back in the queue each time): once timed
by part (SMTP conversation, SQL statements, commits, the rest: Python in crm and SQLAlchemy's
ORM) and once under cProfile, whose stats go to FILE.
Nothing is asserted: this reports figures.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import pstats
import random
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis
from sqlalchemy import func, select, update

from bench.support import fresh_pg_database, worker_env
from crm import settings
from crm.config import Config
from crm.db import utcnow
from crm.migrations import upgrade
from crm.models import Email, OutboxEntry
from crm.models.outbox import FINAL, PHASE_CONNECT, QUEUED, SENT
from crm.outbound import drafts, outbox
from crm.outbound.drafts import DraftInput, Upload
from crm.outbound.sending import deliver_due
from crm.queue import enqueue_send, mail_queue, send_job_id
from crm.records.users import create_user
from crm.services import Services
from tests.support.dovecot import free_port
from tests.support.redisdb import REDIS_SERVER, claim_index
from tests.support.sending import smtp_only_account

WORDS = [
    "offer",
    "quote",
    "delivery",
    "invoice",
    "meeting",
    "contract",
    "price",
    "discount",
    "order",
    "schedule",
    "support",
    "renewal",
    "proposal",
    "update",
    "review",
    "project",
    "budget",
    "question",
    "answer",
    "thanks",
    "regards",
]


class _Counting:
    """aiosmtpd handler: count sessions, messages and bytes; keep nothing."""

    def __init__(self, counters):
        self.counters = counters

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.counters["connections"].get_lock():
            self.counters["connections"].value += 1
        return responses

    async def handle_DATA(self, server, session, envelope):
        with self.counters["messages"].get_lock():
            self.counters["messages"].value += 1
            self.counters["bytes"].value += len(envelope.original_content or b"")
        return "250 2.0.0 OK: queued"


def _serve(port: int, counters, ready, stop) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_Counting(counters), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class Sink:
    """The SMTP sink in its own process; `.received` and `.connections` read its counters."""

    def __init__(self):
        ctx = multiprocessing.get_context("fork")  # before any thread or connection is made
        self.host, self.port = "127.0.0.1", free_port()
        self._counters = {k: ctx.Value("q", 0) for k in ("connections", "messages", "bytes")}
        ready, self._stop = ctx.Event(), ctx.Event()
        self._proc = ctx.Process(
            target=_serve, args=(self.port, self._counters, ready, self._stop), daemon=True
        )
        self._proc.start()
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")

    @property
    def received(self) -> int:
        return self._counters["messages"].value

    @property
    def connections(self) -> int:
        return self._counters["connections"].value

    @property
    def bytes(self) -> int:
        return self._counters["bytes"].value

    def stop(self) -> None:
        self._stop.set()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def draft_for(rng: random.Random, i: int, attach_every: int) -> DraftInput:
    paragraphs = "".join(f"<p>{sentence(rng, 40)}.</p>" for _ in range(4))  # ~1.5 KB of HTML
    uploads = []
    if attach_every and i % attach_every == 0:
        uploads.append(Upload(f"offer-{i}.pdf", "application/pdf", rng.randbytes(60_000)))
    return DraftInput(
        from_address="bench@example.com",
        to=f"Customer {i} <customer{i}@customer{i % 50}.example>",
        cc="Boss <boss@customer.example>" if i % 5 == 0 else "",
        subject=f"{sentence(rng, 5).capitalize()} #{i}",
        body=f"<p>Dear customer {i},</p>{paragraphs}<p>Regards,<br>Bench</p>",
        uploads=uploads,
    )


def setup(services: Services, sink: Sink) -> int:
    """The sending user and their SMTP-only account on the sink; no undo delay, no caps."""
    with services.session() as session:
        user = create_user(session, "bench", "bench-password", ["bench@example.com"], False, [], "")
        smtp_only_account(session, services, user.id, "bench@example.com", sink.host, sink.port)
        settings.put(session, "undo_send_seconds", 0)
        settings.put(session, "max_sends_per_hour", 0)
        settings.put(session, "max_recipients_per_mail", 0)
        return user.id


def queue_mail(services: Services, user_id: int, n: int, attach_every: int, seed: int) -> dict:
    """n mails handed over one by one, as the compose page's Send does it."""
    from crm.models import User

    rng = random.Random(seed)
    queue = mail_queue(services.redis, services.config.queue_name)
    entries, size = [], 0
    started = time.perf_counter()
    for i in range(n):
        session = services.Session()
        try:
            user = session.get(User, user_id)
            email = drafts.save(session, services.blobs, user, draft_for(rng, i, attach_every))
            session.commit()
            handed = outbox.submit(session, services.blobs, user, email)
            session.commit()
            size += email.size
        finally:
            session.close()
        enqueue_send(queue, handed.entry_id, handed.due_at)
        entries.append(handed.entry_id)
    seconds = time.perf_counter() - started
    return {
        "mails": n,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rate": round(n / seconds, 1),
        "entries": entries,
    }


def messages_of(services: Services, entries: list[int]) -> list[tuple[str, list[str], bytes]]:
    """(MAIL FROM, RCPT TOs, bytes) of every queued mail: what smtplib sends."""
    out = []
    with services.session() as session:
        for entry_id in entries:
            entry = session.get(OutboxEntry, entry_id)
            email = session.get(Email, entry.email_id)
            out.append(
                (
                    entry.from_address,
                    [r.address for r in entry.recipients],
                    services.blobs.get(email.raw_sha256),
                )
            )
    return out


def bare_smtplib(sink: Sink, messages) -> dict:
    before = sink.received
    started = time.perf_counter()
    with smtplib.SMTP(sink.host, sink.port) as client:
        for mail_from, rcpts, raw in messages:
            client.sendmail(mail_from, rcpts, raw)
    seconds = time.perf_counter() - started
    assert sink.received - before == len(messages)  # counted before the 250 was sent
    return {
        "mails": len(messages),
        "seconds": round(seconds, 3),
        "rate": round(len(messages) / seconds, 1),
    }


def final_rows(services: Services) -> int:
    with services.session() as session:
        return session.scalar(
            select(func.count(OutboxEntry.id)).where(OutboxEntry.state.in_(FINAL))
        )


def stop_workers(procs: list[subprocess.Popen]) -> None:
    """SIGTERM: RQ's warm shutdown, the running job finishes (a work horse is a process of
    its own session that a kill of the worker would leave running); SIGKILL after 60 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            for task in Path(f"/proc/{proc.pid}/task").glob("*"):
                for child in (task / "children").read_text().split():
                    os.kill(int(child), 9)
            proc.kill()
            proc.wait(10)


def rq_workers(
    services: Services,
    sink: Sink,
    n: int,
    workers: int,
    logs: Path,
    timeout: float,
    drain_seconds: float,
) -> dict:
    """Start burst workers on the queued mail; time delivery and recording, then watch the
    remaining (no-op) jobs drain for up to `drain_seconds` (0: until the queue is empty)."""
    before = sink.received
    queue = mail_queue(services.redis, services.config.queue_name)
    env = worker_env(services.config)
    started = time.perf_counter()
    procs = []
    for k in range(workers):
        with (logs / f"worker-{k}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "workers.worker", "--burst"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = started + timeout
    first = delivered = recorded = drained = None
    try:
        while time.perf_counter() < deadline:
            got = sink.received - before
            now = time.perf_counter()
            if got and first is None:
                first = now
            if got >= n and delivered is None:
                delivered = now
            if delivered is not None:
                if final_rows(services) >= n:
                    recorded = time.perf_counter()
                    break
                time.sleep(0.02)
            else:
                time.sleep(0.005)
        if recorded is None:
            raise SystemExit(f"workers did not deliver {n} mails in {timeout}s (logs in {logs})")
        jobs_left_at_recorded = len(queue)
        watch_until = recorded + drain_seconds if drain_seconds else deadline
        while time.perf_counter() < min(watch_until, deadline):
            if all(proc.poll() is not None for proc in procs):
                drained = time.perf_counter()
                break
            time.sleep(0.05)
        watched = time.perf_counter() - recorded
        jobs_left = len(queue)
    finally:
        stop_workers(procs)
    with services.session() as session:
        sent = session.scalar(select(func.count(OutboxEntry.id)).where(OutboxEntry.state == SENT))
    recorded_s = recorded - started
    jobs_run = jobs_left_at_recorded - jobs_left
    return {
        "workers": workers,
        "mails": n,
        "sent": sent,
        "received_by_sink": sink.received - before,
        "smtp_connections": None,  # filled in by the caller
        "first_mail_seconds": round(first - started, 2),
        "delivered_seconds": round(delivered - started, 2),
        "recorded_seconds": round(recorded_s, 2),
        "rate": round(n / recorded_s, 1),
        "rate_after_first_mail": round((n - 1) / (recorded - first), 1) if n > 1 else None,
        # Each mail queued its own job; the first drained everything, the rest find nothing.
        "jobs_left_when_recorded": jobs_left_at_recorded,
        "drained_seconds": round(drained - started, 2) if drained else None,
        "jobs_left_unwatched": jobs_left,
        "seconds_per_empty_job": round(watched * workers / jobs_run, 3) if jobs_run else None,
    }


def warm_rq_workers(
    services: Services, sink: Sink, entries: list[int], workers: int, logs: Path, timeout: float
) -> dict:
    """The same rows queued again for workers that are already running and idle (as they are
    in production: a worker starts once, not once per burst of mail); the send jobs are then
    queued as the compose page queues them, and the time runs from there to the last outcome
    in the database."""
    from rq import Worker

    queue = mail_queue(services.redis, services.config.queue_name)
    queue.empty()  # the burst run's left-over jobs would send the rows before the clock starts
    requeue(services, entries)
    before = sink.received
    env = worker_env(services.config)
    procs = []
    for k in range(workers):
        with (logs / f"warm-worker-{k}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "workers.worker"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        booted = time.perf_counter()
        deadline = booted + timeout
        while time.perf_counter() < deadline:
            idle = [w for w in Worker.all(queue=queue) if w.get_state() == "idle"]
            if len(idle) >= workers:
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"the workers did not start in {timeout}s (logs in {logs})")
        boot_seconds = time.perf_counter() - booted
        final_before = final_rows(services) - len(entries)
        started = time.perf_counter()
        with services.session() as session:
            due = dict(
                session.execute(
                    select(OutboxEntry.id, OutboxEntry.due_at).where(OutboxEntry.id.in_(entries))
                ).all()
            )
        # One job per second of due time, as compose's enqueue_send makes them (its check for
        # a job already waiting is the web request's cost, not the workers').
        firsts = {send_job_id(at): entry_id for entry_id, at in sorted(due.items(), reverse=True)}
        for entry_id in sorted(firsts.values()):
            enqueue_send(queue, entry_id, due[entry_id])
        first = recorded = None
        while time.perf_counter() < deadline:
            if first is None and sink.received > before:
                first = time.perf_counter()
            if sink.received - before >= len(entries):
                if final_rows(services) - final_before >= len(entries):
                    recorded = time.perf_counter()
                    break
                time.sleep(0.02)
            else:
                time.sleep(0.005)
        if recorded is None:
            raise SystemExit(f"warm workers did not deliver in {timeout}s (logs in {logs})")
    finally:
        stop_workers(procs)
    n, seconds = len(entries), recorded - started
    return {
        "workers": workers,
        "mails": n,
        "received_by_sink": sink.received - before,
        "worker_start_seconds": round(boot_seconds, 2),
        "first_mail_seconds": round(first - started, 3),
        "recorded_seconds": round(seconds, 2),
        "rate": round(n / seconds, 1),
    }


def requeue(services: Services, entries: list[int]) -> None:
    """Put the delivered rows back in the queue (for the profiled rerun)."""
    with services.session() as session:
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(entries))
            .values(state=QUEUED, phase=PHASE_CONNECT, due_at=utcnow(), lease_until=None)
        )


def timed_by_part(services: Services, entries: list[int]) -> dict:
    """One more delivery of the same rows, its time split into parts that do not overlap: the
    SMTP conversation (SmtpConnection.send), SQL statements (cursor execute), the database's
    commits (DBAPI commit) and the rest (Python: crm code and SQLAlchemy's ORM)."""
    from sqlalchemy import event

    from crm.mail import smtp as smtp_module

    requeue(services, entries)
    parts = {"smtp_send": 0.0, "sql_statements": 0.0, "db_commit": 0.0}
    counts = {"statements": 0, "commits": 0}
    dialect = services.engine.dialect
    original_send, original_commit = smtp_module.SmtpConnection.send, dialect.do_commit

    def timed_send(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return original_send(self, *args, **kwargs)
        finally:
            parts["smtp_send"] += time.perf_counter() - t

    def timed_commit(dbapi_connection):
        counts["commits"] += 1
        t = time.perf_counter()
        try:
            return original_commit(dbapi_connection)
        finally:
            parts["db_commit"] += time.perf_counter() - t

    def before(conn, *_):
        conn.info["bench_t"] = time.perf_counter()

    def after(conn, *_):
        counts["statements"] += 1
        parts["sql_statements"] += time.perf_counter() - conn.info.pop("bench_t")

    event.listen(services.engine, "before_cursor_execute", before)
    event.listen(services.engine, "after_cursor_execute", after)
    smtp_module.SmtpConnection.send = timed_send
    dialect.do_commit = timed_commit
    started = time.perf_counter()
    total = 0
    try:
        while batch := deliver_due(services):
            total += len(batch)
    finally:
        seconds = time.perf_counter() - started
        smtp_module.SmtpConnection.send = original_send
        del dialect.do_commit
        event.remove(services.engine, "before_cursor_execute", before)
        event.remove(services.engine, "after_cursor_execute", after)
    parts["rest_python"] = seconds - sum(parts.values())
    return {
        "mails": total,
        "seconds": round(seconds, 2),
        "rate": round(total / seconds, 1),
        "statements_per_mail": round(counts["statements"] / total, 1),
        "commits_per_mail": round(counts["commits"] / total, 2),
        "ms_per_mail": {
            "total": round(1000 * seconds / total, 2),
            **{k: round(1000 * v / total, 2) for k, v in parts.items()},
        },
    }


def profiled_delivery(services: Services, entries: list[int], path: Path) -> dict:
    requeue(services, entries)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    total = 0
    while batch := deliver_due(services):
        total += len(batch)
    profile.disable()
    seconds = time.perf_counter() - started
    profile.dump_stats(path)
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(r"crm/", 30)
    return {"mails": total, "seconds": round(seconds, 2), "rate": round(total / seconds, 1)}


def run(args, sink: Sink, work: Path, database_url: str, redis_url: str) -> dict:
    config = Config(
        instance_dir=work / "instance",
        database_url=database_url,
        redis_url=redis_url,
        secret_key="bench-secret",
        data_dir=work / "data",
        mail_host_allowlist=f"{sink.host}:{sink.port}",
        queue_name=f"bench-send-{uuid.uuid4().hex[:8]}",
    )
    upgrade(config.database_url)
    services = Services(config)
    try:
        user_id = setup(services, sink)
        queued = queue_mail(services, user_id, args.n, args.attach_every, args.seed)
        entries = queued.pop("entries")
        bare = bare_smtplib(sink, messages_of(services, entries))
        connections = sink.connections
        logs = work / "logs"
        logs.mkdir()
        workers = rq_workers(
            services, sink, args.n, args.workers, logs, args.timeout, args.drain_seconds
        )
        workers["smtp_connections"] = sink.connections - connections
        warm = warm_rq_workers(services, sink, entries, args.workers, logs, args.timeout)
        results = {
            "database": services.engine.dialect.name,
            "mails": args.n,
            "queue": queued,
            "smtplib": bare,
            "rq_workers": workers,
            "rq_workers_running": warm,
            # The target (0.5 or more): workers already running, as they are in production.
            "running_workers_vs_smtplib": round(warm["rate"] / bare["rate"], 3),
            # Including the start of a worker process for this one burst.
            "workers_vs_smtplib": round(workers["rate"] / bare["rate"], 3),
            "queue_and_workers_vs_smtplib": round(
                args.n / (queued["seconds"] + workers["recorded_seconds"]) / bare["rate"], 3
            ),
        }
        if args.profile:
            results["in_process_by_part"] = timed_by_part(services, entries)
            results["in_process_cprofile"] = profiled_delivery(services, entries, args.profile)
        return results
    finally:
        services.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1, help="RQ worker processes")
    ap.add_argument("--database-url", help="a PostgreSQL server; default: SQLite in a temp dir")
    ap.add_argument("--attach-every", type=int, default=10, help="a 60 KB PDF on every Nth mail")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--timeout", type=float, default=600, help="seconds the workers may take")
    ap.add_argument(
        "--drain-seconds",
        type=float,
        default=30,
        help="after delivery, watch the left-over jobs run this long (0: until none is left)",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", type=Path, help="cProfile the delivery in-process too")
    args = ap.parse_args()
    sink = Sink()  # first: forked before this process has threads or connections
    work = Path(tempfile.mkdtemp(prefix="crm-bench-send-"))
    index, release = claim_index()
    redis_url = f"{REDIS_SERVER}/{index}"
    drop = lambda: None
    try:
        if args.database_url:
            database_url, drop = fresh_pg_database(args.database_url, "crm_bench_send")
        else:
            database_url = f"sqlite:///{work}/bench.sqlite3"
        results = run(args, sink, work, database_url, redis_url)
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        sink.stop()
        drop()
        conn = Redis.from_url(redis_url)
        conn.flushdb()
        conn.close()
        release()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

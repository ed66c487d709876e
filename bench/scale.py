"""Scale benchmark: many mail accounts fetched by 1, 2 and 4 RQ workers over one PostgreSQL.

Usage:  .venv/bin/python bench/scale.py [--accounts 20] [--mails 500] [--workers 1,2,4]
            [--seed 42] [--seed-script PATH] [--timeout 1800] [--json FILE]

Starts a private Dovecot (tests/support/dovecot.py) and fills `--accounts` mailboxes of
`--mails` messages each: most of each INBOX comes from the realistic generator
(../shared/mailbench/seed.py, a seed per mailbox), and a tenth is colleagues' mail, as in a
team: the same bytes and Message-ID in two or three accounts' INBOX (mailbox i also holds the
first 30 messages of mailbox i+1 and the first 20 of mailbox i+2). Then, in one run:
  - imap-tools: the bare fetch(bulk=200, mark_seen=False) of every mailbox, touching every
    field, one after the other in one process (no CRM work), after a warm-up pass
  - for each worker count: a fresh PostgreSQL database (dropped afterwards), one user and
    account per mailbox, one fetch job per account queued as the scheduler's dispatch queues
    them, then that many `python -m workers.worker --burst` processes (the Procfile's
    worker) on a queue named for the run, in a Redis database index claimed the way the tests
    claim one (tests/support/redisdb.py). Timed from the workers' start to the last one's
    exit ("wall"; also from the first sync run's start to the last one's end, "fetch"):
    mails per second, mails stored, duplicates, failed runs, and double claims (two sync
    runs of one account open at the same time; must be 0)
Nothing is asserted: this reports figures. The machine's other load counts: say so with them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis
from sqlalchemy import func, select

from bench.support import bare_imap_tools, fresh_pg_database, worker_env
from crm.accounts.manage import create_account
from crm.config import Config
from crm.migrations import upgrade
from crm.models import Email, EmailLocation, EmailUserState, SyncRun
from crm.queue import enqueue_fetch, mail_queue
from crm.records.users import create_user
from crm.services import Services
from tests.support.dovecot import PASSWORD, Dovecot
from tests.support.redisdb import REDIS_SERVER, claim_index

PG_SERVER = os.environ.get("CRM_BENCH_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")
# Colleagues' mail: mailbox i also holds this many first messages of mailbox i + k.
SHARED_FROM_NEXT = {1: 30, 2: 20}


def seed_mailboxes(server: Dovecot, boxes: list[str], mails: int, seed: int, script: Path):
    """Each mailbox: its own generated mail, then its colleagues' first messages."""
    shared = sum(SHARED_FROM_NEXT.values())
    own: dict[str, list[bytes]] = {}
    for i, box in enumerate(boxes):
        maildir = server.dir / "mail" / box
        subprocess.run(
            [sys.executable, str(script), "-n", str(mails - shared), "--seed", str(seed + i)]
            + ["--maildir", str(maildir), "--owner-email", f"{box}@mailbench.example"],
            check=True,
            capture_output=True,
            timeout=900,
        )
        files = sorted(p for sub in ("new", "cur") for p in (maildir / sub).iterdir())
        own[box] = [p.read_bytes() for p in files[: max(SHARED_FROM_NEXT.values())]]
    for i, box in enumerate(boxes):
        copies = [
            raw
            for step, count in SHARED_FROM_NEXT.items()
            for raw in own[boxes[(i + step) % len(boxes)]][:count]
        ]
        server.deliver_many(box, copies)  # also makes Dovecot index the generated mail


def add_accounts(services: Services, server: Dovecot, boxes: list[str]) -> list[int]:
    """One user per mailbox, each reading it through a personal account."""
    ids = []
    with services.session() as session:
        for box in boxes:
            user = create_user(session, box, "bench-password", [f"{box}@mailbench.example"])
            account = create_account(
                session,
                services.secret_box,
                user_id=user.id,
                email=f"{box}@mailbench.example",
                host=server.host,
                port=server.port,
                security="none",
                login=box,
                password=PASSWORD,
                since=date(2000, 1, 1),
            )
            session.flush()
            ids.append(account.id)
    return ids


def double_claims(session) -> int:
    """Sync runs of one account open at the same time (runs sorted by start: any overlap shows
    between neighbours). A run never closed counts as open to the end."""
    runs = session.execute(
        select(SyncRun.mail_account_id, SyncRun.started_at, SyncRun.finished_at).order_by(
            SyncRun.mail_account_id, SyncRun.started_at
        )
    ).all()
    return sum(
        1
        for a, b in itertools.pairwise(runs)
        if a.mail_account_id == b.mail_account_id
        and (a.finished_at is None or b.started_at < a.finished_at)
    )


def figures(session) -> dict:
    runs = session.execute(
        select(
            func.count(),
            func.sum(SyncRun.seen),
            func.sum(SyncRun.imported),
            func.sum(SyncRun.duplicates),
            func.sum(SyncRun.failed),
            func.min(SyncRun.started_at),
            func.max(SyncRun.finished_at),
        )
    ).one()
    failed_runs = session.scalar(select(func.count()).where(SyncRun.state == "failed"))
    return {
        "sync_runs": runs[0],
        "failed_runs": failed_runs,
        "seen": runs[1],
        "imported": runs[2],
        "duplicates": runs[3],
        "failed_mails": runs[4],
        "fetch_seconds": round((runs[6] - runs[5]).total_seconds(), 2) if runs[5] else None,
        "mails_stored": session.scalar(select(func.count()).select_from(Email)),
        "locations": session.scalar(select(func.count()).select_from(EmailLocation)),
        "user_states": session.scalar(select(func.count()).select_from(EmailUserState)),
        "double_claims": double_claims(session),
    }


def run_workers(config: Config, workers: int, logs: Path, timeout: float) -> float:
    """Start burst workers on the queued fetches; seconds until the last one exits."""
    env = worker_env(config)
    started = time.perf_counter()
    procs = []
    for k in range(workers):
        with (logs / f"worker-{workers}-{k}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "workers.worker", "--burst"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        for proc in procs:
            proc.wait(max(timeout - (time.perf_counter() - started), 1))
    except subprocess.TimeoutExpired:
        raise SystemExit(f"workers did not finish in {timeout}s (logs in {logs})") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return time.perf_counter() - started


def scale_run(server: Dovecot, boxes: list[str], workers: int, work: Path, timeout) -> dict:
    """One worker count on a fresh database and Redis database index of its own."""
    database_url, drop = fresh_pg_database(PG_SERVER, "crm_bench_scale")
    index, release = claim_index()
    redis_url = f"{REDIS_SERVER}/{index}"
    config = Config(
        instance_dir=work / "instance",
        database_url=database_url,
        redis_url=redis_url,
        secret_key="bench-secret",
        data_dir=work / "data",
        mail_host_allowlist=f"{server.host}:{server.port}",
        queue_name=f"bench-scale-{uuid.uuid4().hex[:8]}",
    )
    services = None
    try:
        upgrade(database_url)
        services = Services(config)
        accounts = add_accounts(services, server, boxes)
        queue = mail_queue(services.redis, config.queue_name)
        for account_id in accounts:
            enqueue_fetch(queue, account_id)
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        wall = run_workers(config, workers, logs, timeout)
        with services.session() as session:
            result = {"workers": workers, "wall_seconds": round(wall, 2), **figures(session)}
        result["mails_per_second"] = round((result["seen"] or 0) / wall, 1)
        if result["fetch_seconds"]:
            result["mails_per_second_fetching"] = round(result["seen"] / result["fetch_seconds"], 1)
        return result
    finally:
        if services is not None:
            services.dispose()
        conn = Redis.from_url(redis_url)
        conn.flushdb()
        conn.close()
        release()
        drop()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--mails", type=int, default=500, help="messages in each account's INBOX")
    ap.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--seed-script", type=Path, default=ROOT.parent / "shared" / "mailbench" / "seed.py"
    )
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one worker count may take")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crm-bench-scale-"))
    os.chmod(work, 0o755)
    server = Dovecot(work / "dovecot").start(users=())
    try:
        boxes = [server.new_user() for _ in range(args.accounts)]
        seed_mailboxes(server, boxes, args.mails, args.seed, args.seed_script)
        bare_imap_tools(server, boxes)  # warm-up: Dovecot builds its caches on first access
        results = {
            "accounts": args.accounts,
            "mails_per_account": args.mails,
            "messages": args.accounts * args.mails,
            "shared_copies_per_account": sum(SHARED_FROM_NEXT.values()),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "imap_tools": bare_imap_tools(server, boxes),
            "runs": [],
        }
        for workers in (int(w) for w in args.workers.split(",")):
            run = scale_run(server, boxes, workers, work / f"workers-{workers}", args.timeout)
            run["vs_imap_tools"] = round(run["mails_per_second"] / results["imap_tools"]["rate"], 2)
            results["runs"].append(run)
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Mass mail benchmark: a mass mail to N seeded contacts rendered and queued in batches.

Usage:  .venv/bin/python bench/mass_mail.py [-n 2000 10000] [--batch 100] [--database-url URL]
            [--json FILE]

For each N, in a fresh process (so that its peak RSS is its own) and a fresh database (SQLite
in a temporary folder, or a fresh database on the PostgreSQL server `--database-url` names,
dropped afterwards): N contacts with an address each are seeded with bulk INSERTs, put on one
target list, and a mass mail with a plain-text template using placeholders and {optOutLink}
is started (the recipients written by one INSERT ... SELECT) and then queued exactly as the
job does it: crm.campaigns.batches.queue_batch, one commit per batch, until complete. Nothing
is sent (the outbox rows stay queued: sending is bench/send.py's subject).

Reported per N: seconds and mails/s for start and for the batches, and memory: ru_maxrss
(the process's peak RSS), the largest RSS seen after a batch, and tracemalloc's peak of
Python allocations during the batch phase. With one batch held at a time, the batch phase's
figures should stay flat from 2,000 to 10,000 recipients. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from crm import settings
from crm.campaigns import batches, mass_mail, senders
from crm.config import Config
from crm.db import utcnow
from crm.migrations import upgrade
from crm.models import (
    Contact,
    EmailAddress,
    EmailAddressLink,
    EmailTemplate,
    MailAccount,
    MassMail,
    TargetList,
    TargetListMember,
    User,
)
from crm.records.users import create_user
from crm.services import Services

BODY = (
    "Dear {Contact.firstName} {Contact.lastName},\n\nour December news for "
    "{Person.emailAddress}: prices stay, delivery gets faster.\n\nRegards, {User.name}\n\n"
    "{optOutLink}\n"
)


# Seeded ids start above the few rows the set-up made (the user's address, ...).
OFFSET = 1000


def _rss_kib() -> int:
    """The current resident set size (Linux /proc), in KiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() // 1024


def _seed(services: Services, n: int) -> tuple[int, int, int]:
    """N contacts with one address each on one list; (user id, list id, template id)."""
    now = utcnow()
    with services.session() as session:
        user = create_user(session, "mara", "password123", ["mara@example.com"], True, [], "Mara")
        account = MailAccount(is_group=True, name="News", email_address="news@example.com",
                              smtp_host="127.0.0.1", smtp_port=25, smtp_security="none",
                              smtp_auth=False, imap_host="")  # fmt: skip
        session.add(account)
        session.flush()
        settings.put(session, "site_url", "https://crm.example.com")
        senders.allow(session, [account.id])
        template = EmailTemplate(name="News", subject="News for {Contact.firstName}", body=BODY,
                                 is_html=False, owner_id=user.id)  # fmt: skip
        target = TargetList(name="Everybody", owner_id=user.id)
        session.add_all([template, target])
        session.commit()
        ids = (user.id, target.id, template.id)
    with services.engine.begin() as conn:
        for start in range(0, n, 1000):
            chunk = range(OFFSET + start + 1, OFFSET + min(start + 1000, n) + 1)
            conn.execute(insert(Contact), [
                {"id": i, "first_name": f"First{i}", "last_name": f"Last{i}", "phone": "",
                 "title": "", "description": "", "search_key": "", "created_at": now,
                 "updated_at": now, "created_by_id": ids[0]} for i in chunk])  # fmt: skip
            conn.execute(insert(EmailAddress), [
                {"id": i, "address": f"person{i}@customer.example",
                 "lower": f"person{i}@customer.example", "opted_out": i % 50 == 0,
                 "invalid": i % 97 == 0} for i in chunk])  # fmt: skip
            conn.execute(insert(EmailAddressLink), [
                {"address_id": i, "entity_type": "Contact", "entity_id": i, "is_primary": True}
                for i in chunk])  # fmt: skip
            conn.execute(insert(TargetListMember), [
                {"list_id": ids[1], "entity_type": "Contact", "entity_id": i, "added_at": now}
                for i in chunk])  # fmt: skip
    return ids


def run_one(n: int, batch: int, database_url: str) -> dict:
    """One N in this process: seed, start, queue every batch; the figures."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-mass-") as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        config = Config(instance_dir=Path(tmp) / "instance", database_url=url,
                        secret_key="bench-secret", data_dir=Path(tmp) / "data")  # fmt: skip
        services = Services(config)
        user_id, list_id, template_id = _seed(services, n)
        rss_after_seed = _rss_kib()
        with services.session() as session:
            user = session.get(User, user_id)
            values = {"name": "December", "template_id": template_id, "list_ids": [list_id],
                      "mail_account_id": senders.allowed(session)[0].id,
                      "per_hour": mass_mail.MAX_PER_HOUR}  # fmt: skip
            found = mass_mail.save(session, user, values)
            found.batch_size = batch
            started = time.perf_counter()
            recipients = mass_mail.start(session, found, user)
            session.commit()
            start_seconds = time.perf_counter() - started
            mass_mail_id = found.id
        tracemalloc.start()
        rss_peak_batches, queued, batches_run = 0, 0, 0
        started = time.perf_counter()
        while True:
            with services.session() as session:  # a session per batch, as the job commits
                found = session.get(MassMail, mass_mail_id)
                done = batches.queue_batch(session, services.blobs, found, utcnow())
                session.commit()
                status = found.status
            queued += len(done.queued)
            batches_run += 1
            rss_peak_batches = max(rss_peak_batches, _rss_kib())
            if status != "running" or batches_run > n:  # bounded
                break
        batch_seconds = time.perf_counter() - started
        _current, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        services.dispose()
    return {
        "recipients": n,
        "written": recipients,
        "queued": queued,
        "skipped": recipients - queued,
        "batches": batches_run,
        "batch_size": batch,
        "start_seconds": round(start_seconds, 3),
        "batch_seconds": round(batch_seconds, 2),
        "mails_per_second": round(queued / batch_seconds, 1) if batch_seconds else None,
        "rss_after_seed_mib": round(rss_after_seed / 1024, 1),
        "rss_peak_during_batches_mib": round(rss_peak_batches / 1024, 1),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tracemalloc_peak_batches_mib": round(traced_peak / 1024 / 1024, 2),
    }


def _fresh_postgres(server_url: str) -> tuple[str, callable]:
    name = f"bench_mass_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to use")
    parser.add_argument("--json", dest="json_file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        url, drop = _fresh_postgres(args.database_url) if args.database_url else ("", None)
        try:
            print(json.dumps(run_one(args.one, args.batch, url)))
        finally:
            if drop:
                drop()
        return
    results = []
    for n in args.n:
        command = [sys.executable, __file__, "--one", str(n), "--batch", str(args.batch)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

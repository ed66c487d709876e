"""Mail client speed: server time for the first list page, page 500, searches and opening a mail,
and the Inbox as conversations (its first page and page 100).

Seeds 100,000 mail for one user among 1,000,000 in the database (ten users) with bulk inserts,
then times each request through the app in-process (median of --runs), on SQLite and/or
PostgreSQL. Target: every median under 50 ms, and page 500 no slower than page 1. The searches:
a plain word, operators (from: and subject:), and a word typed without its accents. A third of
the mail answers an earlier mail of its reader (THREADED), so the conversations are real ones.

    .venv/bin/python bench/ui.py                      # both databases, full size
    .venv/bin/python bench/ui.py --db sqlite --scale 0.1
    .venv/bin/python bench/ui.py --reuse              # keep the seeded databases for the next run
    .venv/bin/python bench/ui.py --users 2            # 100,000 mail for the user, 200,000 in all

With --reuse the seeded databases stay (build/bench-ui/crm_bench_ui_<n>.sqlite3, or the
PostgreSQL database crm_bench_ui_<n>) and a later run of the same size measures them again
without seeding.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from bench.rows import email_row, state_row
from crm import create_app
from crm.config import Config
from crm.mailbox.listing import PAGE_SIZE, encode_cursor
from crm.migrations import upgrade
from crm.models import Email, EmailAddress, EmailUserState, User
from crm.records.users import create_user
from tests.support import databases
from tests.support.redisdb import REDIS_SERVER, claim_index

KEPT_DIR = Path(__file__).resolve().parent.parent / "build" / "bench-ui"
USERS = 10
PER_USER = 100_000
BATCH = 5_000
SEARCH_WORD = "zephyr"  # in about 1 mail of 200: a name or product one looks for
ACCENTED_WORD = "děkuji"  # as often, found by typing it without accents
OPERATORS = f"from:person12 subject:{SEARCH_WORD}"  # person12, 120-129, 1200-1299: 5 % of senders
THREADED = 0.33  # of the mail replies to one of its reader's last THREAD_WINDOW mails' threads
THREAD_WINDOW = 2000
rng = random.Random(42)
WORDS = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(5000)]


def sentence(n: int) -> str:
    words = rng.choices(WORDS, k=n)
    if rng.random() < 0.005:
        words[rng.randrange(n)] = SEARCH_WORD
    if rng.random() < 0.005:
        words[rng.randrange(n)] = ACCENTED_WORD
    return " ".join(words)


def seed(url: str, per_user: int, users: int) -> int:
    """Users, addresses, mail and states by bulk insert; answers the benchmark user's id."""
    engine = create_engine(url)
    from crm.db import make_session_factory

    with make_session_factory(engine)() as session:
        user_ids = [
            create_user(session, f"user{i}", "password123", [f"user{i}@example.com"]).id
            for i in range(users)
        ]
        session.commit()
    start = datetime(2021, 1, 1)
    with engine.begin() as conn:
        conn.execute(
            insert(EmailAddress),
            [
                {
                    "address": f"person{i}@customer{i % 97}.example",
                    "lower": f"person{i}@customer{i % 97}.example",
                    "opted_out": False,
                    "invalid": False,
                }
                for i in range(2000)
            ],
        )
        address_ids = list(
            conn.scalars(select(EmailAddress.id).where(EmailAddress.address.like("person%")))
        )
    email_id = 0
    for user_id in user_ids:
        roots: list[str] = []  # the thread root of each of the user's recent mail
        for first in range(0, per_user, BATCH):
            emails, states = [], []
            for _ in range(min(BATCH, per_user - first)):
                email_id += 1
                when = start + timedelta(seconds=rng.randrange(5 * 365 * 86400) // 60 * 60)
                body = sentence(40)
                sender = rng.choice(address_ids)
                root = f"bench-{email_id}@bench.example"
                thread = {"references": [], "in_reply_to": None}
                if roots and rng.random() < THREADED:
                    root = rng.choice(roots[-THREAD_WINDOW:])
                    thread = {"references": [root], "in_reply_to": root}
                roots.append(root)
                emails.append(
                    email_row(
                        email_id,
                        sentence(6),
                        body,
                        when,
                        from_name=f"Person {sender}",
                        from_address_id=sender,
                        address_text=f"Person {sender} person{sender}@example user{user_id}@example.com",
                        has_attachments=rng.random() < 0.1,
                        **thread,
                    )
                )
                states.append(
                    state_row(
                        email_id,
                        user_id,
                        when,
                        is_read=rng.random() < 0.9,
                        is_important=rng.random() < 0.02,
                    )
                )
            with engine.begin() as conn:
                conn.execute(insert(Email), emails)
                conn.execute(insert(EmailUserState), states)
        print(f"  seeded {email_id:,} mail", file=sys.stderr, flush=True)
    _analyze(engine)
    engine.dispose()
    return user_ids[0]


def _analyze(engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE"))


def timed(client, urls: dict[str, str], runs: int) -> dict[str, float]:
    """Median milliseconds of GET per url (after one warm-up), failing loudly on a non-200.

    The urls take turns, so whatever else the machine does weighs on each of them alike.
    """
    samples: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(runs + 1):
        for name, url in urls.items():
            t0 = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
            if i:
                samples[name].append(elapsed)
    return {name: statistics.median(ms) for name, ms in samples.items()}


def page_cursor(app, user_id: int, page: int) -> str:
    """The cursor a reader holds after paging down to `page` (found once, outside the timing)."""
    with app.extensions["crm"].Session() as session:
        row = session.execute(
            select(EmailUserState.sort_date, EmailUserState.email_id)
            .where(EmailUserState.user_id == user_id)
            .order_by(EmailUserState.sort_date.desc(), EmailUserState.email_id.desc())
            .offset((page - 1) * PAGE_SIZE - 1)
            .limit(1)
        ).one()
    return encode_cursor(*row)


def conversation_urls(app, user_id: int) -> dict[str, str]:
    """The Inbox as conversations: the user's preference on, and the cursor after page 100."""
    from crm.mailbox.conversations import conversation_page
    from crm.mailbox.listing import resolve

    with app.extensions["crm"].Session() as session:
        user = session.get(User, user_id)
        user.mail_as_conversations = True
        inbox = resolve(session, user, "inbox")
        cursor = conversation_page(session, user, inbox, limit=99 * PAGE_SIZE).next_cursor
        session.commit()
    return {
        "conversations: first page": "/inbox/",
        "conversations: page 100": f"/inbox/inbox?after={cursor}",
    }


def measure(url: str, user_id: int, workdir: Path, runs: int, redis_url: str) -> dict[str, float]:
    config = Config(
        instance_dir=workdir / "instance",
        database_url=url,
        redis_url=redis_url,
        secret_key="bench",
        data_dir=workdir / "data",
    )
    app = create_app(config)
    client = app.test_client()
    with app.extensions["crm"].Session() as session:
        user = session.get(User, user_id)
        with client.session_transaction() as flask_session:
            flask_session["_user_id"] = user.get_id()
            flask_session["_fresh"] = True
        mail_ids = list(
            session.scalars(
                select(EmailUserState.email_id).where(EmailUserState.user_id == user_id).limit(5000)
            )
        )
    urls = {
        "first list page": "/inbox/",
        "page 500": f"/inbox/inbox?after={page_cursor(app, user_id, 500)}",
        f"search '{SEARCH_WORD}'": f"/inbox/search?q={SEARCH_WORD}",
        f"search '{OPERATORS}'": f"/inbox/search?{urlencode({'q': OPERATORS})}",
        "search 'dekuji'": "/inbox/search?q=dekuji",
    }
    results = timed(client, urls, runs)
    samples = []
    for mail_id in rng.sample(mail_ids, runs):
        t0 = time.perf_counter()
        assert client.get(f"/mail/{mail_id}").status_code == 200
        samples.append((time.perf_counter() - t0) * 1000)
    results["open a mail"] = statistics.median(samples)
    results.update(timed(client, conversation_urls(app, user_id), runs))
    app.extensions["crm"].dispose()
    return results


def run(
    backend: str, per_user: int, users: int, runs: int, redis_url: str, reuse: bool
) -> dict[str, float]:
    import os

    os.environ["CRM_TEST_DB"] = backend
    with tempfile.TemporaryDirectory() as tmp:
        if reuse:
            KEPT_DIR.mkdir(parents=True, exist_ok=True)
            name = (
                f"crm_bench_ui_{per_user}" + (f"_{users}u" if users != USERS else "") + "_threads"
            )
            url, drop = databases.create_database(KEPT_DIR, keep_as=name)
        else:
            url, drop = databases.create_database(Path(tmp))
        try:
            user_id = _seeded_user(url, per_user, users)
            t0 = time.perf_counter()
            upgrade(url)  # a kept database seeded before a migration is brought up to date
            if user_id is None:
                t0 = time.perf_counter()
                user_id = seed(url, per_user, users)
                print(
                    f"{backend}: seeded {users * per_user:,} mail in {time.perf_counter() - t0:.0f} s",
                    file=sys.stderr,
                )
            elif time.perf_counter() - t0 > 1:
                print(f"{backend}: migrated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            return measure(url, user_id, Path(tmp), runs, redis_url)
        finally:
            drop()


def _seeded_user(url: str, per_user: int, users: int) -> int | None:
    """The benchmark user of a database an earlier run seeded completely, else None."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT count(*) FROM email_user_states")) != users * per_user:
                if conn.scalar(text("SELECT count(*) FROM users")):
                    raise SystemExit(f"{url} holds a partial seed: drop it and run again")
                return None
            return conn.scalar(text("SELECT id FROM users WHERE username = 'user0'"))
    except SQLAlchemyError:  # no tables yet: a new database
        return None
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 100,000 mail for the user")
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--users", type=int, default=USERS, help="users of --scale mail each")
    parser.add_argument("--reuse", action="store_true", help="keep seeded databases between runs")
    args = parser.parse_args()
    per_user = max(PAGE_SIZE * 500, int(PER_USER * args.scale))
    index, release = claim_index()
    try:
        backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
        for backend in backends:
            redis_url = f"{REDIS_SERVER}/{index}"
            results = run(backend, per_user, args.users, args.runs, redis_url, args.reuse)
            print(
                f"\n{backend}: {per_user:,} mail for the user, "
                f"{args.users * per_user:,} in the database"
            )
            for name, ms in results.items():
                flag = "ok" if ms < 50 else "SLOW"
                print(f"  {name:<44} {ms:7.1f} ms median  {flag}")
    finally:
        release()


if __name__ == "__main__":
    main()

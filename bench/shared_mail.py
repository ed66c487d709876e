"""What a reader costs on PostgreSQL: time to store mail and give it state rows, by readers.

Each reader's state row gets its mail's search vector (copied by trigger, migration 0003) and
entries in the (user, words) GIN index. This stores mail with bodies of --words words in a
fresh database, then times the state-row INSERT for 1, 5 and 10 readers per mail, as the
import's delivery step does it (one multi-row statement per batch of 200 mail).

    .venv/bin/python bench/shared_mail.py [-n 2000] [--words 300]
    .venv/bin/python bench/shared_mail.py --schema 0002   # the same without per-reader vectors
"""

from __future__ import annotations

import argparse
import os
import random
import string
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert

from bench.rows import email_row, state_row
from crm.db import make_session_factory
from crm.migrations import upgrade
from crm.models import Email, EmailUserState
from crm.records.users import create_user
from tests.support import databases

BATCH = 200
rng = random.Random(7)
VOCABULARY = [
    "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(20000)
]


def body(words: int) -> str:
    # Zipf-like: a few words are everywhere, most are rare, as in real mail.
    return " ".join(VOCABULARY[min(int(rng.paretovariate(0.8)) - 1, 19999)] for _ in range(words))


def store_mail(engine, n: int, words: int, first_id: int) -> list[int]:
    ids = list(range(first_id, first_id + n))
    now = datetime(2026, 1, 1)
    rows = [
        email_row(i, body(6), body(words), now, address_text="Sam sam@customer.example")
        for i in ids
    ]
    with engine.begin() as conn:
        conn.execute(insert(Email), rows)
    return ids


def time_states(engine, mail_ids: list[int], readers: list[int]) -> float:
    """Seconds to insert one state row per (mail, reader), BATCH mail per statement."""
    when = datetime(2026, 1, 1)
    started = time.perf_counter()
    for first in range(0, len(mail_ids), BATCH):
        batch = mail_ids[first : first + BATCH]
        rows = [state_row(m, u, when) for m in batch for u in readers]
        with engine.begin() as conn:
            conn.execute(insert(EmailUserState), rows)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="mail per measurement")
    parser.add_argument("--words", type=int, default=300, help="words per body")
    parser.add_argument(
        "--schema", default="head", help="migration to measure, e.g. 0002: no per-reader vectors"
    )
    args = parser.parse_args()
    os.environ["CRM_TEST_DB"] = "postgresql"
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = databases.create_database(Path(tmp))
        try:
            upgrade(url, args.schema)
            engine = create_engine(url)
            with make_session_factory(engine)() as session:
                users = [create_user(session, f"u{i}", "password123", []).id for i in range(10)]
                session.commit()
            next_id = 1
            print(
                f"{args.n:,} mail of {args.words} words, schema {args.schema}, batches of {BATCH}"
            )
            for count in (1, 5, 10):
                t0 = time.perf_counter()
                ids = store_mail(engine, args.n, args.words, next_id)
                mail_seconds = time.perf_counter() - t0
                next_id += args.n
                seconds = time_states(engine, ids, users[:count])
                per_mail = seconds / args.n * 1000
                print(
                    f"  {count:>2} readers: state rows {seconds:5.2f} s ({per_mail:.2f} ms per mail),"
                    f" the mail themselves {mail_seconds:5.2f} s"
                )
            engine.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()

"""Linking benchmark: how much imported mail lands on the record it should, and none elsewhere.

Usage:  .venv/bin/python bench/linking.py [-n 2000] [--seed 7] [--b2c] [--json FILE]
        (CRM_TEST_DB=postgresql to run on PostgreSQL; SQLite by default)

Starts a private Dovecot, CSV-imports a known population (accounts with their contacts, contacts
without an account, company addresses, leads), seeds one mailbox whose senders are a known mix
of those and of strangers (plus mail our user sent, linked by its recipient), imports it through
the real pipeline, and reports the share linked to the expected record, the share left unlinked,
and every wrong link. Target: no wrong link, every mail from a known address linked.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from crm import settings
from crm.config import Config
from crm.migrations import upgrade
from crm.models import Account, Contact, Email, Lead, User
from crm.records import csv_import
from crm.records.users import create_user
from crm.services import Services
from tests.support import databases
from tests.support.dovecot import Dovecot
from tests.support.mailboxes import fetch, make_account, raw_message

MIX = (  # (sender kind, weight)
    ("contact-with-account", 35),
    ("contact-alone", 10),
    ("account", 15),
    ("lead", 15),
    ("stranger", 20),
    ("outgoing", 5),
)


def population(rng: random.Random, size: int) -> dict[str, list[dict]]:
    """Records to CSV-import, each with the address mail will come from."""
    accounts = [{"name": f"Company {i}", "email": f"info@company{i}.example"} for i in range(size)]
    with_account = [
        {
            "first_name": f"P{i}",
            "last_name": f"Staff{i}",
            "email": f"p{i}@company{i % size}.example",
            "account": f"Company {i % size}",
        }
        for i in range(size * 3)
    ]
    alone = [
        {"first_name": f"Solo{i}", "last_name": "Person", "email": f"solo{i}@mail.example"}
        for i in range(size)
    ]
    leads = [
        {"first_name": f"Lead{i}", "last_name": "Prospect", "email": f"lead{i}@prospect{i}.example"}
        for i in range(size)
    ]
    rng.shuffle(with_account)
    return {
        "accounts": accounts,
        "contacts-with-account": with_account,
        "contacts-alone": alone,
        "leads": leads,
    }


def csv_bytes(rows: list[dict]) -> bytes:
    headers = list(rows[0])
    lines = [",".join(headers)] + [",".join(f'"{r[h]}"' for h in headers) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def import_population(services: Services, people: dict, actor_id: int) -> None:
    with services.session() as session:
        actor = session.get(User, actor_id)
        for kind, key in (
            ("accounts", "accounts"),
            ("contacts", "contacts-with-account"),
            ("contacts", "contacts-alone"),
            ("leads", "leads"),
        ):
            report = csv_import.import_table(
                session, kind, csv_import.read_table(csv_bytes(people[key])), actor
            )
            assert not report.rejected, report.rejected


def expected_targets(services: Services, b2c: bool) -> dict[str, tuple[str, int]]:
    """address -> the record mail from (or, for outgoing mail, to) it must be linked to."""
    from crm.records import addressbook

    out: dict[str, tuple[str, int]] = {}
    with services.session() as session:
        for contact in session.scalars(select(Contact)):
            target = (
                ("Contact", contact.id)
                if b2c or not contact.account_id
                else ("Account", contact.account_id)
            )
            for link in addressbook.addresses_of(session, "Contact", contact.id):
                out[link.address.lower] = target
        for model in (Account, Lead):
            for record in session.scalars(select(model)):
                for link in addressbook.addresses_of(session, model.entity_type, record.id):
                    out.setdefault(link.address.lower, (model.entity_type, record.id))
    return out


def messages(rng: random.Random, n: int, people: dict) -> list[tuple[str, str, str]]:
    """(message id, kind, counterpart address) for n mails, drawn from the mix."""
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    pools = {
        "contact-with-account": [r["email"] for r in people["contacts-with-account"]],
        "contact-alone": [r["email"] for r in people["contacts-alone"]],
        "account": [r["email"] for r in people["accounts"]],
        "lead": [r["email"] for r in people["leads"]],
        "outgoing": [r["email"] for r in people["contacts-with-account"]],
    }
    out = []
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        address = (
            f"stranger{i}@elsewhere{i % 97}.example"
            if kind == "stranger"
            else rng.choice(pools[kind])
        )
        if rng.random() < 0.2:  # senders do not care about case; linking must not either
            address = address.upper()
        out.append((f"bench-{i}@bench.example", kind, address))
    return out


def raw_for(message_id: str, kind: str, address: str) -> bytes:
    if kind == "outgoing":
        return raw_message(
            subject=message_id,
            from_="Rep <rep@example.com>",
            to=address,
            message_id=f"<{message_id}>",
        )
    return raw_message(
        subject=message_id,
        from_=f"Someone <{address}>",
        to="rep@example.com",
        message_id=f"<{message_id}>",
    )


def score(services: Services, sent: list[tuple[str, str, str]], targets: dict) -> dict:
    with services.session() as session:
        rows = {e.identity: (e.parent_type, e.parent_id) for e in session.scalars(select(Email))}
    counts: Counter = Counter()
    wrong = []
    for message_id, kind, address in sent:
        want = targets.get(address.lower())
        got = rows.get(message_id)
        if got is None:
            counts["missing"] += 1
        elif want is None:
            counts["stranger-unlinked" if got[0] is None else "stranger-linked"] += 1
            if got[0] is not None:
                wrong.append({"message": message_id, "kind": kind, "expected": None, "got": got})
        elif got == want:
            counts["correct"] += 1
        elif got[0] is None:
            counts["known-unlinked"] += 1
        else:
            counts["wrong"] += 1
            wrong.append({"message": message_id, "kind": kind, "expected": want, "got": got})
    known = sum(1 for _, _, a in sent if a.lower() in targets)
    return {
        "messages": len(sent),
        "from_known_addresses": known,
        "linked_as_expected_share": round(counts["correct"] / known, 4) if known else None,
        "unlinked_share": round(
            (counts["known-unlinked"] + counts["stranger-unlinked"]) / len(sent), 4
        ),
        "known_but_unlinked": counts["known-unlinked"],
        "wrong_links": len(wrong),
        "missing": counts["missing"],
        "wrong": wrong[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--b2c", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crm-linkbench-") as tmp:
        tmp = Path(tmp)
        tmp.chmod(0o755)  # Dovecot runs as the `mail` user and must reach its directory
        url, drop = databases.create_database(tmp)
        server = Dovecot(tmp / "dovecot").start()
        try:
            result = run(tmp, url, server, rng, args)
        finally:
            server.stop()
            drop()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def run(tmp: Path, url: str, server: Dovecot, rng: random.Random, args) -> dict:
    upgrade(url)
    config = Config(
        instance_dir=tmp / "instance",
        database_url=url,
        secret_key="bench",
        data_dir=tmp / "data",
        mail_host_allowlist="127.0.0.1:*",
    )
    services = Services(config)
    with services.session() as session:
        settings.put(session, "b2c_mode", args.b2c)
        rep = create_user(session, "rep", "password123", ["rep@example.com"], is_admin=True).id
    people = population(rng, max(5, args.n // 40))
    import_population(services, people, rep)
    sent = messages(rng, args.n, people)
    user = server.new_user()
    server.append_many(user, [raw_for(*m) for m in sent])
    account_id = make_account(services, rep, server, user)
    started = time.perf_counter()
    summary = fetch(services, account_id, batch_size=200)
    seconds = time.perf_counter() - started
    result = score(services, sent, expected_targets(services, args.b2c))
    result.update(
        database=services.engine.dialect.name,
        b2c=args.b2c,
        import_seconds=round(seconds, 2),
        imported=summary.imported,
        mix=dict(Counter(k for _, k, _ in sent)),
    )
    services.dispose()
    return result


if __name__ == "__main__":
    main()

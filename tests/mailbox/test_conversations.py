"""Folders listed one row per conversation: grouping, sums, keyset pages, a thread's mail."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from crm.mailbox import conversations, listing
from crm.mailbox.folders import create_folder
from crm.models import User
from tests.factories import make_email

T0 = datetime(2026, 3, 1, 9, 0)


@pytest.fixture
def rep(db, make_user):
    return db.get(User, make_user("rep", ["rep@example.com"]))


def thread(db, rep, root_id: str, senders: list[str], start: datetime, **state) -> list:
    """A root and its replies, an hour apart, each reply naming the root first in References."""
    mails = []
    for n, name in enumerate(senders):
        refs = [root_id, *[m.message_id for m in mails[1:]]] if mails else []
        mails.append(
            make_email(
                db,
                users=[rep.id],
                subject=("Re: " if n else "") + f"About {root_id}",
                from_name=name,
                from_addr=f"{name.lower()}@customer.example",
                message_id=root_id if n == 0 else None,
                in_reply_to=mails[-1].message_id if mails else None,
                references=refs,
                date=start + timedelta(hours=n),
                **state,
            )
        )
    return mails


def page(db, rep, key="inbox", **kw):
    return conversations.conversation_page(db, rep, listing.resolve(db, rep, key), **kw)


def test_a_thread_is_one_row_with_its_newest_mail_count_and_participants(db, rep):
    mails = thread(db, rep, "root-a@x", ["Anna", "Bob", "Anna", "Cleo", "Dan"], T0, is_read=True)
    db.flush()
    listing.state_of(db, rep.id, mails[1].id).is_read = False
    listing.state_of(db, rep.id, mails[2].id).is_important = True
    alone = make_email(db, users=[rep.id], subject="Alone", date=T0 - timedelta(days=1))
    db.flush()
    rows = page(db, rep).rows
    assert [r.id for r in rows] == [mails[-1].id, alone.id]
    first = rows[0]
    assert first.subject == "Re: About root-a@x" and first.count == 5 and first.conversation
    assert first.sender == "Anna, Bob, Cleo, …"
    assert first.is_read is False and first.is_important is True
    assert rows[1].count == 1 and rows[1].sender == "Sam Sender"


def test_a_conversation_counts_only_its_mail_in_this_folder(db, rep):
    mails = thread(db, rep, "root-b@x", ["Anna", "Bob", "Cleo"], T0, is_read=True)
    folder = create_folder(db, rep.id, "Projects")
    listing.state_of(db, rep.id, mails[2].id).folder_id = folder.id
    db.flush()
    inbox = page(db, rep).rows
    assert [(r.id, r.count, r.sender) for r in inbox] == [(mails[1].id, 2, "Anna, Bob")]
    filed = page(db, rep, str(folder.id)).rows
    assert [(r.id, r.count) for r in filed] == [(mails[2].id, 1)]
    view = listing.resolve(db, rep, "inbox")
    ids = conversations.thread_mail_ids(db, rep, view, [mails[1].id])
    assert ids == sorted(m.id for m in mails[:2])


def test_pages_seek_past_the_newest_mail_of_the_last_conversation(db, rep):
    # 7 threads of 3 mails, interleaved in time, so a thread's older mail sits on later pages.
    threads = [
        thread(db, rep, f"root-{n}@x", ["Anna", "Bob", "Cleo"], T0 + timedelta(minutes=10 * n))
        for n in range(7)
    ]
    db.flush()
    newest_first = [t[-1].id for t in reversed(threads)]
    seen, cursor = [], None
    for _ in range(5):
        listing = page(db, rep, cursor=cursor, limit=3)
        seen += [r.id for r in listing.rows]
        assert all(r.count == 3 for r in listing.rows)
        cursor = listing.next_cursor
        if cursor is None:
            break
    assert seen == newest_first


def test_the_mail_page_conversation_lists_the_whole_thread(db, rep):
    # A reply that names only its parent (no References) still belongs by thread_root.
    mails = thread(db, rep, "root-c@x", ["Anna", "Bob", "Cleo"], T0)
    sibling = make_email(db, users=[rep.id], in_reply_to="root-c@x", date=T0 + timedelta(days=1))
    db.flush()
    others = listing.thread(db, rep, mails[-1])
    assert [m.id for m in others] == [mails[0].id, mails[1].id, sibling.id]

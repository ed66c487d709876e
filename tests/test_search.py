"""Full-text search over mail on both databases: words, prefixes, filters, scope, paging."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine, inspect, select, text

from crm import search
from crm.folders import create_folder
from crm.migrations import downgrade, upgrade
from crm.models import Account, Email, EmailUserState, User
from tests.factories import make_email
from tests.support import databases


@pytest.fixture
def rep(db, make_user):
    uid = make_user("rep", ["rep@example.com"])
    db.rollback()
    return db.get(User, uid)


def find(db, user, **args):
    page = search.search(db, user, search.parse(args))
    return [r.id for r in page.rows]


def test_matches_subject_body_address_and_name(db, rep):
    a = make_email(db, users=[rep.id], subject="Quarterly invoice", text="nothing")
    b = make_email(db, users=[rep.id], subject="Hi", text="The shipment left the warehouse")
    c = make_email(
        db, users=[rep.id], subject="Hi", from_addr="zoe@globex.example", from_name="Zoë Zimmer"
    )
    assert find(db, rep, q="invoice") == [a.id]
    assert find(db, rep, q="warehouse") == [b.id]
    assert find(db, rep, q="globex") == [c.id]
    assert find(db, rep, q="zoe@globex.example") == [c.id]
    assert find(db, rep, q="Zimmer") == [c.id]


def test_words_are_prefixes_and_all_must_match(db, rep):
    a = make_email(db, users=[rep.id], subject="Invoice overdue")
    make_email(db, users=[rep.id], subject="Invoice paid")
    assert find(db, rep, q="invo over") == [a.id]
    assert find(db, rep, q="INVOICE") != []


def test_short_words_match_whole_words_only(db, rep):
    # One or two letters as a prefix would match most of the index on every keystroke.
    short = make_email(db, users=[rep.id], subject="in a box")
    make_email(db, users=[rep.id], subject="invoice about apples")
    assert find(db, rep, q="in") == [short.id]
    assert find(db, rep, q="a") == [short.id]
    assert len(find(db, rep, q="inv")) == 1 and len(find(db, rep, q="box")) == 1


def test_query_syntax_is_never_interpreted(db, rep):
    mail = make_email(db, users=[rep.id], subject="plain")
    for q in ['"unbalanced', "a OR b", "NEAR(x y)", "x:*", "'; drop table emails; --"]:
        assert find(db, rep, q=q) == []
    for q in ["* ^ -", "!", "&|", '"']:  # no words at all: no text condition
        assert find(db, rep, q=q) == [mail.id]


def test_only_the_users_mail_outside_trash_unless_asked(db, rep, make_user):
    other = make_user("other", ["other@example.com"])
    db.rollback()
    mine = make_email(db, users=[rep.id], subject="budget")
    binned = make_email(db, users=[rep.id], subject="budget", in_trash=True)
    make_email(db, users=[other], subject="budget")
    assert find(db, rep, q="budget") == [mine.id]
    assert find(db, rep, q="budget", folder="trash") == [binned.id]


def test_filters(db, rep):
    folder = create_folder(db, rep.id, "Deals")
    account = Account(name="Acme")
    db.add(account)
    db.flush()
    old = make_email(db, users=[rep.id], subject="report", date=datetime(2025, 1, 10))
    new = make_email(
        db,
        users=[rep.id],
        subject="report",
        date=datetime(2026, 3, 5),
        from_addr="ceo@acme.example",
        parent=account,
    )
    new.has_attachments = True
    filed = make_email(
        db, users=[rep.id], subject="report", folder_id=folder.id, date=datetime(2026, 3, 1)
    )
    db.flush()
    assert find(db, rep, q="report", folder=str(folder.id)) == [filed.id]
    assert find(db, rep, q="report", **{"from": "acme"}) == [new.id]
    assert find(db, rep, attachment="1") == [new.id]
    assert find(db, rep, q="report", until="2025-12-31") == [old.id]
    assert find(db, rep, q="report", since="2026-03-02", until="2026-03-05") == [new.id]
    assert find(db, rep, parent=f"Account:{account.id}") == [new.id]
    assert find(db, rep, parent="Nonsense:1") == []


def test_results_are_paged_newest_first(db, rep):
    ids = [
        make_email(db, users=[rep.id], subject=f"alpha {n}", date=datetime(2026, 1, n + 1)).id
        for n in range(7)
    ]
    query = search.parse({"q": "alpha"})
    first = search.search(db, rep, query, limit=4)
    second = search.search(db, rep, query, first.next_cursor, limit=4)
    assert [r.id for r in first.rows + second.rows] == ids[::-1]
    assert second.next_cursor is None


def test_index_follows_updates_and_deletes(db, rep):
    mail = make_email(db, users=[rep.id], subject="before")
    mail.subject = "after"
    db.flush()
    assert find(db, rep, q="before") == [] and find(db, rep, q="after") == [mail.id]
    db.delete(mail)
    db.flush()
    assert find(db, rep, q="after") == []
    if db.get_bind().dialect.name == "sqlite":  # the external-content index stays consistent
        db.execute(text("INSERT INTO emails_fts(emails_fts, rank) VALUES ('integrity-check', 1)"))


def test_foreign_folder_is_none(db, rep, make_user):
    other = make_user("other", ["other@example.com"])
    db.rollback()
    folder = create_folder(db, other, "Theirs")
    assert search.search(db, rep, search.parse({"q": "x", "folder": str(folder.id)})) is None


def test_migration_downgrade_drops_and_upgrade_restores_search(tmp_path):
    url, drop = databases.create_database(tmp_path)
    try:
        upgrade(url)
        engine = create_engine(url)
        sqlite = engine.dialect.name == "sqlite"

        def present() -> bool:
            insp = inspect(engine)
            if sqlite:
                return "emails_fts" in insp.get_table_names()
            return "search_vector" in {c["name"] for c in insp.get_columns("email_user_states")}

        assert present()
        downgrade(url, "0001")
        assert not present()
        upgrade(url)
        assert present()
        with engine.connect() as conn:
            assert conn.scalar(select(Email.id).limit(1)) is None
        engine.dispose()
    finally:
        drop()


def test_common_and_rare_words_give_the_same_answer_whichever_plan(db, rep):
    # PostgreSQL reads common words by walking the list and rare ones from the index.
    ids = [make_email(db, users=[rep.id], subject=f"common word {n}").id for n in range(3)]
    rare = make_email(db, users=[rep.id], subject="common unusualword")
    assert sorted(find(db, rep, q="common")) == sorted([*ids, rare.id])
    assert find(db, rep, q="common 1") == [ids[1]]
    assert find(db, rep, q="unusualw") == [rare.id]


def test_a_reader_added_later_finds_the_mail_and_edits_reach_every_reader(db, rep, make_user):
    other = db.get(User, make_user("other", ["other@example.com"]))
    mail = make_email(db, users=[rep.id], subject="shared later")
    assert find(db, other, q="shared") == []
    db.add(EmailUserState(email_id=mail.id, user_id=other.id, sort_date=mail.date_sent))
    db.flush()
    assert find(db, other, q="shared") == [mail.id]
    mail.subject = "renamed draft"
    db.flush()
    for user in (rep, other):
        assert find(db, user, q="shared") == [] and find(db, user, q="renamed") == [mail.id]

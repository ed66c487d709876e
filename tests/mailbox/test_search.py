"""Full-text search over mail on both databases: words, prefixes, filters, scope, paging."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import create_engine, inspect, select, text

from crm import folding
from crm.mailbox import search
from crm.mailbox.folders import create_folder
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


# --- all mail by default ---------------------------------------------------------------------


def test_a_search_covers_every_folder_unless_one_is_chosen(db, rep):
    # A filter moved the mail out of the Inbox: searching must still find it.
    folder = create_folder(db, rep.id, "Support")
    filed = make_email(db, users=[rep.id], subject="ticket 42", folder_id=folder.id)
    inbox = make_email(db, users=[rep.id], subject="ticket 43")
    assert sorted(find(db, rep, q="ticket")) == sorted([filed.id, inbox.id])
    assert find(db, rep, q="ticket", folder="inbox") == [inbox.id]
    assert find(db, rep, q="ticket", folder=str(folder.id)) == [filed.id]


# --- case and accents ------------------------------------------------------------------------

SAMPLES = [  # (text in the mail, what one types)
    ("Děkuji za objednávku", "Dekuji"),
    ("Ďakujem, posielam cenník", "dakujem cennik"),
    ("Herr Müller schreibt", "muller"),
    ("Grüße aus der Straße", "grusse strasse"),
    ("Électricité du Rhône", "Electricite rhone"),
    ("Électricité du Rhône", "electricite"),
    ("Zażółć gęślą jaźń, Łódź", "zazolc gesla jazn lodz"),
    ("Ærø og Søren", "aero soren"),
    ("Noël à l'œuvre", "noel oeuvre"),
    ("Đorđe Ħal", "dorde hal"),
    ("ПРИВЕТ из Ёлкино", "привет ёлкино"),
    ("ПРИВЕТ из Ёлкино", "елкино"),
    ("Καλημέρα Αθήνα", "καλημερα αθηνα"),
    ("ﬁnal ＴＥＳＴ", "final test"),
]


@pytest.mark.parametrize(("stored", "typed"), SAMPLES)
def test_case_and_accents_do_not_count(db, rep, stored, typed):
    mail = make_email(db, users=[rep.id], subject=stored, text=f"body: {stored}")
    make_email(db, users=[rep.id], subject="something else entirely")
    assert find(db, rep, q=typed) == [mail.id]
    assert find(db, rep, q=stored) == [mail.id]  # the accented query folds the same way
    phrase = " ".join(stored.split()[:2])
    assert find(db, rep, q=f'"{phrase}"') == [mail.id]


@pytest.mark.parametrize(
    ("stored", "typed"), [("Děkuji", "Deku"), ("Łódź office", "lod"), ("Straße", "stras")]
)
def test_accented_words_match_as_prefixes(db, rep, stored, typed):
    mail = make_email(db, users=[rep.id], subject=stored)
    assert find(db, rep, q=typed) == [mail.id]


def test_addresses_and_names_fold_too(db, rep):
    mail = make_email(
        db, users=[rep.id], subject="Hi", from_addr="jm@firma.example", from_name="Jürgen Müller"
    )
    assert find(db, rep, q="jurgen muller") == [mail.id]
    assert find(db, rep, q="subject:hi muller") == [mail.id]


def _agreeing_letters() -> list[str]:
    ranges = [(0xC0, 0x250), (0x370, 0x400), (0x400, 0x530), (0x1E00, 0x1F00)]
    return [
        chr(c)
        for lo, hi in ranges
        for c in range(lo, hi)
        if chr(c).isalpha() and folding._agrees(chr(c))
    ]


def test_each_database_folds_every_letter_as_python_does(db):
    """The letters folding._agrees vouches for are indexed as folding.fold has them."""
    letters = _agreeing_letters()
    assert len(letters) > 800
    if db.get_bind().dialect.name == "postgresql":
        rows = db.execute(
            text(
                "SELECT c, array_to_string(tsvector_to_array("
                "to_tsvector('crm_unaccent', 'q' || c || 'q')), '|') FROM unnest(CAST(:cs AS text[])) AS c"
            ),
            {"cs": letters},
        ).all()
        indexed = {c: v for c, v in rows}
    else:
        source = db.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'emails_fts_source'")
        ).scalar()
        folded_expr = source.split("AS subject")[0].split("SELECT id,", 1)[1]
        folded_expr = folded_expr.rsplit("||", 2)[0].replace("coalesce(subject, '')", ":w")
        db.execute(
            text(
                "CREATE VIRTUAL TABLE temp.probe USING fts5(x, tokenize='unicode61 remove_diacritics 2')"
            )
        )
        db.execute(text("CREATE VIRTUAL TABLE temp.probe_words USING fts5vocab(probe, 'row')"))
        indexed = {}
        for c in letters:
            db.execute(text("DELETE FROM temp.probe"))
            db.execute(text(f"INSERT INTO temp.probe(x) SELECT {folded_expr}"), {"w": f"q{c}q"})
            indexed[c] = "|".join(db.scalars(text("SELECT term FROM temp.probe_words")))
    wrong = {c: v for c, v in indexed.items() if v != f"q{folding.fold(c)}q"}
    assert wrong == {}


# --- operators -------------------------------------------------------------------------------


def test_parse_text_takes_operators_phrases_and_words_apart():
    found = search.parse_text(
        'From:anna to:"Sales Team" subject:invoice subject:"big deal" has:attachment '
        "is:unread is:Starred before:2026-01-31 after:2025-12-01 in:Projects "
        'hello "exact words" foo:bar before:someday has:cake'
    )
    assert found == search.Terms(
        words=("hello", "foo:bar", "before:someday", "has:cake"),
        phrases=("exact words",),
        subject=("invoice", "big deal"),
        sender=("anna",),
        to=("Sales Team",),
        has_attachment=True,
        flags=frozenset({"unread", "starred"}),
        before=date(2026, 1, 31),
        after=date(2025, 12, 1),
        folder="Projects",
    )


def test_parse_text_of_plain_words_and_odd_input():
    assert search.parse_text("invoice march") == search.Terms(words=("invoice", "march"))
    assert search.parse_text('"unbalanced').phrases == ("unbalanced",)
    assert search.parse_text("from: x").words == ("from:", "x")
    assert search.parse_text("10:30 http://x.example").words == ("10:30", "http://x.example")
    assert search.parse_text("").is_empty and search.parse_text('"" * -').is_empty


def test_from_to_and_subject(db, rep):
    a = make_email(db, users=[rep.id], subject="Offer", from_addr="anna@acme.example",
                   from_name="Anna Novak", to=("sales@firm.example",))  # fmt: skip
    b = make_email(db, users=[rep.id], subject="Re: Offer from Anna", from_addr="bob@firm.example",
                   to=("anna@acme.example",))  # fmt: skip
    c = make_email(
        db, users=[rep.id], subject="Lunch", text="anna offer", cc=("anna@acme.example",)
    )
    assert find(db, rep, q="from:anna") == [a.id]
    assert find(db, rep, q="from:novak offer") == [a.id]
    assert sorted(find(db, rep, q="to:anna")) == sorted([b.id, c.id])
    assert find(db, rep, q="to:sales@firm.example") == [a.id]
    assert sorted(find(db, rep, q="subject:offer")) == sorted([a.id, b.id])
    assert find(db, rep, q="subject:offe subject:anna") == [b.id]
    assert find(db, rep, q='subject:"offer from"') == [b.id]
    assert find(db, rep, q="from:bob subject:lunch") == []


def test_from_names_fold_case_and_accents(db, rep):
    """The sender's name is compared folded on both databases (SQLite's lower() is ASCII)."""
    a = make_email(db, users=[rep.id], subject="Reklamation", from_addr="jm@feinmech.example",
                   from_name="Jürgen MÜLLER")  # fmt: skip
    b = make_email(db, users=[rep.id], subject="Faktura", from_addr="ss@vyroba.example",
                   from_name="Šárka Dvořáková")  # fmt: skip
    db.commit()
    assert find(db, rep, q="from:muller") == [a.id]
    assert find(db, rep, q="from:jurgen") == [a.id]
    assert find(db, rep, **{"from": "mülle"}) == [a.id]
    assert find(db, rep, **{"from": "sarka dvorak"}) == [b.id]
    assert find(db, rep, q="from:DVOŘÁKOVÁ") == [b.id]


def test_has_is_before_after_and_in(db, rep):
    folder = create_folder(db, rep.id, "Projekty Ř")
    old = make_email(db, users=[rep.id], subject="plan", date=datetime(2025, 12, 31, 23, 0))
    new = make_email(db, users=[rep.id], subject="plan", date=datetime(2026, 1, 1, 8, 0),
                     is_read=True, is_important=True)  # fmt: skip
    filed = make_email(db, users=[rep.id], subject="plan", folder_id=folder.id,
                       date=datetime(2026, 2, 1))  # fmt: skip
    filed.has_attachments = True
    db.flush()
    assert find(db, rep, q="has:attachment") == [filed.id]
    assert sorted(find(db, rep, q="plan is:unread")) == sorted([old.id, filed.id])
    assert find(db, rep, q="plan is:read") == [new.id]
    assert find(db, rep, q="is:starred") == find(db, rep, q="is:important") == [new.id]
    assert find(db, rep, q="plan before:2026-01-01") == [old.id]
    assert find(db, rep, q="plan after:2026-01-01 before:2026-02-01") == [new.id]
    assert find(db, rep, q="plan in:projekty-r") == []  # a name nobody has finds nothing
    assert find(db, rep, q="plan in:projekty\u00a0r") == []
    assert find(db, rep, q='plan in:"projekty r"') == [filed.id]
    assert sorted(find(db, rep, q="plan in:inbox")) == sorted([old.id, new.id])


def test_unknown_operators_are_words(db, rep):
    mail = make_email(db, users=[rep.id], subject="foo bar baz")
    assert find(db, rep, q="foo:bar") == [mail.id]
    assert find(db, rep, q="baz:qux") == []


def test_a_phrase_is_words_in_that_order(db, rep):
    mail = make_email(db, users=[rep.id], subject="the quick brown fox")
    make_email(db, users=[rep.id], subject="brown quick fox")
    assert find(db, rep, q='"quick brown"') == [mail.id]
    assert sorted(find(db, rep, q="quick brown")) != [mail.id]


# --- CJK -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("明日の会議について", "会議"),  # Japanese: a word inside a run
        ("東京支店からのお知らせ", "東京"),
        ("東京支店からのお知らせ", "お知らせ"),
        ("カタカナのメール", "ﾒｰﾙ"),  # half-width kana are the full-width ones
        ("我们明天开会讨论合同", "合同"),  # Chinese
        ("我们明天开会讨论合同", "开会讨论"),
        ("請參閱附件中的報價單", "報價"),
        ("회의를 시작합니다", "회의"),  # Korean: a word with its particle
    ],
)
def test_cjk_words_of_two_characters_or_more(db, rep, stored, typed):
    mail = make_email(db, users=[rep.id], subject="subject", text=stored)
    make_email(db, users=[rep.id], subject="other", text="会社の会計と議事録 合わせて 東に京")
    assert find(db, rep, q=typed) == [mail.id]


def test_one_cjk_character_and_cjk_subjects(db, rep):
    mail = make_email(db, users=[rep.id], subject="会議の議事録", text="英語 text")
    assert find(db, rep, q="議") == [mail.id]  # inside and at the end of a run
    assert find(db, rep, q="録") == [mail.id]
    assert find(db, rep, q="subject:議事") == [mail.id]
    assert find(db, rep, q="subject:英語") == []
    assert find(db, rep, q='"英語 text"') == [mail.id]
    assert find(db, rep, q="議会") == []


def test_0005_indexes_existing_mail_and_records_folded(tmp_path):
    url, drop = databases.create_database(tmp_path)
    engine = create_engine(url)
    try:
        upgrade(url, "0004")
        now = "2026-01-01 00:00:00"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, username, name, password_hash, is_admin, is_active, created_at, signature, use_external_client, time_zone, date_format, session_version) VALUES (1, 'rep', '', '', false, true, '2026-01-01', '', false, 'UTC', 'YYYY-MM-DD', 0)"
                )
            )
            conn.execute(
                text(
                    'INSERT INTO emails (id, identity, "references", subject, from_name, '
                    "body_text, body_html, snippet, address_text, status, has_attachments, "
                    "is_auto_reply, is_bounce, size, problems, created_at) VALUES (1, 'm1', '[]', "
                    "'Děkuji, Łódź', '', '明日の会議について', '', '', '', 'Archived', false, "
                    "false, false, 0, '[]', :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO email_user_states (email_id, user_id, is_read, is_important, "
                    "in_trash, is_outgoing, sort_date, created_at) "
                    "VALUES (1, 1, false, false, false, false, :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO accounts (id, name, name_key, website, phone, description, "
                    "created_at, updated_at) VALUES (1, 'Électricité du Rhône SA', "
                    "'électricité du rhône sa', '', '', '', :now, :now)"
                ),
                {"now": now},
            )
        upgrade(url)
        from crm.db import make_session_factory

        with make_session_factory(engine)() as session:
            user = session.get(User, 1)
            for q in ("dekuji lodz", "会議", '"dekuji lodz"'):
                assert find(session, user, q=q) == [1], q
            assert session.scalar(text("SELECT search_key FROM accounts")) == (
                "electricite du rhone sa"
            )
    finally:
        engine.dispose()
        drop()

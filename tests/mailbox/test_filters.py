"""Managing filters: access by scope, saving from a form, preview and apply to existing mail."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from crm.mailbox import filter_preview, filters, folders
from crm.mailbox.filters import FilterError, FilterForm
from crm.models import EmailFilter, EmailLocation, EmailUserState, MailAccount, User
from tests.factories import make_email


@pytest.fixture
def people(db, make_user):
    ids = {
        "rep": make_user("rep", ["rep@example.com"], teams=["sales"]),
        "ann": make_user("ann", ["ann@example.com"], teams=["sales"]),
        "boss": make_user("boss", ["boss@example.com"], admin=True),
    }
    return {name: db.get(User, i) for name, i in ids.items()}


def account(db, user, is_group=False) -> MailAccount:
    acc = MailAccount(
        user_id=user.id, email_address=f"{user.username}@example.com", is_group=is_group
    )
    db.add(acc)
    db.flush()
    return acc


def state(db, email, user) -> EmailUserState:
    db.expire_all()
    return db.scalars(
        select(EmailUserState).where(
            EmailUserState.email_id == email.id, EmailUserState.user_id == user.id
        )
    ).one()


def form(**fields) -> FilterForm:
    return FilterForm(**fields)


def test_an_empty_filter_cannot_be_saved(db, people):
    with pytest.raises(FilterError, match="at least one criterion"):
        filters.save_filter(db, people["rep"], form(scope="inbox"))


def test_scope_rules(db, people):
    rep, boss = people["rep"], people["boss"]
    mine, group = account(db, rep), account(db, boss, is_group=True)
    assert filters.check_form(db, rep, form(scope="global", from_pattern="*"))
    assert not filters.check_form(db, boss, form(scope="global", from_pattern="*"))
    assert not filters.check_form(
        db, rep, form(scope="account", mail_account_id=mine.id, from_pattern="*")
    )
    assert filters.check_form(
        db, rep, form(scope="account", mail_account_id=group.id, from_pattern="*")
    )
    assert filters.check_form(db, boss, form(scope="global", action="move", from_pattern="*"))


def test_move_targets_by_scope(db, people):
    rep, boss = people["rep"], people["boss"]
    own = folders.create_folder(db, rep.id, "Mine")
    shared = folders.create_group_folder(db, "Desk", [])
    personal, group = account(db, rep), account(db, boss, is_group=True)
    ok = filters.check_form
    assert not ok(db, rep, form(action="move", folder_id=own.id, from_pattern="*"))
    assert ok(db, rep, form(action="move", folder_id=shared.id, from_pattern="*"))
    assert ok(
        db,
        rep,
        form(
            scope="account",
            mail_account_id=personal.id,
            action="move",
            folder_id=own.id,
            from_pattern="*",
        ),
    )
    assert not ok(
        db,
        boss,
        form(
            scope="account",
            mail_account_id=group.id,
            action="move",
            folder_id=shared.id,
            from_pattern="*",
        ),
    )


def test_saved_filters_are_listed_and_found_only_by_who_may_edit_them(db, people):
    rep, ann, boss = people["rep"], people["ann"], people["boss"]
    mine = filters.save_filter(db, rep, form(from_pattern="*@spam.example", body_any=["x"]))
    assert mine.user_id == rep.id and mine.body_any == ["x"]
    glob = filters.save_filter(db, boss, form(scope="global", subject_pattern="*casino*"))
    assert filters.editable_filters(db, rep)["inbox"] == [mine]
    assert filters.editable_filters(db, rep)["global"] == []
    assert filters.editable_filters(db, boss)["global"] == [glob]
    assert filters.get_editable(db, ann, mine.id) is None
    assert filters.get_editable(db, rep, glob.id) is None


def test_form_parsing(people):
    parsed = FilterForm.parse(
        {
            "scope": "inbox",
            "from_pattern": " *@x ",
            "body_any": "a\n\n b \n",
            "priority": "3",
            "include_cc": "1",
            "folder_id": "",
        }
    )
    assert parsed.from_pattern == "*@x" and parsed.body_any == ["a", "b"]
    assert parsed.priority == 3 and parsed.include_cc and parsed.folder_id is None
    assert not parsed.is_active


def test_preview_of_an_inbox_filter_shows_my_matching_mail_newest_first(db, people):
    rep, ann = people["rep"], people["ann"]
    old = make_email(
        db,
        users=[rep.id],
        subject="Invoice 1",
        from_addr="bill@shop.example",
        date=datetime(2024, 1, 1),
    )
    new = make_email(
        db,
        users=[rep.id],
        subject="INVOICE 2",
        from_addr="Bill@Shop.example",
        date=datetime(2024, 2, 1),
    )
    make_email(db, users=[rep.id], subject="Invoice 3", from_addr="x@other.example")
    make_email(db, users=[ann.id], subject="Invoice 4", from_addr="bill@shop.example")
    make_email(
        db, users=[rep.id], subject="Invoice 5", from_addr="bill@shop.example", in_trash=True
    )
    make_email(
        db,
        users=[rep.id],
        subject="Invoice 6",
        from_addr="bill@shop.example",
        outgoing_for=[rep.id],
    )
    row = filters.draft_filter(
        db, rep, form(from_pattern="*@SHOP.example", subject_pattern="invoice*")
    )
    matched, more = filter_preview.preview(db, row)
    assert [e.id for e in matched] == [new.id, old.id] and not more
    assert filter_preview.preview(db, row, limit=1) == ([matched[0]], True)


def test_preview_checks_body_names_and_cc_in_python(db, people):
    rep = people["rep"]
    body = make_email(db, users=[rep.id], text="", html="<p>Please <b>unsubscribe</b> me</p>")
    cc = make_email(db, users=[rep.id], cc=("Ünïcode@Example.com",), from_name="Zoë Müller")
    assert [
        e.id
        for e in filter_preview.preview(
            db, filters.draft_filter(db, rep, form(body_all=["please unsubscribe"]))
        )[0]
    ] == [body.id]
    assert [
        e.id
        for e in filter_preview.preview(
            db, filters.draft_filter(db, rep, form(to_pattern="ünïcode@*", include_cc=True))
        )[0]
    ] == [cc.id]
    assert [
        e.id
        for e in filter_preview.preview(
            db, filters.draft_filter(db, rep, form(from_pattern="ZOË*"))
        )[0]
    ] == [cc.id]
    assert (
        filter_preview.preview(db, filters.draft_filter(db, rep, form(to_pattern="ünïcode@*")))[0]
        == []
    )


def test_wildcard_escaping_in_sql_prefilter(db, people):
    rep = people["rep"]
    make_email(db, users=[rep.id], subject="100% off_now")
    hit = make_email(db, users=[rep.id], subject="100% off_now")
    make_email(db, users=[rep.id], subject="1000 offXnow")
    row = filters.draft_filter(db, rep, form(subject_pattern="100% off_*"))
    assert (
        len(filter_preview.preview(db, row)[0]) == 2 and hit in filter_preview.preview(db, row)[0]
    )


def test_apply_an_inbox_move_filter_to_existing_mail(db, people):
    rep, ann = people["rep"], people["ann"]
    folder = folders.create_folder(db, rep.id, "Shop")
    email = make_email(db, users=[rep.id, ann.id], from_addr="bill@shop.example")
    other = make_email(db, users=[rep.id], from_addr="x@other.example")
    row = filters.save_filter(
        db,
        rep,
        form(action="move", folder_id=folder.id, from_pattern="*@shop.example", mark_read=True),
    )
    assert filter_preview.apply_to_existing(db, rep, row) == 1
    mine = state(db, email, rep)
    assert mine.folder_id == folder.id and mine.is_read
    assert state(db, email, ann).folder_id is None and not state(db, email, ann).is_read
    assert state(db, other, rep).folder_id is None


def test_apply_an_inbox_ignore_filter_trashes_my_copy_only(db, people):
    rep, ann = people["rep"], people["ann"]
    email = make_email(db, users=[rep.id, ann.id], subject="Casino night")
    row = filters.save_filter(db, rep, form(subject_pattern="*casino*"))
    assert filter_preview.apply_to_existing(db, rep, row) == 1
    assert state(db, email, rep).in_trash and not state(db, email, ann).in_trash
    assert filter_preview.apply_to_existing(db, rep, row) == 0  # Trash is not looked at


def test_account_and_global_ignore_filters_trash_everyones_copy(db, people):
    rep, ann, boss = people["rep"], people["ann"], people["boss"]
    acc = account(db, rep)
    located = make_email(db, users=[rep.id, ann.id], subject="Casino")
    elsewhere = make_email(db, users=[rep.id], subject="Casino")
    db.add(
        EmailLocation(
            mail_account_id=acc.id, folder="INBOX", uidvalidity=1, uid=1, email_id=located.id
        )
    )
    db.flush()
    row = filters.save_filter(
        db, rep, form(scope="account", mail_account_id=acc.id, subject_pattern="casino")
    )
    assert [e.id for e in filter_preview.preview(db, row)[0]] == [located.id]
    assert filter_preview.apply_to_existing(db, rep, row) == 1
    assert state(db, located, ann).in_trash and not state(db, elsewhere, rep).in_trash
    glob = filters.save_filter(db, boss, form(scope="global", subject_pattern="casino"))
    assert filter_preview.apply_to_existing(db, boss, glob) == 2
    assert state(db, elsewhere, rep).in_trash


def test_applying_an_account_ignore_filter_leaves_mail_that_came_through_another_account(
    db, people
):
    rep, ann = people["rep"], people["ann"]
    mine, hers = account(db, rep), account(db, ann)
    shared = make_email(db, users=[rep.id, ann.id], subject="Casino")
    for uid, acc in enumerate((mine, hers), start=1):
        db.add(
            EmailLocation(
                mail_account_id=acc.id, folder="INBOX", uidvalidity=1, uid=uid, email_id=shared.id
            )
        )
    db.flush()
    row = filters.save_filter(
        db, rep, form(scope="account", mail_account_id=mine.id, subject_pattern="casino")
    )
    filter_preview.apply_to_existing(db, rep, row)
    assert not state(db, shared, ann).in_trash and not state(db, shared, rep).in_trash


def test_group_account_move_filter_shares_existing_mail_in_the_group_folder(db, people):
    rep, ann, boss = people["rep"], people["ann"], people["boss"]
    shared = folders.create_group_folder(db, "Support", [t.id for t in rep.teams])
    group = account(db, boss, is_group=True)
    email = make_email(db, users=[boss.id], subject="Help!")
    db.add(
        EmailLocation(
            mail_account_id=group.id, folder="INBOX", uidvalidity=1, uid=1, email_id=email.id
        )
    )
    db.flush()
    row = filters.save_filter(
        db,
        boss,
        form(
            scope="account",
            mail_account_id=group.id,
            action="move",
            folder_id=shared.id,
            subject_pattern="help*",
        ),
    )
    assert filter_preview.apply_to_existing(db, boss, row) == 1
    assert state(db, email, rep).folder_id == shared.id
    assert state(db, email, ann).folder_id == shared.id
    assert db.scalars(select(EmailFilter)).all() == [row]

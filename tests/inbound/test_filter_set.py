"""The filter set loaded for an import: global, account and inbox filters over the database."""

from __future__ import annotations

import pytest

from crm.inbound import filters
from crm.inbound.filters import load_filter_set
from crm.mail.filters import NO_FILTER, Placement
from crm.mailbox.folders import create_folder
from crm.models import EmailFilter, MailAccount
from tests.mail.test_filters import mail, rule


def _ignored(db, account, parsed) -> bool:
    return load_filter_set(db, account).ignored(parsed)


@pytest.fixture
def rep(make_user):
    return make_user("rep", ["rep@example.com"])


def add(db, **fields) -> EmailFilter:
    row = rule(**fields)
    db.add(row)
    db.flush()
    return row


def account(db, user_id, is_group=False) -> MailAccount:
    acc = MailAccount(user_id=user_id, email_address="rep@example.com", is_group=is_group)
    db.add(acc)
    db.flush()
    return acc


def test_global_and_account_ignore_filters_decide_import(db, rep):
    mine, other = account(db, rep), account(db, rep)
    add(db, scope="account", mail_account_id=mine.id, from_pattern="*@customer.example")
    assert _ignored(db, mine, mail())
    assert not _ignored(db, other, mail())
    add(db, scope="global", subject_pattern="invoice*")
    assert _ignored(db, other, mail())


def test_inactive_filters_and_inbox_filters_do_not_stop_import(db, rep):
    acc = account(db, rep)
    add(db, scope="global", from_pattern="*", is_active=False)
    add(db, scope="inbox", user_id=rep, from_pattern="*")
    assert not _ignored(db, acc, mail())


def test_header_only_pass_then_full_mail_pass(db, rep):
    acc = account(db, rep)
    add(db, scope="global", from_pattern="sam@*", body_any=["invoice attached"])
    add(db, scope="global", subject_pattern="no match")
    rules = load_filter_set(db, acc)
    assert not rules.ignored(mail(text="", header_only=True))
    assert not rules.ignored(mail(text="an invoice, not attached"))
    assert rules.ignored(mail(text="the invoice attached"))


def test_inbox_ignore_goes_to_trash_without_notification(db, rep):
    add(db, scope="inbox", user_id=rep, from_pattern="*@customer.example", mark_read=True)
    assert filters.inbox_placement(db, rep, mail()) == Placement(
        in_trash=True, mark_read=True, skip_notification=True
    )
    assert filters.inbox_placement(db, rep, mail(from_=("", "x@y.example"))) == NO_FILTER


def test_inbox_move_with_options_and_folder_flag(db, rep):
    quiet = create_folder(db, rep, "Quiet", skip_notifications=True)
    loud = create_folder(db, rep, "Loud")
    add(db, scope="inbox", user_id=rep, action="move", folder_id=loud.id, subject_pattern="*")
    assert filters.inbox_placement(db, rep, mail()) == Placement(folder_id=loud.id)
    add(
        db,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=quiet.id,
        to_pattern="rep@*",
        priority=-1,
        mark_read=True,
    )
    assert filters.inbox_placement(db, rep, mail()) == Placement(
        folder_id=quiet.id, mark_read=True, skip_notification=True
    )


def test_ignore_filters_win_over_move_filters_whatever_their_priority(db, rep):
    folder = create_folder(db, rep, "Invoices")
    add(
        db,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=folder.id,
        priority=-100,
        subject_pattern="invoice*",
    )
    add(db, scope="inbox", user_id=rep, action="ignore", priority=100, from_pattern="sam@*")
    assert filters.inbox_placement(db, rep, mail()).in_trash


def test_within_a_kind_the_lower_priority_number_wins_then_the_older_filter(db, rep):
    first, second = create_folder(db, rep, "First"), create_folder(db, rep, "Second")
    add(
        db,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=second.id,
        priority=5,
        from_pattern="*",
    )
    add(
        db,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=first.id,
        priority=5,
        from_pattern="*",
    )
    assert filters.inbox_placement(db, rep, mail()).folder_id == second.id
    add(
        db,
        scope="inbox",
        user_id=rep,
        action="move",
        folder_id=first.id,
        priority=1,
        from_pattern="*",
    )
    assert filters.inbox_placement(db, rep, mail()).folder_id == first.id


def test_inbox_filters_are_per_user(db, rep, make_user):
    other = make_user("other", ["other@example.com"])
    add(db, scope="inbox", user_id=other, from_pattern="*")
    rules = load_filter_set(db, None)
    assert rules.inbox_placement(rep, mail()) == NO_FILTER
    assert rules.inbox_placement(other, mail()).in_trash


def test_group_account_move_filter_names_the_group_folder(db, rep):
    from crm.mailbox.folders import create_group_folder

    shared = create_group_folder(db, "Support", [])
    group, personal = account(db, rep, is_group=True), account(db, rep)
    for acc in (group, personal):
        add(
            db,
            scope="account",
            mail_account_id=acc.id,
            action="move",
            folder_id=shared.id,
            subject_pattern="*acme",
        )
    assert filters.account_folder(db, group, mail()) == shared.id
    assert filters.account_folder(db, group, mail(subject="other")) is None
    assert filters.account_folder(db, personal, mail()) is None
    assert not _ignored(db, group, mail())

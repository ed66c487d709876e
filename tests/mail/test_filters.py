"""Filter matching (pure) and the pipeline's entry points over the database."""

from __future__ import annotations

import pytest

from crm.folders import create_folder
from crm.mail import filters
from crm.mail.filters import NO_FILTER, Placement, load_filter_set, matches
from crm.mail.parse import ParsedMail
from crm.models import EmailFilter, MailAccount


def mail(**fields) -> ParsedMail:
    values = {
        "identity": "m@x",
        "from_": ("Sam Sender", "sam@Customer.example"),
        "to": (("Rep", "rep@example.com"),),
        "cc": (("", "boss@example.com"),),
        "subject": "Invoice 2024-17 for ACME",
        "text": "Hello,\nplease find the invoice attached.\nRegards",
        "html": "",
    }
    values.update(fields)
    return ParsedMail(**values)


def rule(**fields) -> EmailFilter:
    values = {"scope": "inbox", "action": "ignore", "priority": 0, "body_any": [], "body_all": []}
    values.update(fields)
    return EmailFilter(**values)


# --- matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("sam@customer.example", True),
        ("*@customer.example", True),
        ("SAM@CUSTOMER.EXAMPLE", True),
        ("sam@*", True),
        ("*", True),
        ("s*r.example", True),
        ("am@customer.example", False),
        ("*@customer", False),
        ("sam sender", True),
        ("Sam*", True),
        ("other@customer.example", False),
    ],
)
def test_from_matches_the_whole_address_or_name_with_wildcards_ignoring_case(pattern, expected):
    assert matches(rule(from_pattern=pattern), mail()) is expected


def test_regex_characters_in_patterns_are_literal():
    assert matches(rule(subject_pattern="invoice 2024-17 for acme"), mail())
    assert not matches(rule(subject_pattern="Invoice .*"), mail())
    assert matches(rule(subject_pattern="a+b (c)?"), mail(subject="A+B (C)?"))


def test_subject_matching_is_case_insensitive_including_unicode():
    assert matches(rule(subject_pattern="*acme"), mail())
    assert matches(rule(subject_pattern="ÄPFEL*"), mail(subject="äpfel und birnen"))
    assert not matches(rule(subject_pattern="invoice"), mail())


def test_to_matches_any_recipient_and_cc_only_when_asked():
    assert matches(rule(to_pattern="REP@example.com"), mail())
    assert not matches(rule(to_pattern="boss@*"), mail())
    assert matches(rule(to_pattern="boss@*", include_cc=True), mail())
    many = mail(to=(("", "a@x.example"), ("", "b@y.example")))
    assert matches(rule(to_pattern="*@y.example"), many)


def test_an_empty_filter_never_matches():
    assert not matches(rule(), mail())
    assert not matches(rule(from_pattern="  ", body_any=["", " "]), mail())


def test_all_filled_criteria_must_match():
    assert matches(rule(from_pattern="*@customer.example", subject_pattern="invoice*"), mail())
    assert not matches(rule(from_pattern="*@customer.example", subject_pattern="order*"), mail())


def test_body_any_and_all_of_phrases():
    assert matches(rule(body_any=["unsubscribe", "INVOICE"]), mail())
    assert not matches(rule(body_any=["unsubscribe", "newsletter"]), mail())
    assert matches(rule(body_all=["please find", "regards"]), mail())
    assert not matches(rule(body_all=["please find", "unsubscribe"]), mail())


def test_body_phrases_are_found_in_html_text_across_tags_and_entities():
    html = "<p>Click <b>here</b> to&nbsp;unsubscribe &amp; leave</p><style>.x{}</style>"
    message = mail(text="", html=html)
    assert matches(rule(body_any=["click here"]), message)
    assert matches(rule(body_all=["to unsubscribe & leave"]), message)
    assert not matches(rule(body_any=[".x{}"]), message)


def test_header_only_mail_never_matches_a_filter_that_needs_the_body():
    header_only = mail(text="", header_only=True)
    assert not matches(rule(from_pattern="sam@*", body_any=["invoice"]), header_only)
    assert matches(rule(from_pattern="sam@*"), header_only)
    assert matches(rule(from_pattern="sam@*", body_any=["invoice"]), mail())


def test_a_mail_without_sender_does_not_match_a_from_pattern():
    assert not matches(rule(from_pattern="*"), mail(from_=None))


# --- the pipeline's entry points ----------------------------------------------------------


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
    assert filters.ignored_by_account_or_global(db, mine, mail())
    assert not filters.ignored_by_account_or_global(db, other, mail())
    add(db, scope="global", subject_pattern="invoice*")
    assert filters.ignored_by_account_or_global(db, other, mail())


def test_inactive_filters_and_inbox_filters_do_not_stop_import(db, rep):
    acc = account(db, rep)
    add(db, scope="global", from_pattern="*", is_active=False)
    add(db, scope="inbox", user_id=rep, from_pattern="*")
    assert not filters.ignored_by_account_or_global(db, acc, mail())


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
    from crm.folders import create_group_folder

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
    assert not filters.ignored_by_account_or_global(db, group, mail())

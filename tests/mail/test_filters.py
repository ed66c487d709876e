"""Filter matching: pure, one mail against one filter."""

from __future__ import annotations

import pytest

from crm.mail.filters import matches
from crm.mail.parse import ParsedMail
from crm.models import EmailFilter


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

"""Placeholders as text: what is one, how values are formatted, what stays as written."""

from datetime import date, datetime
from decimal import Decimal

from crm.models import User
from crm.templating import placeholders


def reader(**kw):
    return User(
        username="u",
        time_zone=kw.get("zone", "Europe/Berlin"),
        date_format=kw.get("fmt", "%d.%m.%Y"),
    )


def test_placeholders_are_found_but_not_handlebars_triple_stash_css_or_plain_braces():
    parsed = placeholders.parse(
        "Hi {Person.firstName} {{name}} {{{raw}}} {note} a{color:red} {Case.contact.firstName} {today}"
    )
    assert parsed.tokens == ("Person.firstName", "Case.contact.firstName", "today")
    assert "{{name}} {{{raw}}} {note} a{color:red}" in parsed.text


def test_an_unfilled_placeholder_stays_as_written():
    parsed = placeholders.parse("{Account.name} and {Contact.firstName}")
    assert (
        placeholders.fill(parsed.text, ["Acme", None], parsed.tokens)
        == "Acme and {Contact.firstName}"
    )


def test_marks_typed_into_the_text_are_dropped_not_filled():
    parsed = placeholders.parse("x\ue0000\ue001y {Account.name}")
    assert placeholders.fill(parsed.text, ["Acme"], parsed.tokens) == "x0y Acme"


def test_values_are_formatted_for_the_reader():
    user = reader()
    assert placeholders.format_value(date(2026, 3, 31), user) == "31.03.2026"
    # Stored times are UTC; Berlin is an hour ahead in winter.
    assert placeholders.format_value(datetime(2026, 1, 5, 23, 30), user) == "06.01.2026 00:30"
    assert placeholders.format_value(Decimal("1234.5"), user) == "1,234.50"
    assert placeholders.format_value(Decimal(7), user) == "7.00"
    assert placeholders.format_value(None, user) == ""
    assert placeholders.format_value(True, user) == "Yes"
    assert placeholders.format_value("Closed Won", user) == "Closed Won"


def test_clock_placeholders_use_the_readers_zone_and_format():
    user = reader(zone="Pacific/Auckland", fmt="%Y-%m-%d")
    values = placeholders.clock_values(user, now=datetime(2026, 12, 31, 12, 0))
    assert values == {"today": "2027-01-01", "now": "2027-01-01 01:00", "currentYear": "2027"}


def test_opt_out_and_opt_in_links_only_for_their_purpose():
    links = {"optOutUrl": "https://crm.example/o/x?a=1&b=2", "optInUrl": "https://crm.example/i/y"}
    assert placeholders.purpose_value("optOutUrl", "compose", links, html=True) is None
    assert placeholders.purpose_value("optInLink", "mass_mail", links, html=True) is None
    assert (
        placeholders.purpose_value("optOutUrl", "mass_mail", links, html=False)
        == "https://crm.example/o/x?a=1&b=2"
    )
    assert (
        placeholders.purpose_value("optOutLink", "mass_mail", links, html=True)
        == '<a href="https://crm.example/o/x?a=1&amp;b=2">Unsubscribe</a>'
    )
    assert placeholders.purpose_value("optInLink", "opt_in", links, html=False) == links["optInUrl"]
    assert placeholders.purpose_value("optOutUrl", "mass_mail", {}, html=False) is None


def test_lookup_gives_values_never_whole_views():
    views = {"Contact": {"firstName": "Ann", "account": {"name": "Acme"}}}
    assert placeholders.lookup(views, "Contact.firstName") == "Ann"
    assert placeholders.lookup(views, "Contact.account.name") == "Acme"
    assert placeholders.lookup(views, "Contact.account") is None
    assert placeholders.lookup(views, "Lead.firstName") is None
    assert placeholders.lookup(views, "Contact.firstName.x") is None

"""Rendering a template for one mail: each source of placeholders, which wins, formatting,
what the user may not read, warnings, specials, Handlebars only with a record."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from crm.models import User
from crm.templating import handlebars, rendering
from crm.templating.rendering import TemplateText, render_template
from tests.support import records


@pytest.fixture
def rep(db, make_user):
    # Both users first, committed: make_user writes through its own session.
    other_id = make_user("other", ["other@example.com"], name="Otto Other")
    user = db.get(User, make_user("rep", ["rep@example.com"], name="Rita Rep"))
    user.date_format, user.time_zone = "%d.%m.%Y", "Europe/Berlin"
    db.commit()
    user.other = db.get(User, other_id)
    return user


def mine(user):
    return {"assigned_user_id": user.id}


def render(db, user, body, subject="", html=False, **kw):
    return render_template(db, TemplateText(subject, body, html), user=user, **kw)


def test_the_acting_user(db, rep):
    out = render(db, rep, "{User.name} {User.firstName} {User.emailAddress}")
    assert out.body == "Rita Rep Rita rep@example.com"
    assert out.warnings == ()


def test_the_person_behind_the_first_recipient_also_under_its_own_type(db, rep):
    acme = records.account(db, "Acme", **mine(rep))
    records.contact(db, "Ann", "Buyer", ["ann@acme.example"], account=acme, **mine(rep))
    out = render(
        db, rep, "{Person.firstName} {Contact.lastName} {Person.emailAddress} {Person.account.name}",
        to_address="Ann@Acme.example",
    )  # fmt: skip
    assert out.body == "Ann Buyer Ann@acme.example Acme"  # the address as normalised


def test_an_unknown_recipient_still_has_its_address(db, rep):
    out = render(db, rep, "{Person.emailAddress} {Person.firstName}", to_address="who@x.example")
    assert out.body == "who@x.example {Person.firstName}"
    assert out.warnings == ("{Person.firstName} gave nothing and was left as written.",)


def test_the_parent_under_parent_and_its_type_and_its_linked_records(db, rep):
    acme = records.account(db, "Acme", **mine(rep))
    ann = records.contact(db, "Ann", "Buyer", account=acme, **mine(rep))
    deal = records.opportunity(
        db, "Big deal", account=acme, amount=Decimal("1234.5"), close_date=date(2026, 3, 31),
        stage="Closed Won", **mine(rep),
    )  # fmt: skip
    deal.contacts = [ann]
    db.flush()
    out = render(
        db, rep, "{Parent.name}|{Opportunity.amount}|{Opportunity.closeDate}|{Opportunity.stage}"
        "|{Account.name}|{Contact.firstName}|{Opportunity.account.name}",
        parent=deal,
    )  # fmt: skip
    assert out.body == "Big deal|1,234.50|31.03.2026|Closed Won|Acme|Ann|Acme"


def test_a_case_gives_its_account_and_contact(db, rep):
    acme = records.account(db, "Acme", **mine(rep))
    ann = records.contact(db, "Ann", "Buyer", account=acme, **mine(rep))
    case = records.case(db, 42, "Printer on fire", account=acme, contact_id=ann.id, **mine(rep))
    out = render(db, rep, "[#{Case.number}] {Case.name} {Account.name} {Case.contact.firstName}",
                 parent=case)  # fmt: skip
    assert out.body == "[#42] Printer on fire Acme Ann"


def test_the_parent_wins_over_the_person_for_its_own_type(db, rep):
    parent = records.contact(db, "Pat", "Parent", **mine(rep))
    records.contact(db, "Rae", "Recipient", ["rae@x.example"], **mine(rep))
    out = render(db, rep, "{Contact.firstName}/{Person.firstName}/{Parent.firstName}",
                 parent=parent, to_address="rae@x.example")  # fmt: skip
    assert out.body == "Pat/Rae/Pat"


def test_the_person_wins_over_a_record_linked_to_the_parent(db, rep):
    linked = records.contact(db, "Lin", "Linked", **mine(rep))
    case = records.case(db, 7, "Help", contact_id=linked.id, **mine(rep))
    records.contact(db, "Rae", "Recipient", ["rae@x.example"], **mine(rep))
    out = render(db, rep, "{Contact.firstName} {Case.contact.firstName}", parent=case,
                 to_address="rae@x.example")  # fmt: skip
    assert out.body == "Rae Lin"


def test_the_persons_linked_records_fill_in_below_the_parents(db, rep):
    # From the inbox: no record, a known contact as recipient; her account fills {Account.x}.
    acme = records.account(db, "Acme", **mine(rep))
    records.contact(db, "Ann", "Buyer", ["ann@acme.example"], account=acme, **mine(rep))
    out = render(db, rep, "{Contact.firstName} of {Account.name}", to_address="ann@acme.example")
    assert (out.body, out.warnings) == ("Ann of Acme", ())
    # A parent's own linked account wins over the person's.
    other = records.account(db, "Other Co", **mine(rep))
    case = records.case(db, 8, "Help", account=other, **mine(rep))
    out = render(db, rep, "{Account.name}", parent=case, to_address="ann@acme.example")
    assert out.body == "Other Co"
    # A lead links to nothing: {Account.name} stays as written.
    records.lead(db, "Leo", "Lead", ["leo@x.example"], **mine(rep))
    out = render(db, rep, "{Lead.firstName} {Account.name}", to_address="leo@x.example")
    assert out.body == "Leo {Account.name}"


def test_a_recipient_who_is_a_user_never_shadows_the_acting_user(db, rep):
    out = render(db, rep, "{User.name}/{Person.name}", to_address="other@example.com")
    assert out.body == "Rita Rep/Otto Other"


def test_values_are_escaped_in_html_bodies_only(db, rep):
    account = records.account(db, "<b>Smith & Sons</b>", **mine(rep))
    html = render(
        db, rep, "<p>{Account.name}</p>", subject="{Account.name}", html=True, parent=account
    )
    assert html.body == "<p>&lt;b&gt;Smith &amp; Sons&lt;/b&gt;</p>"
    assert html.subject == "<b>Smith & Sons</b>"
    text = render(db, rep, "{Account.name}", parent=account)
    assert text.body == "<b>Smith & Sons</b>"


def test_record_text_is_never_read_as_a_placeholder_or_template(db, rep):
    account = records.account(db, "{User.name} {{name}}", **mine(rep))
    out = render(db, rep, "{Account.name} {{name}}", parent=account)
    assert out.body == "{User.name} {{name}} {User.name} {{name}}"


def test_html_bodies_are_sanitised_like_composed_mail(db, rep):
    out = render(db, rep, '<p onclick="x()">Hi</p><script>alert(1)</script>', html=True)
    assert out.body == "<p>Hi</p>"


def test_a_record_the_user_may_not_read_gives_nothing_and_warns(db, rep):
    other = rep.other
    hidden = records.account(db, "Secret Ltd", **mine(other))
    out = render(db, rep, "{Account.name} {Parent.name}", parent=hidden)
    assert out.body == "{Account.name} {Parent.name}"
    assert any("You may not read the Account" in w for w in out.warnings)
    assert "{Account.name} gave nothing and was left as written." in out.warnings


def test_a_linked_record_the_user_may_not_read_is_left_out(db, rep):
    other = rep.other
    hidden = records.account(db, "Secret Ltd", **mine(other))
    ann = records.contact(db, "Ann", "Buyer", account=hidden, **mine(rep))
    out = render(db, rep, "{Contact.firstName} {Account.name} {Contact.account.name}", parent=ann)
    assert out.body == "Ann {Account.name} {Contact.account.name}"


def test_a_recipient_the_user_may_not_read_is_an_unknown_address(db, rep):
    other = rep.other
    records.contact(db, "Sue", "Secret", ["sue@x.example"], **mine(other))
    out = render(db, rep, "{Person.firstName} {Contact.firstName}", to_address="sue@x.example")
    assert out.body == "{Person.firstName} {Contact.firstName}"


def test_fields_outside_the_whitelist_give_nothing(db, rep):
    out = render(db, rep, "{User.passwordHash} {User.password_hash} {Account.search_key} {Foo.bar}")
    assert out.body == "{User.passwordHash} {User.password_hash} {Account.search_key} {Foo.bar}"
    # Our field names are camelCase words: a column's snake_case name is not a placeholder.
    assert out.warnings == (
        "{User.passwordHash} gave nothing and was left as written.",
        "{Foo.bar} gave nothing and was left as written.",
    )


def test_special_placeholders(db, rep):
    now = datetime(2026, 12, 31, 23, 30)  # UTC: already 2027 in Berlin
    out = render(db, rep, "{today} {now} {currentYear}", now=now)
    assert out.body == "01.01.2027 01.01.2027 00:30 2027"


def test_opt_out_only_in_mass_mail_and_opt_in_only_in_opt_in(db, rep):
    links = {"optOutUrl": "https://crm.example/u/1", "optInUrl": "https://crm.example/c/1"}
    compose = render(db, rep, "a{optOutUrl}b{optInLink}c", links=links)
    assert compose.body == "abc"
    assert len(compose.warnings) == 2 and "mass mail" in compose.warnings[0]
    mass = render(db, rep, "<p>{optOutLink}</p>", html=True, purpose="mass_mail", links=links)
    assert 'href="https://crm.example/u/1"' in mass.body and ">Unsubscribe</a>" in mass.body
    opt_in = render(db, rep, "{optInUrl}{optOutUrl}", purpose="opt_in", links=links)
    assert opt_in.body == "https://crm.example/c/1"


def test_handlebars_applies_only_with_a_parent(db, rep):
    acme = records.account(db, "Acme", **mine(rep))
    with_parent = render(db, rep, "{{#if name}}Dear {{name}}{{/if}} of {Account.name}", parent=acme)
    assert with_parent.body == "Dear Acme of Acme"
    without = render(db, rep, "{{name}} here")
    assert without.body == "{{name}} here"
    assert any("Handlebars" in w for w in without.warnings)


def test_handlebars_sees_linked_records_and_type_names(db, rep):
    acme = records.account(db, "Acme", **mine(rep))
    ann = records.contact(db, "Ann", "Buyer", account=acme, **mine(rep))
    out = render(db, rep, "{{firstName}} at {{account.name}} / {{Account.name}} / {{User.name}}",
                 parent=ann)  # fmt: skip
    assert out.body == "Ann at Acme / Acme / Rita Rep"


def test_a_broken_template_raises_for_its_author(db, rep):
    acme = records.account(db, "Acme", **mine(rep))
    with pytest.raises(handlebars.TemplateError):
        render(db, rep, "{{[x]}}", parent=acme)
    with pytest.raises(handlebars.TemplateError):
        render(db, rep, "{{[x]}}")


def test_placeholders_are_parsed_once_per_version(db, rep):
    text = TemplateText("{Account.name}", "{User.name}", False, "99:2026-01-01T00:00:00")
    first = rendering.parsed(text)
    assert rendering.parsed(TemplateText("changed?", "ignored", False, text.version_key)) is first
    assert rendering.parsed(TemplateText("{Account.name}", "{User.name}", False)) is not first


def test_a_recipient_who_is_the_parent_is_both(db, rep):
    acme = records.account(db, "Acme", **mine(rep))
    ann = records.contact(db, "Ann", "Buyer", ["ann@acme.example", "ann.b@home.example"],
                          account=acme, **mine(rep))  # fmt: skip
    out = render(db, rep, "{Person.firstName} {Person.emailAddress} {Contact.emailAddress} "
                 "{Parent.emailAddress} {Person.account.name}", parent=ann,
                 to_address="ann.b@home.example")  # fmt: skip
    assert out.body == "Ann ann.b@home.example ann@acme.example ann@acme.example Acme"

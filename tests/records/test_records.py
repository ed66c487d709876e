from decimal import Decimal

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from crm.models import Account, Contact, Lead, Task, Team, User
from crm.pagination import page_number, paginate
from crm.records import addressbook, records

KINDS = records.KINDS


@pytest.fixture
def rep(db, make_user):
    uid = make_user("rep", teams=["Sales"])
    return db.get(User, uid)


def _create(db, slug, actor, **form):
    kind = KINDS[slug]
    values = records.clean(db, kind.model, kind.fields, MultiDict(form), actor)
    record = records.create_record(db, kind, values, actor)
    db.flush()
    return record


def test_clean_reports_every_bad_field(db, rep):
    kind = KINDS["opportunities"]
    form = MultiDict({"amount": "lots", "close_date": "31/12", "stage": "Won?"})
    with pytest.raises(records.RecordError) as caught:
        records.clean(db, kind.model, kind.fields, form, rep)
    assert caught.value.errors == {
        "name": "this field is required",
        "amount": "enter an amount such as 1500.00",
        "close_date": "enter a date as YYYY-MM-DD",
        "stage": "choose one of: Prospecting, Qualification, Proposal, Negotiation, "
        "Closed Won, Closed Lost",
    }


def test_clean_types_values(db, rep):
    kind = KINDS["opportunities"]
    values = records.clean(
        db,
        kind.model,
        kind.fields,
        MultiDict({"name": " Deal ", "amount": "1,234.5", "close_date": "2030-01-31"}),
        rep,
    )
    assert values["name"] == "Deal" and values["amount"] == Decimal("1234.50")
    assert values["stage"] == "Prospecting" and values["contact_ids"] == []


def test_text_longer_than_the_column_is_refused(db, rep):
    kind = KINDS["accounts"]
    with pytest.raises(records.RecordError) as caught:
        records.clean(db, kind.model, kind.fields, MultiDict({"name": "x" * 256}), rep)
    assert caught.value.errors == {"name": "at most 255 characters"}


def test_team_must_be_one_of_the_users(db, rep, make_user):
    make_user("x", teams=["Other"])
    db.commit()
    teams = {t.name: t.id for t in db.scalars(select(Team))}
    kind = KINDS["accounts"]
    ok = records.clean(
        db, kind.model, kind.fields, MultiDict({"name": "A", "team_id": str(teams["Sales"])}), rep
    )
    assert ok["team_id"] == teams["Sales"]
    with pytest.raises(records.RecordError):
        records.clean(
            db,
            kind.model,
            kind.fields,
            MultiDict({"name": "A", "team_id": str(teams["Other"])}),
            rep,
        )


def test_addresses_first_is_primary(db, rep):
    contact = _create(
        db, "contacts", rep, last_name="Lee", emails="b@x.example\nA@X.example; b@x.example"
    )
    links = addressbook.addresses_of(db, "Contact", contact.id)
    assert [(ln.address.address, ln.is_primary) for ln in links] == [
        ("b@x.example", True),
        ("A@x.example", False),
    ]


def test_update_replaces_addresses(db, rep):
    account = _create(db, "accounts", rep, name="Acme", emails="a@acme.example")
    kind = KINDS["accounts"]
    values = records.clean(
        db, Account, kind.fields, MultiDict({"name": "Acme", "emails": "b@acme.example"}), rep
    )
    records.update_record(db, kind, account, values)
    assert [ln.address.lower for ln in addressbook.addresses_of(db, "Account", account.id)] == [
        "b@acme.example"
    ]


def test_case_numbers_count_up(db, rep):
    first = _create(db, "cases", rep, name="One")
    second = _create(db, "cases", rep, name="Two")
    assert (first.number, second.number) == (1, 2)
    assert second.display_name == "[#2] Two"


def test_delete_unlinks_tasks_and_addresses(db, rep):
    contact = _create(db, "contacts", rep, last_name="Gone", emails="gone@x.example")
    task = _create(db, "tasks", rep, name="Call", parent=f"Contact:{contact.id}")
    records.delete_record(db, KINDS["contacts"], contact)
    db.commit()
    db.refresh(task)
    assert (task.parent_type, task.parent_id) == (None, None)
    assert addressbook.holders(db, ["gone@x.example"]) == []


def test_task_parent_must_be_visible(db, rep, make_user):
    other = make_user("other")
    db.commit()
    hidden = Account(name="Hidden", assigned_user_id=other)
    db.add(hidden)
    db.flush()
    with pytest.raises(records.RecordError) as caught:
        _create(db, "tasks", rep, name="x", parent=f"Account:{hidden.id}")
    assert caught.value.errors == {"parent": "choose a record you can see"}


def test_convert_lead(db, rep):
    lead = _create(
        db,
        "leads",
        rep,
        first_name="Jo",
        last_name="Park",
        account_name="Parks",
        emails="jo@parks.example",
        phone="123",
    )
    contact = records.convert_lead(db, lead, rep)
    assert lead.status == "Converted" and lead.converted_contact_id == contact.id
    assert contact.account.name == "Parks" and lead.converted_account_id == contact.account.id
    assert contact.phone == "123" and contact.assigned_user_id == rep.id
    assert [ln.address.lower for ln in addressbook.addresses_of(db, "Contact", contact.id)] == [
        "jo@parks.example"
    ]
    with pytest.raises(records.RecordError):
        records.convert_lead(db, lead, rep)


def test_convert_lead_reuses_existing_account(db, rep):
    account = _create(db, "accounts", rep, name="Parks")
    lead = _create(db, "leads", rep, last_name="Park", account_name="Parks")
    assert records.convert_lead(db, lead, rep).account_id == account.id
    assert db.scalars(select(Account)).all() == [account]


def test_convert_lead_without_company_makes_no_account(db, rep):
    lead = _create(db, "leads", rep, last_name="Solo")
    contact = records.convert_lead(db, lead, rep)
    assert contact.account is None and lead.converted_account_id is None


def test_search_by_full_name_address_and_case_number(db, rep):
    _create(db, "contacts", rep, first_name="Ada", last_name="Lovelace", emails="ada@example.com")
    _create(db, "contacts", rep, first_name="Alan", last_name="Turing")
    names = lambda q: [
        c.display_name for c in records.search_records(db, KINDS["contacts"], rep, q).items
    ]
    assert names("ada lovelace") == ["Ada Lovelace"]
    assert names("EXAMPLE.COM") == ["Ada Lovelace"]
    assert names("100%") == []
    assert names("") == ["Ada Lovelace", "Alan Turing"]
    _create(db, "cases", rep, name="Printer")
    assert [c.name for c in records.search_records(db, KINDS["cases"], rep, "#1").items] == [
        "Printer"
    ]


def test_search_shows_only_visible_records(db, rep, make_user):
    other = make_user("other")
    db.commit()
    db.add(Contact(last_name="Theirs", assigned_user_id=other, created_by_id=other))
    _create(db, "contacts", rep, last_name="Mine")
    assert [c.last_name for c in records.search_records(db, KINDS["contacts"], rep).items] == [
        "Mine"
    ]


def test_paginate_clamps_page_numbers(db, rep):
    db.add_all([Task(name=f"T{i}", assigned_user_id=rep.id) for i in range(7)])
    db.flush()
    stmt = select(Task).order_by(Task.id)
    page = paginate(db, stmt, 5, per_page=3)
    assert (page.number, page.pages, page.total, len(page.items)) == (3, 3, 7, 1)
    assert (page.first_index, page.last_index, page.has_next, page.has_prev) == (7, 7, False, True)
    assert paginate(db, stmt, 0, per_page=3).number == 1
    assert [page_number(x) for x in ("2", "", None, "x", "-4")] == [2, 1, 1, 1, 1]


def test_detail_lists_related_records(db, rep):
    account = _create(db, "accounts", rep, name="Acme")
    contact = _create(db, "contacts", rep, last_name="Lee", account_id=str(account.id))
    _create(
        db,
        "opportunities",
        rep,
        name="Deal",
        account_id=str(account.id),
        contact_ids=str(contact.id),
    )
    shown = records.detail(db, KINDS["accounts"], account, rep)
    related = {kind.slug: [r.display_name for r in rows] for kind, rows in shown.related}
    assert related == {"contacts": ["Lee"], "opportunities": ["Deal"], "cases": [], "tasks": []}
    contact_related = {
        k.slug: rows for k, rows in records.detail(db, KINDS["contacts"], contact, rep).related
    }
    assert [o.name for o in contact_related["opportunities"]] == ["Deal"]


def test_lead_is_a_lead():
    assert KINDS["leads"].model is Lead and KINDS["leads"].has_addresses


def test_search_finds_prefixes_without_regard_to_case_or_accents(db, rep):
    _create(db, "accounts", rep, name="Électricité du Rhône SA")
    _create(db, "accounts", rep, name="АО «Волга-Пром»")
    _create(db, "accounts", rep, name="Acme")
    names = lambda q: [a.name for a in records.search_records(db, KINDS["accounts"], rep, q).items]
    for q in ("elec", "ELECTRICITÉ", "électricité du", "rhone", "du  rhône"):
        assert names(q) == ["Électricité du Rhône SA"], q
    for q in ("волга", "ВОЛГА-пром", "volga"):
        assert names(q) == ["АО «Волга-Пром»"], q
    lead = _create(db, "leads", rep, first_name="Zoë", last_name="Nováková", account_name="Müller")
    leads = lambda q: records.search_records(db, KINDS["leads"], rep, q).items
    assert leads("zoe novak") == leads("muller") == leads("NOVÁ") == [lead]
    records.update_record(db, KINDS["leads"], lead, {"last_name": "Dvořák"})
    db.flush()
    assert leads("dvorak") == [lead] and leads("novak") == []

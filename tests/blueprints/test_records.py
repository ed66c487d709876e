import re

import pytest
from sqlalchemy import select

from crm.models import Account, Case, Contact, Lead, Task
from crm.records import addressbook


def _make(services, model, **fields):
    with services.session() as s:
        record = model(**fields)
        s.add(record)
        s.flush()
        return record.id


def _user_id(services, username):
    from crm.models import User

    with services.session() as s:
        return s.scalars(select(User).where(User.username == username)).one().id


def test_records_need_sign_in(client):
    response = client.get("/records/contacts/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_unknown_kind_is_404(user_client):
    assert user_client.get("/records/widgets/").status_code == 404


@pytest.mark.parametrize(
    "kind", ["accounts", "contacts", "leads", "opportunities", "cases", "tasks"]
)
def test_every_list_renders_as_page_and_as_htmx_body(user_client, kind):
    page = user_client.get(f"/records/{kind}/")
    assert page.status_code == 200
    assert b"<html" in page.data and b'id="rows"' in page.data
    body = user_client.get(f"/records/{kind}/", headers={"HX-Request": "true"})
    assert body.status_code == 200
    assert b"<html" not in body.data and b'id="rows"' in body.data
    assert "HX-Request" in body.headers["Vary"]
    assert user_client.get(f"/records/{kind}/new").status_code == 200


@pytest.mark.parametrize(
    "kind, values",
    [
        ("accounts", {"name": "Acme"}),
        ("contacts", {"last_name": "Lee"}),
        ("leads", {"last_name": "Park", "status": "New"}),
        ("opportunities", {"name": "Deal", "stage": "Prospecting"}),
        ("cases", {"name": "Broken", "status": "New", "priority": "High"}),
        ("tasks", {"name": "Call", "status": "Not Started"}),
    ],
)
def test_detail_edit_and_delete_pages_render_as_page_and_as_htmx_body(user_client, kind, values):
    created = user_client.post(f"/records/{kind}/new", data=values, htmx=True)
    assert created.status_code == 303
    detail = created.headers["Location"]
    for url in (detail, f"{detail}/edit", f"{detail}/delete"):
        page = user_client.get(url)
        assert page.status_code == 200 and b"<html" in page.data, url
        body = user_client.get(url, headers={"HX-Request": "true"})
        assert body.status_code == 200 and b"<html" not in body.data, url
        assert "HX-Request" in body.headers["Vary"]
        # Without JavaScript: every form posts somewhere, every hx-get also has an href.
        text = page.get_data(as_text=True)
        assert all("action=" in form for form in re.findall(r"<form[^>]*>", text)), url
    edited = user_client.post(f"{detail}/edit", data=values, htmx=True)
    assert edited.status_code == 303 and edited.headers["Location"] == detail
    deleted = user_client.post(f"{detail}/delete", htmx=True)
    assert deleted.status_code == 303 and deleted.headers["Location"] == f"/records/{kind}/"
    assert user_client.get(detail).status_code == 404


def test_create_contact_with_addresses_redirects_to_detail(user_client, services):
    response = user_client.post(
        "/records/contacts/new",
        data={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "emails": "ADA@Example.com; ada@work.example",
        },
    )
    assert response.status_code == 303
    detail = user_client.get(response.headers["Location"])
    text = detail.get_data(as_text=True)
    assert "Ada Lovelace" in text and "ADA@example.com" in text and "primary" in text
    with services.session() as s:
        contact = s.scalars(select(Contact)).one()
        assert contact.assigned_user_id == contact.created_by_id == _user_id(services, "rep")
        links = addressbook.addresses_of(s, "Contact", contact.id)
        assert [(ln.address.lower, ln.is_primary) for ln in links] == [
            ("ada@example.com", True),
            ("ada@work.example", False),
        ]


def test_invalid_form_shows_every_error(user_client):
    response = user_client.post("/records/contacts/new", data={"emails": "not-an-address"})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "not an e-mail address: not-an-address" in text
    assert "enter a first or last name" in text
    htmx = user_client.post("/records/contacts/new", data={"emails": "x"}, htmx=True)
    assert htmx.status_code == 200  # htmx swaps only 2xx answers
    assert b"<html" not in htmx.data and b"not an e-mail address" in htmx.data


def test_htmx_create_also_answers_303(user_client):
    response = user_client.post("/records/accounts/new", data={"name": "Acme"}, htmx=True)
    assert response.status_code == 303


def test_search_matches_name_and_address_and_fragment_replaces_url(user_client, services):
    user_client.post(
        "/records/accounts/new", data={"name": "Acme Corp", "emails": "sales@acme.example"}
    )
    user_client.post("/records/accounts/new", data={"name": "Globex"})
    by_name = user_client.get("/records/accounts/?q=acme").get_data(as_text=True)
    assert "Acme Corp" in by_name and "Globex" not in by_name
    rows = user_client.get("/records/accounts/rows?q=sales%40acme", headers={"HX-Request": "true"})
    assert rows.status_code == 200
    text = rows.get_data(as_text=True)
    assert (
        text.lstrip().startswith('<div id="rows"') and "Acme Corp" in text and "Globex" not in text
    )
    assert rows.headers["HX-Replace-Url"] == "/records/accounts/?q=sales@acme&page=1"


def test_list_pages_through_records(user_client, services):
    uid = _user_id(services, "rep")
    with services.session() as s:
        s.add_all([Account(name=f"Firm {i:02d}", assigned_user_id=uid) for i in range(30)])
    first = user_client.get("/records/accounts/").get_data(as_text=True)
    assert "Firm 00" in first and "Firm 25" not in first and "1–25 of 30" in first
    second = user_client.get("/records/accounts/rows?page=2").get_data(as_text=True)
    assert "Firm 25" in second and "Firm 00" not in second and "26–30 of 30" in second
    assert 'href="/records/accounts/?page=1"' in second


def test_edit_updates_record(user_client, services):
    user_client.post("/records/accounts/new", data={"name": "Acme"})
    with services.session() as s:
        account_id = s.scalars(select(Account.id)).one()
    form = user_client.get(f"/records/accounts/{account_id}/edit").get_data(as_text=True)
    assert 'value="Acme"' in form
    response = user_client.post(
        f"/records/accounts/{account_id}/edit", data={"name": "Acme Ltd", "phone": "+44 1"}
    )
    assert response.status_code == 303
    with services.session() as s:
        account = s.get(Account, account_id)
        assert (account.name, account.phone) == ("Acme Ltd", "+44 1")


def test_delete_asks_then_deletes(user_client, services):
    user_client.post("/records/leads/new", data={"last_name": "Smith", "emails": "s@x.example"})
    with services.session() as s:
        lead_id = s.scalars(select(Lead.id)).one()
    confirm = user_client.get(f"/records/leads/{lead_id}/delete")
    assert b"cannot be undone" in confirm.data
    assert user_client.post(f"/records/leads/{lead_id}/delete", htmx=True).status_code == 303
    with services.session() as s:
        assert s.get(Lead, lead_id) is None
        assert addressbook.addresses_of(s, "Lead", lead_id) == []


@pytest.mark.parametrize("suffix", ["", "/edit", "/delete"])
def test_another_users_record_is_404(user_client, make_user, services, suffix):
    other = make_user("other")
    record_id = _make(
        services, Contact, last_name="Hidden", assigned_user_id=other, created_by_id=other
    )
    assert user_client.get(f"/records/contacts/{record_id}{suffix}").status_code == 404
    if suffix:
        assert (
            user_client.post(
                f"/records/contacts/{record_id}{suffix}", data={"last_name": "Mine"}
            ).status_code
            == 404
        )
    assert "Hidden" not in user_client.get("/records/contacts/").get_data(as_text=True)


def test_team_members_see_team_records(client, make_user, services):
    from crm.models import Team

    make_user("ann", teams=["Sales"])
    bob = make_user("bob", teams=["Sales"])
    with services.session() as s:
        team_id = s.scalars(select(Team.id)).one()
    record_id = _make(services, Account, name="Shared", assigned_user_id=bob, team_id=team_id)
    client.login("ann")
    response = client.get(f"/records/accounts/{record_id}")
    assert response.status_code == 200 and "Shared" in response.get_data(as_text=True)
    assert "Shared" in client.get("/records/accounts/").get_data(as_text=True)


def test_linking_to_a_hidden_account_is_refused(user_client, make_user, services):
    other = make_user("other")
    account_id = _make(services, Account, name="Theirs", assigned_user_id=other)
    response = user_client.post(
        "/records/contacts/new", data={"last_name": "X", "account_id": str(account_id)}
    )
    assert response.status_code == 422
    assert b"choose an account you can see" in response.data


def test_admin_assigns_records(admin_client, make_user, services):
    rep = make_user("rep2")
    admin_client.post("/records/accounts/new", data={"name": "A", "assigned_user_id": str(rep)})
    with services.session() as s:
        account = s.scalars(select(Account)).one()
        assert account.assigned_user_id == rep
        assert account.created_by_id == _user_id(services, "admin")


def test_regular_user_cannot_assign(user_client, make_user, services):
    other = make_user("other")
    user_client.post("/records/accounts/new", data={"name": "A", "assigned_user_id": str(other)})
    with services.session() as s:
        assert s.scalars(select(Account)).one().assigned_user_id == _user_id(services, "rep")


def test_cases_are_numbered(user_client, services):
    for name in ("First", "Second"):
        user_client.post("/records/cases/new", data={"name": name, "status": "New"})
    with services.session() as s:
        assert sorted(s.scalars(select(Case.number))) == [1, 2]
    assert "#2" in user_client.get("/records/cases/").get_data(as_text=True)


def test_opportunity_with_account_contacts_amount(user_client, services):
    uid = _user_id(services, "rep")
    account_id = _make(services, Account, name="Acme", assigned_user_id=uid)
    contact_id = _make(services, Contact, last_name="Buyer", assigned_user_id=uid)
    response = user_client.post(
        "/records/opportunities/new",
        data={
            "name": "Big deal",
            "account_id": str(account_id),
            "contact_ids": [str(contact_id)],
            "stage": "Proposal",
            "amount": "12,500.5",
            "close_date": "2030-01-31",
        },
    )
    assert response.status_code == 303
    text = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "12,500.50" in text and "Acme" in text and "Buyer" in text and "Proposal" in text
    account_page = user_client.get(f"/records/accounts/{account_id}").get_data(as_text=True)
    assert "Big deal" in account_page


def test_task_for_a_record_and_listed_on_it(user_client, services):
    uid = _user_id(services, "rep")
    contact_id = _make(services, Contact, last_name="Lee", assigned_user_id=uid)
    form = user_client.get(f"/records/tasks/new?parent=Contact:{contact_id}").get_data(as_text=True)
    assert re.search(rf'value="Contact:{contact_id}"\s+selected', form)
    response = user_client.post(
        "/records/tasks/new",
        data={
            "name": "Call back",
            "status": "Not Started",
            "parent": f"Contact:{contact_id}",
            "due_at": "2030-02-01T09:30",
        },
    )
    assert response.status_code == 303
    assert "Call back" in user_client.get(f"/records/contacts/{contact_id}").get_data(as_text=True)
    with services.session() as s:
        task = s.scalars(select(Task)).one()
        assert (task.parent_type, task.parent_id) == ("Contact", contact_id)
    listing = user_client.get("/records/tasks/").get_data(as_text=True)
    assert f'<a href="/records/contacts/{contact_id}">Lee</a>' in listing


def test_convert_lead_creates_contact_and_account(user_client, services):
    user_client.post(
        "/records/leads/new",
        data={
            "first_name": "Jo",
            "last_name": "Park",
            "account_name": "Parks Inc",
            "status": "New",
            "emails": "jo@parks.example",
        },
    )
    with services.session() as s:
        lead_id = s.scalars(select(Lead.id)).one()
    response = user_client.post(f"/records/leads/{lead_id}/convert")
    assert response.status_code == 303
    text = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Jo Park" in text and "Parks Inc" in text and "jo@parks.example" in text
    assert user_client.post(f"/records/leads/{lead_id}/convert").status_code == 409


def test_history_panels_only_when_linking_exists(user_client, app, services):
    uid = _user_id(services, "rep")
    record_id = _make(services, Account, name="Acme", assigned_user_id=uid)
    text = user_client.get(f"/records/accounts/{record_id}").get_data(as_text=True)
    expected = "linking.history" in app.view_functions
    assert (f'hx-get="/linking/history/Account/{record_id}"' in text) is expected


def test_task_times_are_in_the_users_time_zone(user_client, services):
    from datetime import datetime

    from crm.models import User

    with services.session() as s:
        s.scalars(select(User).where(User.username == "rep")).one().time_zone = "Europe/Berlin"
    response = user_client.post(
        "/records/tasks/new",
        data={"name": "Call", "status": "Not Started", "due_at": "2030-02-01T09:30"},
    )
    with services.session() as s:
        task = s.scalars(select(Task)).one()
        assert task.due_at == datetime(2030, 2, 1, 8, 30)  # stored in UTC
    assert "2030-02-01 09:30" in user_client.get("/records/tasks/").get_data(as_text=True)
    form = user_client.get(response.headers["Location"] + "/edit").get_data(as_text=True)
    assert 'value="2030-02-01T09:30"' in form


def test_address_flags_are_set_from_the_record_page(user_client, services):
    uid = _user_id(services, "rep")
    contact_id = _make(services, Contact, last_name="Lee", assigned_user_id=uid)
    lead_id = _make(services, Lead, last_name="Lee", assigned_user_id=uid)
    with services.session() as s:
        addressbook.set_addresses(s, "Contact", contact_id, ["Lee@Example.com"])
        addressbook.set_addresses(s, "Lead", lead_id, ["lee@example.com"])
        address_id = addressbook.addresses_of(s, "Contact", contact_id)[0].address_id
    url = f"/records/contacts/{contact_id}/addresses/{address_id}"
    page = user_client.get(f"/records/contacts/{contact_id}").get_data(as_text=True)
    assert f'action="{url}"' in page and 'name="opted_out"' in page
    response = user_client.post(url, data={"opted_out": "on"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/records/contacts/{contact_id}"
    # The flags belong to the address, so the lead holding it shows them too.
    lead_page = user_client.get(f"/records/leads/{lead_id}").get_data(as_text=True)
    assert "opted out</span>" in lead_page and "invalid</span>" not in lead_page
    assert user_client.post(url, data={"invalid": "on"}, htmx=True).status_code == 303
    with services.session() as s:
        from crm.models import EmailAddress

        address = s.get(EmailAddress, address_id)
        assert (address.opted_out, address.invalid, address.address) == (
            False,
            True,
            "Lee@example.com",
        )


def test_address_flags_need_a_visible_record_holding_the_address(user_client, make_user, services):
    uid = _user_id(services, "rep")
    other = make_user("other")
    mine = _make(services, Contact, last_name="Mine", assigned_user_id=uid)
    hidden = _make(services, Contact, last_name="Hidden", assigned_user_id=other)
    with services.session() as s:
        addressbook.set_addresses(s, "Contact", hidden, ["hidden@example.com"])
        address_id = addressbook.addresses_of(s, "Contact", hidden)[0].address_id
    flags = {"opted_out": "on"}
    assert (
        user_client.post(
            f"/records/contacts/{hidden}/addresses/{address_id}", data=flags
        ).status_code
        == 404
    )
    assert (
        user_client.post(f"/records/contacts/{mine}/addresses/{address_id}", data=flags).status_code
        == 404
    )
    with services.session() as s:
        from crm.models import EmailAddress

        assert s.get(EmailAddress, address_id).opted_out is False

"""The linking area over HTTP: panels as pages and as htmx fragments, actions, access."""

import re
from datetime import datetime

import pytest
from sqlalchemy import select

from crm.models import Case, Contact, EmailUserState, Lead, Task, User
from tests.factories import make_email
from tests.support import records

HX = {"HX-Request": "true"}


@pytest.fixture
def rep(user_client, db):
    return db.scalars(select(User).where(User.username == "rep")).one()


@pytest.fixture
def linked_mail(db, rep):
    acme = records.account(db, assigned_user_id=rep.id, addresses=["sender@customer.example"])
    email = make_email(
        db, subject="Quote please", parent=acme, users=[rep.id], cc=("stranger@x.example",)
    )
    email.link_rule = "sender-address"
    email.account_id = acme.id
    db.commit()
    return email, acme


# --- History ------------------------------------------------------------------------------


def test_history_is_a_full_page(user_client, linked_mail):
    _, acme = linked_mail
    response = user_client.get(f"/linking/history/Account/{acme.id}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in body
    assert "Quote please" in body and "History" in body
    assert "HX-Request" in response.headers["Vary"]


def test_history_is_a_fragment_for_htmx(user_client, linked_mail):
    _, acme = linked_mail
    response = user_client.get(f"/linking/history/Account/{acme.id}", headers=HX)
    body = response.get_data(as_text=True)
    assert "<html" not in body and f'id="linking-history-Account-{acme.id}"' in body
    assert "Quote please" in body


def test_history_accepts_the_record_kind_slug(user_client, linked_mail):
    _, acme = linked_mail
    response = user_client.get(f"/linking/history/accounts/{acme.id}", headers=HX)
    assert response.status_code == 200 and "Quote please" in response.get_data(as_text=True)


def test_history_of_a_hidden_record_is_404(user_client, db, rep):
    other = records.account(db, name="Not mine")
    db.commit()
    assert user_client.get(f"/linking/history/Account/{other.id}").status_code == 404
    assert user_client.get("/linking/history/Nothing/1").status_code == 404


def test_history_pages_with_htmx_links(user_client, db, rep):
    acme = records.account(db, assigned_user_id=rep.id)
    for i in range(25):
        make_email(db, subject=f"mail {i}", parent=acme)
    db.commit()
    body = user_client.get(f"/linking/history/Account/{acme.id}", headers=HX).get_data(as_text=True)
    assert f"/linking/history/Account/{acme.id}?page=2" in body and 'hx-swap="outerHTML"' in body
    second = user_client.get(f"/linking/history/Account/{acme.id}?page=2").get_data(as_text=True)
    assert "21–25 of 25" in second


# --- Activities ---------------------------------------------------------------------------


def test_activities_as_page_and_fragment(user_client, db, rep):
    acme = records.account(db, assigned_user_id=rep.id)
    db.add(
        Task(name="Call back", parent_type="Account", parent_id=acme.id, assigned_user_id=rep.id)
    )
    db.commit()
    page = user_client.get(f"/linking/activities/Account/{acme.id}").get_data(as_text=True)
    frag = user_client.get(f"/linking/activities/Account/{acme.id}", headers=HX).get_data(
        as_text=True
    )
    assert "<html" in page and "<html" not in frag
    assert "Call back" in page and "Call back" in frag


# --- the mail panel -------------------------------------------------------------------------


def test_panel_shows_parent_rule_and_people(user_client, linked_mail):
    email, acme = linked_mail
    body = user_client.get(f"/linking/email/{email.id}/panel").get_data(as_text=True)
    assert "<html" in body and "Acme" in body and "linked by sender address" in body
    assert f"/records/accounts/{acme.id}" in body
    assert "stranger@x.example" in body
    assert f"/linking/email/{email.id}/contact?address=stranger@x.example" in body


def test_panel_fragment_has_a_stable_root(user_client, linked_mail):
    email, _ = linked_mail
    body = user_client.get(f"/linking/email/{email.id}/panel", headers=HX).get_data(as_text=True)
    assert "<html" not in body and f'id="linking-panel-{email.id}"' in body


def test_panel_of_mail_the_user_may_not_read_is_404(user_client, db, rep):
    email = make_email(db)
    db.commit()
    assert user_client.get(f"/linking/email/{email.id}/panel").status_code == 404


def test_set_parent_by_form_redirects_and_by_htmx_answers_the_panel(
    user_client, db, linked_mail, rep
):
    email, _ = linked_mail
    lead = records.lead(db, assigned_user_id=rep.id)
    db.commit()
    url = f"/linking/email/{email.id}/parent"
    response = user_client.post(url, data={"parent_type": "Lead", "parent_id": lead.id})
    assert response.status_code == 303 and response.headers["Location"].endswith("/panel")
    db.rollback()  # a new snapshot: the request committed on another connection
    db.refresh(email)
    assert (email.parent_type, email.parent_id, email.link_rule) == ("Lead", lead.id, "manual")
    response = user_client.post(url, data={"clear": "1"}, htmx=True)
    assert response.status_code == 200 and "Not linked to any record" in response.get_data(
        as_text=True
    )
    db.rollback()  # a new snapshot: the request committed on another connection
    db.refresh(email)
    assert email.parent_type is None


def test_cannot_set_a_parent_the_user_may_not_read(user_client, db, linked_mail):
    email, acme = linked_mail
    hidden = records.lead(db)
    db.commit()
    response = user_client.post(
        f"/linking/email/{email.id}/parent", data={"parent_type": "Lead", "parent_id": hidden.id}
    )
    assert response.status_code == 404
    db.rollback()  # a new snapshot: the request committed on another connection
    db.refresh(email)
    assert email.parent_id == acme.id


def test_picker_lists_only_readable_records(user_client, db, linked_mail, rep):
    email, _ = linked_mail
    records.lead(db, first="Visible", last="Lead", assigned_user_id=rep.id)
    records.lead(db, first="Hidden", last="Lead")
    db.commit()
    url = f"/linking/email/{email.id}/records?parent_type=Lead&q=Lead"
    frag = user_client.get(url, headers=HX).get_data(as_text=True)
    assert "Visible Lead" in frag and "Hidden" not in frag and "<html" not in frag
    assert "<html" in user_client.get(url).get_data(as_text=True)


def test_create_contact_form_is_prefilled_from_the_header(user_client, db, rep):
    email = make_email(db, from_addr="jd@newco.example", from_name="Doe, John", users=[rep.id])
    db.commit()
    body = user_client.get(f"/linking/email/{email.id}/contact?address=jd@newco.example").get_data(
        as_text=True
    )
    assert 'value="John"' in body and 'value="Doe"' in body and 'value="jd@newco.example"' in body


def test_creating_a_contact_links_the_orphan_mail(user_client, db, rep):
    email = make_email(db, from_addr="jd@newco.example", users=[rep.id])
    db.commit()
    response = user_client.post(
        f"/linking/email/{email.id}/contact",
        data={"first_name": "John", "last_name": "Doe", "address": "jd@newco.example"},
    )
    assert response.status_code == 303
    contact = db.scalars(select(Contact)).one()
    db.rollback()  # a new snapshot: the request committed on another connection
    db.refresh(email)
    assert (email.parent_type, email.parent_id, email.link_rule) == (
        "Contact",
        contact.id,
        "created-from-mail",
    )
    assert contact.assigned_user_id == rep.id


def test_creating_a_lead_without_a_name_is_refused(user_client, db, rep):
    email = make_email(db, users=[rep.id])
    db.commit()
    url = f"/linking/email/{email.id}/lead"
    assert (
        user_client.post(
            url, data={"first_name": "", "last_name": "", "address": "x@y.example"}
        ).status_code
        == 422
    )
    response = user_client.post(url, data={"last_name": "", "address": "x@y.example"}, htmx=True)
    assert response.headers["HX-Retarget"] == f"#linking-action-{email.id}"
    assert db.scalars(select(Lead)).first() is None


def test_creating_a_task_gives_the_assignee_the_mail(user_client, db, linked_mail, make_user):
    email, acme = linked_mail
    colleague = make_user("colleague")
    response = user_client.post(
        f"/linking/email/{email.id}/task",
        data={"name": "Send quote", "assigned_user_id": colleague, "due": "2030-01-02"},
        htmx=True,
    )
    assert response.status_code == 200 and "Send quote" in response.get_data(as_text=True)
    task = db.scalars(select(Task)).one()
    assert (task.parent_type, task.parent_id, task.email_id, task.assigned_user_id) == (
        "Account",
        acme.id,
        email.id,
        colleague,
    )
    assert db.scalars(select(EmailUserState).filter_by(email_id=email.id, user_id=colleague)).one()


def test_creating_a_case_links_the_mail(user_client, db, linked_mail):
    email, acme = linked_mail
    assert "Create Case" in user_client.get(f"/linking/email/{email.id}/case").get_data(
        as_text=True
    )
    response = user_client.post(f"/linking/email/{email.id}/case", data={"name": ""})
    assert response.status_code == 303
    case = db.scalars(select(Case)).one()
    db.rollback()  # a new snapshot: the request committed on another connection
    db.refresh(email)
    assert (case.name, case.account_id) == ("Quote please", acme.id)
    assert (email.parent_type, email.parent_id, email.link_rule) == (
        "Case",
        case.id,
        "case-created",
    )


def test_signed_out_users_are_sent_to_login(client):
    assert client.get("/linking/history/Account/1").status_code == 302


def test_a_task_from_a_mail_is_confirmed_listed_on_the_panel_and_links_back(
    user_client, db, linked_mail, rep
):
    email, _ = linked_mail
    rep.time_zone = "Europe/Prague"
    db.commit()
    response = user_client.post(
        f"/linking/email/{email.id}/task",
        data={"name": "Send quote", "due": "2030-01-02"},
        htmx=True,
    )
    panel = response.get_data(as_text=True)
    assert "Task “Send quote” created." in panel
    task = db.scalars(select(Task)).one()
    # The date is the start of that day where the user is, kept in UTC, and shown as a date.
    assert task.due_at == datetime(2030, 1, 1, 23, 0)
    assert f'href="/records/tasks/{task.id}"' in panel and "due 2030-01-02<" in panel
    again = user_client.get(f"/linking/email/{email.id}/panel").get_data(as_text=True)
    assert "Tasks from this mail" in again and "Send quote" in again and "created" not in again
    page = user_client.get(f"/records/tasks/{task.id}").get_data(as_text=True)
    assert f'href="/mail/{email.id}"' in page
    assert "2030-01-02" in page and "00:00" not in page


def test_records_made_from_a_mail_are_confirmed_on_the_next_page_without_js(user_client, db, rep):
    email = make_email(db, from_addr="jd@newco.example", users=[rep.id])
    db.commit()
    response = user_client.post(
        f"/linking/email/{email.id}/contact",
        data={"first_name": "John", "last_name": "Doe", "address": "jd@newco.example"},
    )
    page = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Contact “John Doe” created." in page


def test_create_contact_offers_the_account_of_the_senders_domain(user_client, db, rep):
    acme = records.account(db, name="Acme", assigned_user_id=rep.id)
    records.contact(db, addresses=["buyer@acme.example"], account=acme, assigned_user_id=rep.id)
    records.account(db, name="Own address", assigned_user_id=rep.id, addresses=["info@own.example"])
    records.account(db, name="Hidden", addresses=["x@hidden.example"])  # not the rep's
    records.account(db, name="Freemail", assigned_user_id=rep.id, addresses=["a@gmail.com"])
    db.commit()

    def offered(address):
        email = make_email(db, from_addr=address, users=[rep.id])
        db.commit()
        form = user_client.get(f"/linking/email/{email.id}/contact").get_data(as_text=True)
        selected = re.search(r'<option value="(\d*)" selected>([^<]*)</option>', form)
        return selected.group(2) if selected else None

    assert offered("new.person@acme.example") == "Acme"  # through a contact's address
    assert offered("boss@own.example") == "Own address"  # through the account's own address
    assert offered("someone@hidden.example") is None
    assert offered("friend@gmail.com") is None  # anyone can have a gmail address


def test_create_contact_with_the_offered_account(user_client, db, rep):
    acme = records.account(
        db, name="Acme", assigned_user_id=rep.id, addresses=["info@acme.example"]
    )
    email = make_email(db, from_addr="new@acme.example", users=[rep.id])
    db.commit()
    user_client.post(
        f"/linking/email/{email.id}/contact",
        data={"last_name": "New", "address": "new@acme.example", "account_id": str(acme.id)},
    )
    assert db.scalars(select(Contact).where(Contact.last_name == "New")).one().account_id == acme.id

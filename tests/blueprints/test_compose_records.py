"""Choosing the record of a mail in compose (issue 13): the Record field's search (as a page
and as the htmx fragment under the field), the choice swapping the field in, and refusals
(another user's record, an unknown type, no id) as a message that keeps the form's record."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm import settings
from crm.models import Email, User
from tests.support import records


@pytest.fixture
def people(services, user_client, make_user):
    """rep's Acme & Co, Ann of Acme and Acme Lead; Acme Hidden belongs to someone else."""
    other = make_user("other")
    with services.session() as session:
        rep = session.scalar(select(User.id).where(User.username == "rep"))
        acme = records.account(session, "Acme & Co", assigned_user_id=rep)
        globex = records.account(session, "Globex Acme", assigned_user_id=rep)
        hidden = records.account(session, "Acme Hidden", assigned_user_id=other)
        ann = records.contact(session, "Ann", "Buyer", ["ann@acme.example"], account=acme,
                              assigned_user_id=rep)  # fmt: skip
        session.commit()
        return {"acme": acme.id, "globex": globex.id, "hidden": hidden.id, "ann": ann.id}


def _choose(client, **form):
    return client.post("/compose/parent", data=form, htmx=True)


def _hidden(html: str, name: str) -> str:
    return re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', html).group(1)


def test_the_search_fragment_offers_only_records_the_user_may_read(user_client, people):
    response = user_client.get(
        "/compose/records?record_type=Account&q=acme", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<div id="compose-record-choices"')
    assert "Acme &amp; Co" in html and "Globex Acme" in html
    assert "Acme Hidden" not in html
    # Each choice swaps the Record field in place, naming the record by type and id.
    assert 'hx-post="/compose/parent"' in html and 'hx-target="#compose-record"' in html
    assert f'"choose_id": {people["acme"]}' in html and '"choose_type": "Account"' in html


def test_the_search_page_links_to_a_new_mail_for_each_record(user_client, people):
    response = user_client.get("/compose/records?record_type=Contact&q=ann")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert f'href="/compose/?parent_type=Contact&amp;parent_id={people["ann"]}"' in html
    assert "hx-post" not in html  # no compose form here to swap a field of
    assert 'action="/compose/records"' in html


def test_a_search_with_no_match_says_so(user_client, people):
    html = user_client.get(
        "/compose/records?record_type=Lead&q=zzz", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "No leads found for “zzz”." in html


def test_a_search_of_an_unknown_type_is_a_message_not_a_500(user_client, people):
    page = user_client.get("/compose/records?record_type=Task&q=a")
    assert page.status_code == 422
    assert "A mail can be linked to: Account, Contact, Lead, Opportunity, Case." in page.get_data(
        as_text=True
    )
    fragment = user_client.get("/compose/records?record_type=Nope", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "A mail can be linked to" in fragment.get_data(
        as_text=True
    )


def test_choosing_a_record_swaps_in_the_field_with_it(user_client, people):
    response = _choose(
        user_client, parent_type="Account", parent_id=people["acme"], choose_type="Contact",
        choose_id=people["ann"],
    )  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<div class="parent" id="compose-record" data-chosen="1">')
    assert _hidden(html, "parent_type") == "Contact"
    assert _hidden(html, "parent_id") == str(people["ann"])
    assert 'id="compose-parent">Contact: Ann Buyer</span>' in html
    assert 'id="clear-parent"' in html and 'id="compose-record-choices"' in html


def test_another_users_record_is_refused_and_the_forms_record_kept(user_client, people):
    html = _choose(
        user_client, parent_type="Account", parent_id=people["acme"], choose_type="Account",
        choose_id=people["hidden"],
    ).get_data(as_text=True)  # fmt: skip
    assert "That account is not one you may open." in html
    assert "Acme Hidden" not in html and "data-chosen" not in html
    assert _hidden(html, "parent_id") == str(people["acme"])
    assert "Account: Acme &amp; Co" in html


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"choose_type": "Account"}, "No account was chosen: pick one from the search results."),
        (
            {"choose_type": "Account", "choose_id": "x"},
            "No account was chosen: pick one from the search results.",
        ),
        ({"choose_type": "Task", "choose_id": "1"}, "A mail can be linked to: Account,"),
        ({}, "A mail can be linked to: Account,"),
    ],
)
def test_bad_input_is_a_message_not_a_500(user_client, people, form, message):
    response = _choose(user_client, **form)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and message in html
    assert _hidden(html, "parent_type") == ""  # the form had none, and has none
    page = user_client.post("/compose/parent", data=form)  # without htmx: a 422 with the field
    assert page.status_code == 422 and message in page.get_data(as_text=True)


def test_in_b2c_mode_accounts_are_not_offered(user_client, services, people):
    with services.session() as session:
        settings.put(session, "b2c_mode", True)
        session.commit()
    form = user_client.get("/compose/").get_data(as_text=True)
    picker = re.search(r'<select name="record_type".*?</select>', form, re.DOTALL).group(0)
    assert "<option>Contact</option>" in picker and "Account" not in picker
    refused = _choose(user_client, choose_type="Account", choose_id=people["acme"])
    assert "A mail can be linked to: Contact, Lead, Opportunity, Case." in refused.get_data(
        as_text=True
    )


def test_the_form_has_the_search_under_its_record_and_a_save_keeps_the_chosen_one(
    user_client, services, people
):
    form = user_client.get(f"/compose/?parent_type=Account&parent_id={people['acme']}").get_data(
        as_text=True
    )
    field = re.search(r'<div class="parent" id="compose-record".*?</div>\n</div>', form, re.DOTALL)
    assert 'class="record-picker" hidden' in field.group(0)  # compose.js shows it
    assert 'hx-get="/compose/records"' in field.group(0)
    assert "<option selected>Account</option>" in field.group(0)
    saved = user_client.post(
        "/compose/",
        data={"from": "rep@example.com", "to": "ann@acme.example", "subject": "Hi", "body": "x",
              "format": "text", "action": "save", "parent_type": "Contact",
              "parent_id": people["ann"]},
    )  # fmt: skip
    assert saved.status_code == 303
    with services.session() as session:
        email = session.get(Email, int(saved.headers["Location"].rsplit("/", 1)[1]))
        assert (email.parent_type, email.parent_id) == ("Contact", people["ann"])


def test_the_field_never_names_a_record_the_user_may_not_read(user_client, people):
    # A forged form (or a reply to a mail linked to it) keeps the record, but not its name.
    html = _choose(
        user_client, parent_type="Account", parent_id=people["hidden"], choose_type="Nope"
    ).get_data(as_text=True)
    assert "Acme Hidden" not in html and "Account: a record you cannot open" in html
    form = user_client.get(f"/compose/?parent_type=Account&parent_id={people['hidden']}")
    assert "Acme Hidden" not in form.get_data(as_text=True)

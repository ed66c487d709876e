"""Per-user scoping of every record endpoint and of the admin area: hidden means 404."""

import pytest
from flask import url_for
from sqlalchemy import select

from crm.models import Account, Case, Contact, Lead, Opportunity, Task, Team, User
from crm.records import addressbook

HIDDEN = {
    "accounts": (Account, {"name": "Hidden Firm"}),
    "contacts": (Contact, {"last_name": "Hidden Person"}),
    "leads": (Lead, {"last_name": "Hidden Person"}),
    "opportunities": (Opportunity, {"name": "Hidden Deal"}),
    "cases": (Case, {"name": "Hidden Case", "number": 4711}),
    "tasks": (Task, {"name": "Hidden Task"}),
}
EDITS = {
    "accounts": {"name": "Mine now"},
    "contacts": {"last_name": "Mine now"},
    "leads": {"last_name": "Mine now", "status": "New"},
    "opportunities": {"name": "Mine now", "stage": "Prospecting"},
    "cases": {"name": "Mine now", "status": "New", "priority": "Normal"},
    "tasks": {"name": "Mine now", "status": "Not Started"},
}


def _hidden_record(services, make_user, slug):
    other = make_user("other")
    model, fields = HIDDEN[slug]
    with services.session() as s:
        record = model(assigned_user_id=other, created_by_id=other, **fields)
        s.add(record)
        s.flush()
        if slug in ("accounts", "contacts", "leads"):
            addressbook.set_addresses(s, model.entity_type, record.id, ["hidden@example.com"])
        return record.id


@pytest.mark.parametrize("slug", sorted(HIDDEN))
def test_every_endpoint_of_a_hidden_record_is_404(user_client, make_user, services, slug):
    record_id = _hidden_record(services, make_user, slug)
    base = f"/records/{slug}/{record_id}"
    for url in (base, f"{base}/edit", f"{base}/delete"):
        assert user_client.get(url).status_code == 404, url
        assert user_client.get(url, headers={"HX-Request": "true"}).status_code == 404, url
    assert user_client.post(f"{base}/edit", data=EDITS[slug]).status_code == 404
    assert user_client.post(f"{base}/edit", data=EDITS[slug], htmx=True).status_code == 404
    assert user_client.post(f"{base}/delete").status_code == 404
    assert user_client.post(f"{base}/addresses/1", data={"invalid": "on"}).status_code == 404
    if slug == "leads":
        assert user_client.post(f"/records/leads/{record_id}/convert").status_code == 404
    model = HIDDEN[slug][0]
    with services.session() as s:
        record = s.get(model, record_id)
        assert record is not None and record.display_name != "Mine now"
        assert all(
            not ln.address.invalid
            for ln in addressbook.addresses_of(s, model.entity_type, record_id)
        )


@pytest.mark.parametrize("slug", sorted(HIDDEN))
def test_lists_and_rows_fragment_never_show_hidden_records(user_client, make_user, services, slug):
    _hidden_record(services, make_user, slug)
    queries = ["", "?q=hidden", "?q=hidden%40example.com", "?q=4711", "?page=2", "?q=hidden&page=9"]
    for query in queries:
        for url in (f"/records/{slug}/{query}", f"/records/{slug}/rows{query}"):
            response = user_client.get(url, headers={"HX-Request": "true"})
            assert response.status_code == 200, url
            assert "Hidden" not in response.get_data(as_text=True), url


def test_task_list_does_not_reveal_a_hidden_parent(user_client, make_user, services):
    account_id = _hidden_record(services, make_user, "accounts")
    with services.session() as s:
        rep = s.scalars(select(User.id).where(User.username == "rep")).one()
        s.add(Task(name="Mine", assigned_user_id=rep, parent_type="Account", parent_id=account_id))
    listing = user_client.get("/records/tasks/").get_data(as_text=True)
    assert "Mine" in listing and "Hidden Firm" not in listing


def _admin_requests(app, services):
    """Every admin rule with real ids, so a 404 can only come from the admin check."""
    with services.session() as s:
        team = Team(name="Sales")
        s.add(team)
        s.flush()
        ids = {"team_id": team.id, "user_id": s.scalars(select(User.id)).first(), "name": "google"}
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("admin."):
                url = url_for(rule.endpoint, **{arg: ids[arg] for arg in rule.arguments})
                found += [(method, url) for method in sorted(rule.methods & {"GET", "POST"})]
    return found


def test_admin_area_is_404_for_regular_users(app, user_client, services):
    requests = _admin_requests(app, services)
    assert len(requests) >= 10
    for method, url in requests:
        for htmx in (False, True):
            if method == "GET":
                headers = {"HX-Request": "true"} if htmx else {}
                response = user_client.get(url, headers=headers)
            else:
                response = user_client.post(url, data={"name": "Taken over"}, htmx=htmx)
            assert response.status_code == 404, (method, url, htmx)
    with services.session() as s:
        assert s.scalars(select(Team.name)).all() == ["Sales"]

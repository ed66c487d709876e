"""The templates pages: list (page and fragment), search and filters, new / edit / delete,
attachments, a broken template refused with its position, preview against a record."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from crm.models import EmailTemplate, User
from crm.templating import library
from crm.templating.library import TemplateInput
from tests.support import records


@pytest.fixture
def rep_id(services, user_client):
    with services.session() as session:
        return session.scalar(select(User.id).where(User.username == "rep"))


def _make(services, owner_id, name="Welcome", **kw):
    kw.setdefault("subject", "Hello {Person.firstName}")
    kw.setdefault("body", "<p>Dear {Account.name}</p>")
    with services.session() as session:
        owner = session.get(User, owner_id)
        template = library.create(session, services.blobs, owner, TemplateInput(name=name, **kw))
        session.commit()
        return template.id


def _form(**values):
    data = {"name": "Welcome", "subject": "Hi", "body": "<p>Hi</p>", "format": "html",
            "is_active": "1", "category": ""}  # fmt: skip
    data.update(values)
    return data


def test_the_list_shows_templates_as_a_page_and_as_a_fragment(user_client, services, rep_id):
    _make(services, rep_id, "Welcome", category="Sales")
    _make(services, rep_id, "Newsletter", one_off=True)
    _make(services, rep_id, "Old", is_active=False)
    page = user_client.get("/templates/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "HX-Request" in page.headers["Vary"]
    assert "Welcome" in html and "Newsletter" in html and "one-off" in html and "Old" not in html
    rows = user_client.get("/templates/rows?q=welc", headers={"HX-Request": "true"})
    text = rows.get_data(as_text=True)
    assert rows.status_code == 200 and "<html" not in text and 'id="template-rows"' in text
    assert "Welcome" in text and "Newsletter" not in text
    assert rows.headers["HX-Replace-Url"] == "/templates/?q=welc&state=active"
    inactive = user_client.get("/templates/rows?state=inactive").get_data(as_text=True)
    assert "Old" in inactive and "Welcome" not in inactive
    sales = user_client.get("/templates/?category=Sales").get_data(as_text=True)
    assert "Welcome" in sales and "Newsletter" not in sales
    bare = user_client.get("/templates/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in bare and "Welcome" in bare


def test_create_edit_and_delete_with_confirmation(user_client, services, rep_id):
    new = user_client.get("/templates/new")
    assert new.status_code == 200 and 'id="template-form"' in new.get_data(as_text=True)
    created = user_client.post("/templates/", data=_form(subject="Hi {Person.firstName}"))
    assert created.status_code == 303
    with services.session() as session:
        template = session.scalar(select(EmailTemplate))
        assert (template.name, template.owner_id, template.is_html) == ("Welcome", rep_id, True)
        template_id = template.id
    edit = user_client.get(f"/templates/{template_id}").get_data(as_text=True)
    assert 'value="Hi {Person.firstName}"' in edit
    changed = user_client.post(
        f"/templates/{template_id}", data=_form(name="Welcome 2", format="text", one_off="1")
    )
    assert changed.status_code == 303
    with services.session() as session:
        template = session.get(EmailTemplate, template_id)
        assert (template.name, template.is_html, template.one_off) == ("Welcome 2", False, True)
    confirm = user_client.get(f"/templates/{template_id}/delete")
    assert confirm.status_code == 200 and "Delete the template" in confirm.get_data(as_text=True)
    assert user_client.post(f"/templates/{template_id}/delete").status_code == 303
    with services.session() as session:
        assert session.get(EmailTemplate, template_id) is None


def test_a_broken_template_is_refused_with_its_position_and_nothing_lost(user_client, services):
    body = "<p>Hello</p>\n<p>{{#if name}}unclosed</p>"
    refused = user_client.post("/templates/", data=_form(body=body))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Body: line 2, column" in html
    assert "&lt;p&gt;{{#if name}}unclosed&lt;/p&gt;" in html  # what was typed, still there
    htmx = user_client.post("/templates/", data=_form(subject="{{[x]}}"), htmx=True)
    assert htmx.status_code == 200 and "Subject: line 1, column 3" in htmx.get_data(as_text=True)
    with services.session() as session:
        assert session.scalar(select(EmailTemplate)) is None


def test_a_template_without_a_name_is_refused(user_client):
    refused = user_client.post("/templates/", data=_form(name="  "))
    assert refused.status_code == 422 and "give the template a name" in refused.get_data(
        as_text=True
    )


def test_attachments_upload_download_and_remove(user_client, services):
    data = _form()
    data["attachments"] = (io.BytesIO(b"%PDF-1.4 terms"), "terms.pdf", "application/pdf")
    assert (
        user_client.post("/templates/", data=data, content_type="multipart/form-data").status_code
        == 303
    )
    with services.session() as session:
        template = session.scalar(select(EmailTemplate))
        template_id, attachment_id = template.id, template.attachments[0].id
    edit = user_client.get(f"/templates/{template_id}").get_data(as_text=True)
    assert "terms.pdf" in edit
    download = user_client.get(f"/templates/{template_id}/attachments/{attachment_id}")
    assert (
        download.data == b"%PDF-1.4 terms"
        and "attachment;" in download.headers["Content-Disposition"]
    )
    user_client.post(f"/templates/{template_id}", data=_form())  # its box unticked
    with services.session() as session:
        assert session.get(EmailTemplate, template_id).attachments == []


def test_someone_elses_template_is_not_found_and_cannot_be_changed(
    user_client, services, make_user
):
    other_id = make_user("other")
    template_id = _make(services, other_id)
    assert user_client.get(f"/templates/{template_id}").status_code == 404
    assert user_client.get(f"/templates/{template_id}/preview").status_code == 404
    assert user_client.post(f"/templates/{template_id}", data=_form()).status_code == 404
    assert user_client.post(f"/templates/{template_id}/delete").status_code == 404
    assert "Welcome" not in user_client.get("/templates/").get_data(as_text=True)


def test_a_template_shared_with_the_team_is_listed_and_previewed_but_not_edited(
    client, services, make_user
):
    owner_id = make_user("owner", teams=["Sales"])
    make_user("mate", teams=["Sales"])
    with services.session() as session:
        team_id = session.get(User, owner_id).teams[0].id
    template_id = _make(services, owner_id, team_ids=[team_id])
    client.login("mate")
    listing = client.get("/templates/").get_data(as_text=True)
    assert "Welcome" in listing and f'href="/templates/{template_id}"' not in listing
    assert client.get(f"/templates/{template_id}/preview").status_code == 200
    assert client.get(f"/templates/{template_id}").status_code == 404


def test_preview_renders_against_a_record_and_recipient_in_the_mail_frame(
    user_client, services, rep_id
):
    template_id = _make(services, rep_id, body="<p>Dear {Account.name} {Contact.lastName}</p>")
    with services.session() as session:
        acme = records.account(session, "Acme & Co", assigned_user_id=rep_id)
        records.contact(session, "Ann", "Buyer", ["ann@acme.example"], assigned_user_id=rep_id)
        session.commit()
        acme_id = acme.id
    url = f"/templates/{template_id}/preview?parent_type=Account&parent_id={acme_id}&to=ann@acme.example"
    html = user_client.get(url).get_data(as_text=True)
    assert 'iframe class="mailbody"' in html and 'sandbox="allow-same-origin' in html
    assert "Hello Ann" in html  # the subject
    assert "Dear Acme &amp;amp; Co Buyer" in html  # escaped in the body, again in srcdoc
    assert f'<option value="{acme_id}" selected>' in html
    bare = user_client.get(f"/templates/{template_id}/preview").get_data(as_text=True)
    assert "{Account.name} gave nothing" in bare and "Hello {Person.firstName}" in bare


def test_preview_record_choices_as_a_fragment(user_client, services, rep_id):
    with services.session() as session:
        records.account(session, "Acme", assigned_user_id=rep_id)
        session.commit()
    choices = user_client.get(
        "/templates/choices?parent_type=Account", headers={"HX-Request": "true"}
    )
    text = choices.get_data(as_text=True)
    assert (
        choices.status_code == 200
        and text.startswith('<select id="preview-record"')
        and "Acme" in text
    )


def test_a_template_that_fails_to_render_is_a_message_in_the_preview(user_client, services, rep_id):
    with services.session() as session:  # stored before validation existed, say
        session.add(EmailTemplate(name="Broken", subject="x", body="{{#if a}}", owner_id=rep_id))
        session.commit()
        template_id = session.scalar(select(EmailTemplate.id))
    page = user_client.get(f"/templates/{template_id}/preview")
    assert page.status_code == 200 and "cannot be rendered: line 1" in page.get_data(as_text=True)


def test_the_navigation_leads_to_templates(user_client):
    assert 'href="/templates/"' in user_client.get("/templates/").get_data(as_text=True)

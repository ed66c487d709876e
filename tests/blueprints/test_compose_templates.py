"""Templates in compose: the picker, filling subject and body as a fragment (htmx) and as the
page (no JavaScript), the record and first recipient as context, render again after the record
changed, template errors as a message, unresolved placeholders shown before sending."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm import settings
from crm.accounts import manage
from crm.models import Email, EmailTemplate, OutboxEntry, TemplateAttachment, User
from crm.outbound.sending import deliver_due
from crm.templating import library
from crm.templating.library import TemplateInput, Upload
from tests.support import records


@pytest.fixture
def rep(services, user_client, smtp_server):
    """rep (rep@example.com), signed in, with an SMTP account on the test server (as in
    test_compose)."""
    with services.session() as session:
        user = session.scalar(select(User).where(User.username == "rep"))
        smtp = {"smtp_host": smtp_server.host, "smtp_port": smtp_server.port,
                "smtp_security": "none", "smtp_auth": False}  # fmt: skip
        manage.create_account(
            session, services.secret_box, user_id=user.id, email="rep@example.com", host="",
            port=993, security="ssl", login="", password="", smtp=smtp,
        )  # fmt: skip
        settings.put(session, "undo_send_seconds", 0)
        return user.id


@pytest.fixture
def acme(services, rep):
    with services.session() as session:
        account = records.account(session, "Acme & Co", assigned_user_id=rep)
        records.contact(session, "Ann", "Buyer", ["ann@acme.example"], account=account,
                        assigned_user_id=rep)  # fmt: skip
        session.commit()
        return account.id


def _template(services, owner_id, name="Offer", **kw):
    kw.setdefault("subject", "Offer for {Account.name}")
    kw.setdefault("body", "<p>Dear {Person.firstName},</p><p>{User.name}</p>")
    with services.session() as session:
        owner = session.get(User, owner_id)
        template = library.create(session, services.blobs, owner, TemplateInput(name=name, **kw))
        session.commit()
        return template.id


def _compose(**values):
    data = {"from": "rep@example.com", "to": "Ann Buyer <ann@acme.example>", "subject": "",
            "body": "", "format": "html", "action": "save"}  # fmt: skip
    data.update(values)
    return data


def test_the_picker_offers_active_templates_but_not_one_off_or_inactive(user_client, services, rep):
    _template(services, rep, "Offer")
    _template(services, rep, "Newsletter", one_off=True)
    _template(services, rep, "Retired", is_active=False)
    page = user_client.get("/compose/").get_data(as_text=True)
    assert 'id="compose-template"' in page and ">Offer</option>" in page
    assert "Newsletter" not in page and "Retired" not in page


def test_choosing_a_template_fills_subject_and_body_as_a_fragment(user_client, services, rep, acme):
    template_id = _template(services, rep)
    response = user_client.post(
        "/compose/template",
        data=_compose(template_id=template_id, parent_type="Account", parent_id=acme),
        htmx=True,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.startswith("{#") is False and 'id="template-fill"' in html
    assert 'data-subject="Offer for Acme &amp; Co"' in html
    assert "<p>Dear Ann,</p><p>rep</p>" in html  # the first recipient's person, the user
    assert 'name="template_parent" value="Account:' in html
    assert db_count(services, Email) == 0  # choosing a template saves nothing


def db_count(services, model) -> int:
    with services.session() as session:
        return session.query(model).count()


def test_without_javascript_the_form_comes_back_filled(user_client, services, rep, acme):
    template_id = _template(services, rep, body="Dear {Person.firstName}", is_html=False)
    response = user_client.post(
        "/compose/",
        data=_compose(action="template", template_id=template_id, parent_type="Account",
                      parent_id=acme, body="typed before"),
    )  # fmt: skip
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert 'name="subject" value="Offer for Acme &amp; Co"' in page
    assert re.search(r'<textarea id="compose-body"[^>]*>Dear Ann</textarea>', page)
    assert f'<option value="{template_id}" selected>' in page
    again = re.search(r'<button[^>]*id="template-again"[^>]*>', page, re.DOTALL).group(0)
    assert " hidden" in again  # just rendered for this record
    assert db_count(services, Email) == 0


def test_without_a_record_placeholders_of_the_record_are_warned_about(user_client, services, rep):
    template_id = _template(services, rep)
    html = user_client.post(
        "/compose/template", data=_compose(template_id=template_id, to="who@x.example"), htmx=True
    ).get_data(as_text=True)
    assert "{Account.name} gave nothing and was left as written." in html
    assert 'data-subject="Offer for {Account.name}"' in html


def test_after_the_record_changes_compose_offers_to_render_again(user_client, services, rep, acme):
    template_id = _template(services, rep)
    page = user_client.post(
        "/compose/",
        data=_compose(action="template", template_id=template_id, parent_type="Account",
                      parent_id=acme),
    ).get_data(as_text=True)  # fmt: skip
    again = re.search(r'<button[^>]*id="template-again"[^>]*>', page, re.DOTALL).group(0)
    assert " hidden" in again  # rendered for this record: nothing to offer
    changed = user_client.post(
        "/compose/",
        data=_compose(action="save", template_id=template_id, template_parent="Account:999999",
                      parent_type="Account", parent_id=acme),
    )  # fmt: skip
    assert changed.status_code == 303
    draft_id = int(changed.headers["Location"].rsplit("/", 1)[1])
    # The saved draft reopened knows no template; a form posted back with another record does.
    page = user_client.post(
        f"/compose/{draft_id}",
        data=_compose(action="template", template_id=0, template_parent="Account:1",
                      parent_type="Account", parent_id=acme),
    ).get_data(as_text=True)  # fmt: skip
    assert "Choose a template." in page


def test_render_again_is_offered_when_the_form_comes_back_for_another_record(
    user_client,
    services,
    rep,
    acme,
):
    template_id = _template(services, rep)
    response = user_client.post(
        "/compose/",
        data=_compose(action="send", subject="Offer for {Account.name}", template_id=template_id,
                      template_parent="", parent_type="Account", parent_id=acme),
    )  # fmt: skip
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    again = re.search(r'<button[^>]*id="template-again"[^>]*>', page, re.DOTALL).group(0)
    assert " hidden" not in again and 'data-parent=""' in again


def test_a_template_error_is_a_message_never_a_500(user_client, services, rep):
    with services.session() as session:  # stored before it was checked, say
        session.add(EmailTemplate(name="Broken", subject="x", body="{{#if a}}", owner_id=rep))
        session.commit()
        template_id = session.scalar(select(EmailTemplate.id))
    fragment = user_client.post(
        "/compose/template", data=_compose(template_id=template_id), htmx=True
    )
    assert fragment.status_code == 200
    assert "cannot be used: line 1" in fragment.get_data(as_text=True)
    page = user_client.post("/compose/", data=_compose(action="template", template_id=template_id))
    assert page.status_code == 200 and "cannot be used: line 1" in page.get_data(as_text=True)


def test_someone_elses_template_is_not_used(user_client, services, rep, make_user):
    template_id = _template(services, make_user("other"))
    html = user_client.post(
        "/compose/template", data=_compose(template_id=template_id), htmx=True
    ).get_data(as_text=True)
    assert "Choose a template." in html and "data-subject" not in html


def test_unresolved_placeholders_are_shown_before_sending(user_client, services, rep, db):
    response = user_client.post(
        "/compose/",
        data=_compose(action="send", subject="Offer for {Account.name}", body="Hi", format="text"),
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not filled in: {Account.name}" in page and 'id="send-anyway"' in page
    assert db.query(OutboxEntry).count() == 0
    draft = db.scalar(select(Email))
    assert draft.status == "Draft" and draft.subject == "Offer for {Account.name}"  # kept
    sent = user_client.post(
        f"/compose/{draft.id}",
        data=_compose(action="send_anyway", subject="Offer for {Account.name}", body="Hi",
                      format="text"),
    )  # fmt: skip
    assert sent.status_code == 303
    assert [o.state for o in deliver_due(services)] == ["sent"]


def test_the_templates_attachments_go_with_the_draft_once(user_client, services, rep):
    with services.session() as session:
        owner = session.get(User, rep)
        data = TemplateInput(name="Terms", subject="Terms", body="<p>Attached.</p>",
                             uploads=[Upload("terms.pdf", "application/pdf", b"%PDF-terms")])  # fmt: skip
        template = library.create(session, services.blobs, owner, data)
        session.commit()
        template_id, attachment_id = template.id, template.attachments[0].id
    filled = user_client.post(
        "/compose/", data=_compose(action="template", template_id=template_id)
    ).get_data(as_text=True)
    assert f'name="template_attachment" value="{attachment_id}" checked' in filled
    form = _compose(action="save", template_id=template_id, template_attachment=str(attachment_id),
                    subject="Terms", body="<p>Attached.</p>")  # fmt: skip
    saved = user_client.post("/compose/", data=form)
    draft_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    user_client.post(
        f"/compose/{draft_id}", data=dict(form, draft_id=str(draft_id))
    )  # autosave again
    with services.session() as session:
        draft = session.get(Email, draft_id)
        assert [a.filename for a in draft.attachments] == ["terms.pdf"]
        assert services.blobs.get(draft.attachments[0].sha256) == b"%PDF-terms"
        assert session.query(TemplateAttachment).count() == 1

"""Templates in Chromium: choosing one in compose fills subject and editor (htmx), and sends;
the templates pages: a broken template refused with its position, then saved and previewed in
the sandboxed mail frame."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect

from crm import settings
from crm.accounts import manage
from crm.models import Email, User
from crm.outbound.sending import deliver_due
from crm.templating import library
from crm.templating.library import TemplateInput
from tests.browser.session import sign_in
from tests.support import records

pytestmark = pytest.mark.browser


@pytest.fixture
def rep(make_user, services, smtp_server):
    """rep (Rita Rep) sending from rep@example.com, with Acme & Co and its contact Ann."""
    user_id = make_user("rep", ["rep@example.com"], name="Rita Rep")
    with services.session() as session:
        smtp = {"smtp_host": smtp_server.host, "smtp_port": smtp_server.port,
                "smtp_security": "none", "smtp_auth": False}  # fmt: skip
        manage.create_account(
            session, services.secret_box, user_id=user_id, email="rep@example.com", host="",
            port=993, security="ssl", login="", password="", smtp=smtp,
        )  # fmt: skip
        settings.put(session, "undo_send_seconds", 0)
        acme = records.account(session, "Acme & Co", assigned_user_id=user_id)
        ann = records.contact(session, "Ann", "Buyer", ["ann@acme.example"], account=acme,
                              assigned_user_id=user_id)  # fmt: skip
        data = TemplateInput(
            name="Offer", category="Sales", subject="Offer for {Account.name}",
            body="<p>Dear {Person.firstName},</p><p>our offer for <b>{Account.name}</b>.</p>"
            "<p>{User.name}</p>",
        )  # fmt: skip
        library.create(session, services.blobs, session.get(User, user_id), data)
        note = TemplateInput(
            name="Note", subject="Note for {Person.firstName}", is_html=False,
            body="Hello {Person.firstName},\nline two <b>not bold</b>\n\nRegards",
        )  # fmt: skip
        library.create(session, services.blobs, session.get(User, user_id), note)
        session.commit()
        return {"user": user_id, "acme": acme.id, "ann": ann.id}


def test_choosing_a_template_in_compose_fills_it_in_and_sends(
    live_server, browser, services, smtp_server, rep, tmp_path
):
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/compose/?here=1&to=ann@acme.example&parent_type=Account"
              f"&parent_id={rep['acme']}")  # fmt: skip
    expect(page.locator("#compose-body")).to_be_hidden()  # the HTML editor is on
    page.locator("#compose-template").select_option(label="Offer (Sales)")
    page.locator("#use-template").click()
    editor = page.locator("#compose .editor-area")
    expect(page.get_by_label("Subject")).to_have_value("Offer for Acme & Co")
    expect(editor).to_contain_text("Dear Ann,")
    expect(editor.locator("b")).to_have_text("Acme & Co")
    expect(page.locator("#template-fill")).to_contain_text("Filled in from “Offer”")
    expect(page.locator("#template-warnings")).to_have_count(0)
    expect(page.locator("#template-again")).to_be_hidden()
    assert "parent_id=" in page.url  # filled by the htmx swap, not by posting the form
    page.screenshot(path=str(tmp_path / "compose-template.png"), full_page=True)
    page.locator("#send-button").click()
    page.wait_for_url("**/mail/*")
    assert [o.state for o in deliver_due(services)] == ["sent"]
    [received] = smtp_server.messages
    parsed = message_from_bytes(received["data"], policy=policy.default)
    assert parsed["Subject"] == "Offer for Acme & Co"
    html = parsed.get_body(("html",)).get_content()
    assert "Dear Ann," in html and "<b>Acme &amp; Co</b>" in html and "Rita Rep" in html


def test_a_template_without_a_record_warns_before_sending(live_server, browser, rep):
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/compose/?here=1&to=someone@else.example")
    page.locator("#compose-template").select_option(label="Offer (Sales)")
    page.locator("#use-template").click()
    expect(page.locator("#template-warnings")).to_contain_text("{Account.name} gave nothing")
    expect(page.get_by_label("Subject")).to_have_value("Offer for {Account.name}")
    page.locator("#send-button").click()
    expect(page.locator("#unresolved-placeholders")).to_contain_text("{Account.name}")
    expect(page.locator("#send-anyway")).to_be_visible()


def test_the_templates_pages_refuse_a_broken_template_then_save_and_preview(
    live_server, browser, rep, tmp_path
):
    page = browser
    sign_in(page, live_server)
    page.get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="E-mail templates")).to_be_visible()
    expect(page.locator("#template-rows")).to_contain_text("Offer")
    page.get_by_role("link", name="New template").click()
    expect(page.get_by_role("heading", name="New template")).to_be_visible()
    expect(page.locator("#template-form .editor-area")).to_be_visible()  # templates.js ran
    page.get_by_label("Name", exact=True).fill("Follow-up")
    page.get_by_label("Subject", exact=True).fill("Following up, {Person.firstName}")
    page.locator("select[name=format]").select_option("text")
    expect(page.locator("#template-body")).to_be_visible()  # plain text: the textarea
    expect(page.get_by_role("button", name="Bold")).to_be_hidden()
    page.locator("#template-body").fill("Hello {{#if name}}{{name}}")
    page.locator("#save-template").click()
    expect(page.locator("#template-errors")).to_contain_text("Body: line 1, column")
    expect(page.locator("#template-body")).to_have_value("Hello {{#if name}}{{name}}")
    expect(page.get_by_role("button", name="Bold")).to_be_hidden()  # still plain text
    page.screenshot(path=str(tmp_path / "template-refused.png"), full_page=True)
    page.locator("#template-body").fill("Hello {{#if name}}{{name}}{{/if}}, {Account.name}")
    page.locator("#save-template").click()
    expect(page.locator(".flash")).to_contain_text("Template “Follow-up” saved.")
    page.get_by_role("link", name="Preview").click()
    page.get_by_label("Record type").select_option("Account")
    expect(page.locator("#preview-record option")).to_have_count(2)
    page.locator("#preview-record").select_option(label=f"Acme & Co (#{rep['acme']})")
    page.get_by_label("Recipient").fill("ann@acme.example")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#preview-subject")).to_have_text("Following up, Ann")
    frame = page.frame_locator("iframe.mailbody")
    expect(frame.locator("body")).to_contain_text("Hello Acme & Co, Acme & Co")
    page.screenshot(path=str(tmp_path / "template-preview.png"), full_page=True)


def test_compose_reached_by_a_boosted_link_has_its_editor_and_fills_a_plain_template(
    live_server, browser, services, smtp_server, rep, tmp_path
):
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/records/contacts/{rep['ann']}")
    page.locator("#create-email").click()  # boosted: the page's own scripts would not run
    expect(page.get_by_role("heading", name="New mail")).to_be_visible()
    expect(page.locator("#compose-body")).to_be_hidden()  # the HTML editor is on
    page.locator("#compose-template").select_option(label="Note")
    page.locator("#use-template").click()
    expect(page.get_by_label("Subject")).to_have_value("Note for Ann")
    editor = page.locator("#compose .editor-area")
    expect(editor.locator("p")).to_have_count(2)  # a blank line: a new paragraph
    expect(editor.locator("b")).to_have_count(0)  # "<b>" in a text template is text
    expect(editor).to_contain_text("line two <b>not bold</b>")
    page.screenshot(path=str(tmp_path / "compose-boosted-plain.png"), full_page=True)
    page.locator("#send-button").click()
    page.wait_for_url("**/mail/*")
    assert [o.state for o in deliver_due(services)] == ["sent"]
    [received] = smtp_server.messages
    parsed = message_from_bytes(received["data"], policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()
    assert "Hello Ann,\nline two <b>not bold</b>\n\nRegards" in text.replace("\r\n", "\n")
    html = parsed.get_body(("html",)).get_content()
    assert "line two &lt;b&gt;not bold&lt;/b&gt;" in html and "<br" in html


def test_render_again_after_the_recipient_changes_and_the_record_can_be_removed(
    live_server, browser, rep
):
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/compose/?here=1&to=someone@else.example&parent_type=Account"
              f"&parent_id={rep['acme']}")  # fmt: skip
    page.locator("#compose-template").select_option(label="Offer (Sales)")
    page.locator("#use-template").click()
    editor = page.locator("#compose .editor-area")
    expect(editor).to_contain_text("Dear {Person.firstName},")
    again = page.locator("#template-again")
    expect(again).to_be_hidden()
    page.get_by_label("To", exact=True).fill("ann@acme.example")
    page.get_by_label("To", exact=True).dispatch_event("change")
    expect(again).to_be_visible()
    again.click()
    expect(editor).to_contain_text("Dear Ann,")
    expect(again).to_be_hidden()
    page.locator("#clear-parent").click()
    expect(page.locator(".compose-fields .parent")).to_contain_text("none")
    expect(again).to_be_visible()
    again.click()
    # The recipient's account still fills {Account.name} (issue 13: the person's linked records).
    expect(page.get_by_label("Subject")).to_have_value("Offer for Acme & Co")
    expect(page.locator("#template-fill")).to_contain_text("(no record chosen)")


def test_choosing_another_record_in_compose_renders_again_and_the_mail_keeps_it(
    live_server, browser, services, smtp_server, rep, make_user, tmp_path
):
    other = make_user("other")
    with services.session() as session:
        globex = records.account(session, "Globex Ltd", assigned_user_id=rep["user"])
        records.account(session, "Globex Hidden", assigned_user_id=other)
        session.commit()
        globex_id = globex.id
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/compose/?here=1&to=ann@acme.example&parent_type=Account"
              f"&parent_id={rep['acme']}")  # fmt: skip
    page.locator("#compose-template").select_option(label="Offer (Sales)")
    page.locator("#use-template").click()
    editor = page.locator("#compose .editor-area")
    expect(page.get_by_label("Subject")).to_have_value("Offer for Acme & Co")
    again = page.locator("#template-again")
    expect(again).to_be_hidden()
    # The Record field's search (htmx): Enter searches, it does not send the mail.
    search = page.get_by_label("Find a record")
    expect(page.get_by_label("Record type")).to_have_value("Account")
    search.fill("glob")
    search.press("Enter")
    choices = page.locator("#compose-record-choices")
    expect(choices.get_by_role("link", name="Globex Ltd")).to_be_visible()
    expect(choices).not_to_contain_text("Globex Hidden")  # another user's account
    assert "/compose/" in page.url and not smtp_server.messages
    page.screenshot(path=str(tmp_path / "compose-record-search.png"), full_page=True)
    choices.get_by_role("link", name="Globex Ltd").click()
    expect(page.locator("#compose-parent")).to_have_text("Account: Globex Ltd")
    expect(page.locator("#compose-record-choices li")).to_have_count(0)
    expect(page.locator("#clear-parent")).to_be_visible()
    expect(again).to_be_visible()  # filled for Acme, now linked to Globex
    again.click()
    expect(page.get_by_label("Subject")).to_have_value("Offer for Globex Ltd")
    expect(editor.locator("b")).to_have_text("Globex Ltd")
    expect(again).to_be_hidden()
    page.screenshot(path=str(tmp_path / "compose-record-chosen.png"), full_page=True)
    page.locator("#send-button").click()
    page.wait_for_url("**/mail/*")
    email_id = int(page.url.rsplit("/", 1)[1])
    with services.session() as session:
        email = session.get(Email, email_id)
        assert (email.parent_type, email.parent_id) == ("Account", globex_id)
    assert [o.state for o in deliver_due(services)] == ["sent"]
    [received] = smtp_server.messages
    assert message_from_bytes(received["data"], policy=policy.default)["Subject"] == (
        "Offer for Globex Ltd"
    )


def test_the_template_editor_is_visible_and_html_turns_into_text(
    live_server, browser, rep, tmp_path
):
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/templates/new")
    area = page.locator("#template-form .editor-area")
    expect(area).to_be_visible()
    box = area.bounding_box()
    assert box and box["height"] > 100  # an empty body is a visible field
    assert area.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    area.click()
    page.keyboard.type("First line")
    page.keyboard.press("Enter")
    page.keyboard.type("Second & last")
    page.locator("select[name=format]").select_option("text")
    body = page.locator("#template-body")
    expect(body).to_be_visible()
    value = body.input_value()
    assert "<" not in value and "First line" in value and "\nSecond & last" in value
    expect(page.get_by_role("button", name="Bold")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "template-to-text.png"), full_page=True)
    page.locator("select[name=format]").select_option("html")
    expect(area).to_contain_text("Second & last")
    expect(page.get_by_role("button", name="Bold")).to_be_visible()


def test_the_preview_cells_line_up_with_their_rows(live_server, browser, rep):
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/templates/")
    row = page.locator("#template-rows tbody tr").first
    cells = row.locator("td")
    tops = [cells.nth(i).bounding_box()["y"] for i in range(cells.count())]
    assert max(tops) - min(tops) < 1

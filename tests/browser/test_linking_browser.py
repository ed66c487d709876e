import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import User
from tests.browser.session import sign_in
from tests.factories import make_email
from tests.support import records

pytestmark = pytest.mark.browser


def test_history_loads_on_the_record_page_and_the_picker_relinks_a_mail(
    live_server, browser, make_user, db
):
    make_user("rep", ["rep@example.com"])
    rep = db.scalars(select(User).where(User.username == "rep")).one()
    acme = records.account(db, name="Acme", assigned_user_id=rep.id)
    records.lead(db, first="Grace", last="Hopper", assigned_user_id=rep.id)
    records.lead(db, first="Ada", last="Lovelace", assigned_user_id=rep.id)
    email = make_email(
        db, subject="Quote please", parent=acme, users=[rep.id], from_name="Sam Sender"
    )
    db.commit()
    page = browser
    sign_in(page, live_server)

    page.goto(f"{live_server}/records/accounts/{acme.id}")
    expect(page.locator("#history")).to_contain_text("Quote please")
    expect(page.locator("#activities")).to_contain_text("No open tasks")

    page.goto(f"{live_server}/linking/email/{email.id}/panel")
    panel = page.locator(f"#linking-panel-{email.id}")
    expect(panel).to_contain_text("Acme")
    panel.get_by_label("Change parent").select_option("Lead")
    choices = page.locator(f"#linking-choices-{email.id}")
    expect(choices).to_contain_text("Ada Lovelace")
    panel.get_by_role("searchbox", name="Search records").fill("hopper")
    expect(choices).not_to_contain_text("Ada Lovelace")
    panel.get_by_role("button", name="Grace Hopper").click()
    expect(panel).to_contain_text("linked by hand")
    expect(panel.locator(".linking-parent")).to_contain_text("Grace Hopper")

    panel.get_by_role("link", name="Create Contact").first.click()
    expect(page.get_by_label("Last name")).to_have_value("Sender")

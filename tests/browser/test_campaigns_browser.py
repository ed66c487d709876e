"""The campaign pages in Chromium at a tablet's width (820 px): a mass mail still in the
outbox says Sending with Pause and Cancel, its filters and list cells do not wrap, and Cancel
says how many queued mails it cancelled."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from crm.campaigns import mass_mail
from crm.models import User
from tests.browser.session import sign_in
from tests.campaigns import conftest as campaign_support

pytestmark = pytest.mark.browser
campaign = campaign_support.campaign  # the fixture, shared with tests/campaigns


def _queued_mass_mail(db, services, campaign) -> int:
    """Every recipient queued into the outbox an hour ago, none sent yet: complete."""
    found = campaign_support.queued_an_hour_ago(db, services, campaign, "December news", 60)
    user = db.get(User, campaign.user_id)
    mass_mail.save(db, user, {"name": "A draft with a rather long name for a narrow window",
                              "template_id": campaign.template_id,
                              "mail_account_id": campaign.account_id,
                              "list_ids": [campaign.list_id]})  # fmt: skip
    db.commit()
    return found.id


def _one_line(locator) -> None:
    """Every element of the locator is as tall as the first one: none wrapped."""
    heights = [box["height"] for box in (e.bounding_box() for e in locator.all())]
    assert heights and max(heights) < 1.5 * min(heights), heights


def test_a_mass_mail_in_the_outbox_at_820_px(live_server, browser, db, services, campaign):
    mass_mail_id = _queued_mass_mail(db, services, campaign)
    page = browser
    page.set_viewport_size({"width": 820, "height": 900})
    sign_in(page, live_server, "mara")
    page.goto(f"{live_server}/campaigns/")
    _one_line(page.locator("table.list").first.locator("tbody td:nth-child(2)"))
    _one_line(page.locator("table.list").first.locator("tbody td:nth-child(4)"))
    page.screenshot(path="/tmp/campaigns-index-820.png", full_page=True)
    page.goto(f"{live_server}/campaigns/{mass_mail_id}")
    bar = page.locator("#mass-mail-progress")
    expect(bar).to_contain_text("Sending")
    expect(bar.get_by_role("button", name="Pause")).to_be_visible()
    _one_line(page.locator(".mass-mail-filters a"))
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    page.screenshot(path="/tmp/campaigns-show-820.png", full_page=True)
    bar.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("Cancelled: 3 queued mails will not be sent.")).to_be_visible()
    expect(bar.get_by_role("button")).to_have_count(0)

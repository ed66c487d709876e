"""The frame around every page in Chromium: the top bar fits narrow windows."""

from __future__ import annotations

import pytest

from tests.browser.session import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(make_user):
    return make_user("rep", ["rep@example.com"], admin=True)


@pytest.mark.parametrize("width", [820, 1024, 1280])
def test_the_top_bar_never_makes_the_page_scroll_sideways(live_server, browser, admin, width):
    """Twelve navigation items, the notifications badge, the user and Sign out: at a tablet's
    width they wrap onto a second line instead of pushing the page wider than the window."""
    page = browser
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, live_server)
    for path in ("/inbox/", "/records/contacts/", "/compose/"):
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("load")
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} at {width}px is {overflow}px wider than the window"
        sign_out = page.get_by_role("button", name="Sign out").bounding_box()
        assert sign_out["x"] + sign_out["width"] <= width
    page.screenshot(path=f"/tmp/layout-{width}.png")


def test_the_inbox_shows_subjects_at_a_tablets_width(live_server, browser, db, admin):
    from tests.factories import make_email

    make_email(db, users=[admin], subject="Objednávka č. 2026/118 – potvrdenie dodania")
    db.commit()
    page = browser
    page.set_viewport_size({"width": 820, "height": 800})
    sign_in(page, live_server)
    subject = page.locator("table.mail td.what a").first
    assert subject.bounding_box()["width"] > 150  # it had none: fixed columns took the row
    page.screenshot(path="/tmp/layout-inbox-820.png")

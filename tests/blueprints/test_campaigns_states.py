"""The campaign pages after a click-through: a mass mail whose last batch waits in the outbox
says Sending and keeps Pause and Cancel, cancel says how many it cancelled, a draft says it
has not started (never 100%), a recipient who subscribed again shows as such in the log (with
when, in the reader's zone and format), and the admin's settings lead to the mass mail settings."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from crm.models import EmailAddress, MassMailRecipient, User
from crm.outbound.sending import deliver_due
from tests.campaigns import conftest as campaign_support
from tests.campaigns.conftest import SITE

campaign = campaign_support.campaign  # the fixture, shared with tests/campaigns


@pytest.fixture
def mara(client, campaign):
    client.login("mara")
    return client


def _html(response) -> str:
    return response.get_data(as_text=True)


def _buttons(html: str) -> list[str]:
    """The buttons of the bar's toolbar (its first inner div)."""
    bar = html[html.index('id="mass-mail-progress"') :]
    return re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', bar[: bar.index("</div>")])


def _started_and_queued(mara, services, campaign) -> int:
    """A mass mail started through the page and queued whole an hour back: complete."""
    response = mara.post("/campaigns/new", data={
        "name": "December news", "template_id": str(campaign.template_id),
        "mail_account_id": str(campaign.account_id), "list_ids": [str(campaign.list_id)],
        "per_hour": "3600"})  # fmt: skip
    mass_mail_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    assert mara.post(f"/campaigns/{mass_mail_id}/start").status_code == 303
    campaign_support.queue_whole_an_hour_back(services, mass_mail_id)
    return mass_mail_id


def test_a_mass_mail_still_in_the_outbox_is_sending_with_pause_and_cancel(
    mara, services, campaign, smtp_server
):
    mass_mail_id = _started_and_queued(mara, services, campaign)
    bar = mara.get(f"/campaigns/{mass_mail_id}/progress", headers={"HX-Request": "true"})
    assert bar.status_code == 200 and 'hx-trigger="every 2s"' in _html(bar)
    assert "Sending" in _html(bar) and "Complete" not in _html(bar)
    assert _buttons(_html(bar)) == ["Pause", "Cancel"]
    index = _html(mara.get("/campaigns/"))
    assert re.search(r"December news</a></td>\s*<td[^>]*>Sending</td>", index)
    assert len(deliver_due(services)) == 3
    done = mara.get(f"/campaigns/{mass_mail_id}/progress", headers={"HX-Request": "true"})
    assert done.status_code == 286 and "Complete" in _html(done) and _buttons(_html(done)) == []


def test_cancel_says_how_many_queued_mails_it_cancelled(mara, services, campaign, smtp_server):
    mass_mail_id = _started_and_queued(mara, services, campaign)
    response = mara.post(f"/campaigns/{mass_mail_id}/cancel")
    assert response.status_code == 303
    page = _html(mara.get(f"/campaigns/{mass_mail_id}"))
    assert "Cancelled: 3 queued mails will not be sent." in page
    assert "Cancelled: 3" in page  # the count of the bar
    assert deliver_due(services) == [] and smtp_server.messages == []


def test_pause_of_a_mass_mail_still_sending_holds_its_mail(mara, services, campaign, smtp_server):
    mass_mail_id = _started_and_queued(mara, services, campaign)
    assert mara.post(f"/campaigns/{mass_mail_id}/pause").status_code == 303
    page = _html(mara.get(f"/campaigns/{mass_mail_id}"))
    assert "3 mails waiting in the outbox are held" in page
    assert _buttons(page) == ["Resume", "Cancel"]
    assert deliver_due(services) == []


def test_a_draft_says_it_has_not_started_and_whom_it_would_reach(mara, campaign):
    response = mara.post("/campaigns/new", data={
        "name": "Draft news", "template_id": str(campaign.template_id),
        "mail_account_id": str(campaign.account_id), "list_ids": [str(campaign.list_id)]})  # fmt: skip
    page = _html(mara.get(response.headers["Location"]))
    assert "Not started" in page and "3 recipients on the target lists" in page
    assert "100%" not in page and "0 of 0" not in page
    assert re.search(
        r"Draft news</a></td>\s*<td[^>]*>Not started</td>", _html(mara.get("/campaigns/"))
    )


def _ann_in_log(mara, mass_mail_id) -> str:
    log = _html(mara.get(f"/campaigns/{mass_mail_id}/log", headers={"HX-Request": "true"}))
    ann = re.search(r"ann@customer\.example</td>.*?</tr>", log, re.DOTALL).group(0)
    return " ".join(re.sub(r"<[^>]+>", "", ann).split())  # the words, without the markup


def _ann_dates(db) -> tuple[datetime, datetime | None]:
    """When ann unsubscribed with the mail, and when she subscribed again (stored, UTC)."""
    db.expire_all()
    address = db.scalar(select(EmailAddress).where(EmailAddress.lower == "ann@customer.example"))
    opted_out_at = db.scalar(
        select(MassMailRecipient.opted_out_at).where(MassMailRecipient.address_id == address.id)
    )
    return opted_out_at, address.subscribed_again_at


def _shown(moment: datetime) -> str:
    """Mara's way: her zone (Asia/Kolkata, UTC+5:30) and her date format."""
    return (moment + timedelta(hours=5, minutes=30)).strftime("%d.%m.%Y %H:%M")


def test_the_log_shows_a_recipient_who_subscribed_again(
    mara, client, db, services, campaign, smtp_server
):
    user = db.get(User, campaign.user_id)
    user.time_zone, user.date_format = "Asia/Kolkata", "%d.%m.%Y"
    db.commit()
    mass_mail_id = _started_and_queued(mara, services, campaign)
    deliver_due(services)
    urls = {m["rcpt_tos"][0]: m["data"] for m in smtp_server.messages}
    link = re.search(rb"List-Unsubscribe: <([^>]+)>", urls["ann@customer.example"]).group(1)
    path = link.decode().removeprefix(SITE)
    anonymous = client.app.test_client()
    assert anonymous.post(path).status_code == 303
    ann = _ann_in_log(mara, mass_mail_id)
    unsubscribed, again = _ann_dates(db)
    assert again is None
    assert ann.endswith(f"Sent · unsubscribed {_shown(unsubscribed)}")
    assert "subscribed again" not in ann
    assert anonymous.post(path + "/again").status_code == 303
    unsubscribed, again = _ann_dates(db)
    assert again is not None and again >= unsubscribed
    assert _ann_in_log(mara, mass_mail_id).endswith(
        f"Sent · unsubscribed {_shown(unsubscribed)}, subscribed again {_shown(again)}"
    )
    assert anonymous.post(path).status_code == 303  # unsubscribed again: the date goes
    assert _ann_dates(db) == (unsubscribed, None)
    ann = _ann_in_log(mara, mass_mail_id)
    assert ann.endswith(f"Sent · unsubscribed {_shown(unsubscribed)}")
    assert "subscribed again" not in ann


def test_the_log_words_a_subscribing_again_without_a_kept_date_as_before(
    mara, client, db, services, campaign, smtp_server
):
    """Subscribed again before the date was stored (migration 0016)."""
    mass_mail_id = _started_and_queued(mara, services, campaign)
    deliver_due(services)
    urls = {m["rcpt_tos"][0]: m["data"] for m in smtp_server.messages}
    link = re.search(rb"List-Unsubscribe: <([^>]+)>", urls["ann@customer.example"]).group(1)
    anonymous = client.app.test_client()
    assert anonymous.post(link.decode().removeprefix(SITE)).status_code == 303
    db.expire_all()
    address = db.scalar(select(EmailAddress).where(EmailAddress.lower == "ann@customer.example"))
    address.opted_out = False
    db.commit()
    ann = _ann_in_log(mara, mass_mail_id)
    assert re.search(r"· unsubscribed [^,]+, then subscribed again$", ann)


def test_the_admin_settings_lead_to_the_mass_mail_settings(admin_client, campaign):
    settings_page = _html(admin_client.get("/admin/settings"))
    assert 'href="/campaigns/settings"' in settings_page
    mass_mail_settings = _html(admin_client.get("/campaigns/settings"))
    tabs = re.search(
        r'<nav class="tabs" aria-label="Admin">.*?</nav>', mass_mail_settings, re.DOTALL
    )
    assert tabs and re.search(r'href="/campaigns/settings" aria-current="page">Mass mail', tabs[0])
    assert 'href="/admin/settings">Settings' in tabs[0]  # not current there

"""The campaign pages: target lists (by hand, from a search, CSV), a mass mail from draft to
sent with its self-updating bar and log, the admin's settings, and the public opt-out and
opt-in pages (a link clicked, the one-click POST of RFC 8058, subscribe again)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from io import BytesIO

import pytest
from sqlalchemy import select

from crm.campaigns import batches, opt_out
from crm.db import utcnow
from crm.models import (
    AddressConfirmation,
    EmailAddress,
    MassMail,
    TargetList,
    TargetListMember,
)
from crm.outbound.sending import deliver_due
from tests.campaigns import conftest as campaign_support
from tests.campaigns.conftest import SITE
from tests.support import records

campaign = campaign_support.campaign  # the fixture, shared with tests/campaigns


@pytest.fixture
def mara(client, campaign):
    client.login("mara")
    return client


def _html(response) -> str:
    return response.get_data(as_text=True)


def _queue_all(services, mass_mail_id):
    """What the periodic job does, with the start moved an hour back so every mail is due."""
    from datetime import timedelta

    with services.session() as session:
        found = session.get(MassMail, mass_mail_id)
        found.next_batch_at = utcnow() - timedelta(hours=1)
        batches.queue_batch(session, services.blobs, found, found.next_batch_at)
        session.commit()


def _create_mass_mail(mara, campaign, **extra) -> int:
    data = {"name": "December news", "template_id": str(campaign.template_id),
            "mail_account_id": str(campaign.account_id), "list_ids": [str(campaign.list_id)],
            "per_hour": "3600", **extra}  # fmt: skip
    response = mara.post("/campaigns/new", data=data)
    assert response.status_code == 303, _html(response)[:2000]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def test_pages_of_a_new_list_and_adding_by_hand_and_by_search(mara, db, campaign):
    assert mara.get("/campaigns/").status_code == 200
    response = mara.post(
        "/campaigns/lists/new", data={"name": "Leads 2027", "requires_opt_in": "on"}
    )
    assert response.status_code == 303
    list_id = int(response.headers["Location"].split("/")[-1])
    lead = records.lead(
        db, "Lena", "Lead", ["lena@prospect.example"], created_by_id=campaign.user_id
    )
    records.lead(db, "Otto", "Other", ["otto@prospect.example"], created_by_id=campaign.user_id)
    db.commit()
    page = mara.get(f"/campaigns/lists/{list_id}/add?kind=leads&q=lena")
    assert page.status_code == 200 and "Lena Lead" in _html(page) and "Otto" not in _html(page)
    fragment = mara.get(
        f"/campaigns/lists/{list_id}/add?kind=leads&q=lena", headers={"HX-Request": "true"}
    )
    assert _html(fragment).lstrip().startswith('<div id="candidates">')
    assert mara.post(f"/campaigns/lists/{list_id}/add",
                     data={"kind": "leads", "ids": [str(lead.id)]}).status_code == 303  # fmt: skip
    assert mara.post(f"/campaigns/lists/{list_id}/add",
                     data={"kind": "leads", "q": "", "all": "1"}).status_code == 303  # fmt: skip
    db.expire_all()
    members = db.scalars(
        select(TargetListMember.entity_id).where(TargetListMember.list_id == list_id)
    )
    assert len(list(members)) == 2
    shown = _html(mara.get(f"/campaigns/lists/{list_id}"))
    assert "lena@prospect.example" in shown and "Ask to confirm addresses" in shown
    bad = mara.post("/campaigns/lists/new", data={"name": "  "})
    assert bad.status_code == 422 and "Give the list a name" in _html(bad)


def test_csv_import_adds_the_file_records_to_the_list(mara, db, campaign):
    csv = b"First Name;Last Name;Email\nNina;New;nina@new.example\nAnn;Buyer;ann@customer.example\n;;broken\n"
    response = mara.post(f"/campaigns/lists/{campaign.list_id}/import",
                         data={"kind": "contacts", "file": (BytesIO(csv), "people.csv")},
                         content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 303
    db.expire_all()
    count = len(
        db.scalars(
            select(TargetListMember).where(TargetListMember.list_id == campaign.list_id)
        ).all()
    )
    assert count == 4  # Ann, Bob, Cyd were there; Nina is new
    page = _html(mara.get(f"/campaigns/lists/{campaign.list_id}"))
    assert "1 created" in page and "row 4" in page
    no_email = mara.post(f"/campaigns/lists/{campaign.list_id}/import",
                         data={"kind": "contacts", "file": (BytesIO(b"Name\nX\n"), "x.csv")},
                         content_type="multipart/form-data")  # fmt: skip
    assert no_email.status_code == 422 and "e-mail addresses" in _html(no_email)


def test_a_mass_mail_from_draft_to_sent_with_its_bar_and_log(mara, services, campaign, smtp_server):
    mass_mail_id = _create_mass_mail(mara, campaign)
    assert "Start" in _html(mara.get(f"/campaigns/{mass_mail_id}"))
    assert mara.post(f"/campaigns/{mass_mail_id}/start").status_code == 303
    bar = mara.get(f"/campaigns/{mass_mail_id}/progress", headers={"HX-Request": "true"})
    assert bar.status_code == 200 and 'hx-trigger="every 2s"' in _html(bar)
    assert 'hx-swap="outerHTML"' in _html(bar) and "<html" not in _html(bar)
    assert mara.get(f"/campaigns/{mass_mail_id}/progress").status_code == 200  # the page
    assert mara.post(f"/campaigns/{mass_mail_id}/pause").status_code == 303
    assert "Resume" in _html(mara.get(f"/campaigns/{mass_mail_id}"))
    assert mara.post(f"/campaigns/{mass_mail_id}/resume").status_code == 303
    _queue_all(services, mass_mail_id)
    assert len(deliver_due(services)) == 3
    done = mara.get(f"/campaigns/{mass_mail_id}/progress", headers={"HX-Request": "true"})
    assert done.status_code == 286 and "hx-trigger" not in _html(done)  # polling stops
    assert "Sent: 3" in _html(done)
    log = mara.get(f"/campaigns/{mass_mail_id}/log?status=sent", headers={"HX-Request": "true"})
    assert _html(log).lstrip().startswith('<div id="mass-mail-log">')
    assert "ann@customer.example" in _html(log)
    page = _html(mara.get(f"/campaigns/{mass_mail_id}?status=sent"))
    assert "ann@customer.example" in page and "<html" in page
    again = mara.post(f"/campaigns/{mass_mail_id}/pause")
    assert again.status_code == 422 and "Only a running mass mail" in _html(again)


def test_bad_mass_mail_input_is_shown_and_kept(mara, campaign):
    response = mara.post("/campaigns/new", data={"name": "Oops", "template_id": str(campaign.template_id),
                                                  "mail_account_id": str(campaign.account_id),
                                                  "per_hour": "lots"})  # fmt: skip
    assert response.status_code == 422 and "whole number" in _html(response)
    assert 'value="Oops"' in _html(response)
    response = mara.post("/campaigns/new", data={"name": "Oops", "template_id": str(campaign.template_id),
                                                  "mail_account_id": str(campaign.account_id)})  # fmt: skip
    assert response.status_code == 422 and "at least one target list" in _html(response)


def _mailed_unsubscribe_url(smtp_server) -> str:
    mail = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    return mail["List-Unsubscribe"].strip("<>")


def test_the_opt_out_link_clicked_and_the_one_click_post(mara, client, db, services, campaign,
                                                         smtp_server):  # fmt: skip
    mass_mail_id = _create_mass_mail(mara, campaign)
    mara.post(f"/campaigns/{mass_mail_id}/start")
    _queue_all(services, mass_mail_id)
    deliver_due(services)
    urls = {}
    for message in smtp_server.messages:
        mail = message_from_bytes(message["data"], policy=policy.default)
        urls[message["rcpt_tos"][0]] = mail["List-Unsubscribe"].strip("<>")
    path = urls["ann@customer.example"].removeprefix(SITE)
    anonymous = client.app.test_client()  # no session, no CSRF token
    page = anonymous.get(path)
    assert page.status_code == 200 and "ann@customer.example" in _html(page)
    confirmed = anonymous.post(path, data={})
    assert confirmed.status_code == 303
    after = anonymous.get(confirmed.headers["Location"])
    assert "You are unsubscribed" in _html(after) and "Subscribe again" in _html(after)
    assert _opted_out(db, "ann@customer.example")
    again = anonymous.post(path + "/again")
    assert again.status_code == 303 and not _opted_out(db, "ann@customer.example")
    one_click = anonymous.post(urls["bob@customer.example"].removeprefix(SITE),
                               data="List-Unsubscribe=One-Click",
                               content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert one_click.status_code == 200 and _opted_out(db, "bob@customer.example")
    log = _html(mara.get(f"/campaigns/{mass_mail_id}?status=sent"))
    assert "unsubscribed" in log
    forged = re.sub(r"[0-9a-f]{4}$", "0000", path)
    assert anonymous.get(forged).status_code == 404
    assert anonymous.post(forged, data="List-Unsubscribe=One-Click",
                          content_type="application/x-www-form-urlencoded").status_code == 404  # fmt: skip


def _opted_out(db, address) -> bool:
    db.expire_all()
    return db.scalar(select(EmailAddress.opted_out).where(EmailAddress.lower == address))


def test_opt_in_request_confirms_and_then_the_list_reaches_the_address(
    mara, client, db, services, campaign, smtp_server
):
    found = db.get(TargetList, campaign.list_id)
    found.requires_opt_in = True
    db.commit()
    nobody = mara.post(f"/campaigns/{_create_mass_mail(mara, campaign)}/start")
    assert nobody.status_code == 422 and "nobody" in _html(nobody)
    ask = _create_mass_mail(mara, campaign, name="Please confirm", purpose="opt_in")
    assert mara.post(f"/campaigns/{ask}/start").status_code == 303
    _queue_all(services, ask)
    deliver_due(services)
    assert len(smtp_server.messages) == 3
    mail = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    assert mail["List-Unsubscribe"] is None
    link = re.search(
        rf"{re.escape(SITE)}(/campaigns/opt-in/\S+)", mail.get_body(("plain",)).get_content()
    )
    anonymous = client.app.test_client()
    assert "Confirm your address" in _html(anonymous.get(link.group(1)))
    assert anonymous.post(link.group(1)).status_code == 303
    assert "is confirmed" in _html(anonymous.get(link.group(1)))
    assert db.scalar(select(AddressConfirmation.address_id)) is not None
    news = _create_mass_mail(mara, campaign, name="News for the confirmed")
    assert mara.post(f"/campaigns/{news}/start").status_code == 303
    assert "Started: 1 recipients" in _html(mara.get(f"/campaigns/{news}"))


def test_admin_settings_site_url_and_allowed_accounts(admin_client, db, campaign):
    page = admin_client.get("/campaigns/settings")
    assert page.status_code == 200 and "ACME News" in _html(page)
    bad = admin_client.post("/campaigns/settings", data={"site_url": "crm.example.com"})
    assert bad.status_code == 422 and "https://crm.example.com" in _html(bad)
    saved = admin_client.post("/campaigns/settings", data={"site_url": "https://mail.example.org/"})
    assert saved.status_code == 303
    assert opt_out.site_url(db) == "https://mail.example.org"
    from crm.campaigns import senders

    db.expire_all()
    db.info.pop("settings", None)
    assert senders.allowed(db) == []  # nothing ticked: no account allowed any more


def test_settings_are_for_admins_and_pages_for_signed_in_users(client, mara, campaign):
    assert mara.get("/campaigns/settings").status_code == 404
    anonymous = client.app.test_client()
    assert anonymous.get("/campaigns/").status_code in (302, 401)


def test_a_draft_and_a_list_are_edited_and_a_list_deleted(mara, db, campaign):
    mass_mail_id = _create_mass_mail(mara, campaign)
    form = _html(mara.get(f"/campaigns/{mass_mail_id}/edit"))
    assert 'value="December news"' in form and "checked" in form
    changed = mara.post(f"/campaigns/{mass_mail_id}/edit", data={
        "name": "January news", "template_id": str(campaign.template_id),
        "mail_account_id": str(campaign.account_id), "list_ids": [str(campaign.list_id)],
        "per_hour": "120", "start_at": "2027-01-05T09:30"})  # fmt: skip
    assert changed.status_code == 303
    db.expire_all()
    found = db.get(MassMail, mass_mail_id)
    assert found.name == "January news" and found.per_hour == 120
    assert found.start_at.year == 2027  # the user's zone (UTC here)
    assert _html(mara.get(f"/campaigns/lists/{campaign.list_id}/edit")).count("Customers") >= 1
    assert mara.post(f"/campaigns/lists/{campaign.list_id}/edit",
                     data={"name": "Key customers"}).status_code == 303  # fmt: skip
    assert "Key customers" in _html(mara.get(f"/campaigns/lists/{campaign.list_id}/delete"))
    assert mara.post(f"/campaigns/lists/{campaign.list_id}/delete").status_code == 303
    db.expire_all()
    assert db.get(TargetList, campaign.list_id) is None
    assert mara.get(f"/campaigns/lists/{campaign.list_id}").status_code == 404

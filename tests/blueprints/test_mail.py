"""Reading a mail: marking read, safe bodies, images, attachments, original, actions."""

from __future__ import annotations

import html as htmllib
import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from crm import settings
from crm.models import Attachment, Email, EmailUserState, User
from tests.factories import make_email


@pytest.fixture
def rep(services, user_client):
    with services.session() as session:
        return SimpleNamespace(id=session.scalar(select(User.id).where(User.username == "rep")))


def state(db, user_id, email_id):
    db.rollback()
    return db.scalar(
        select(EmailUserState).where(
            EmailUserState.user_id == user_id, EmailUserState.email_id == email_id
        )
    )


def srcdoc(page: str) -> str:
    return htmllib.unescape(re.search(r'srcdoc="([^"]*)"', page).group(1))


def test_opening_marks_read_for_the_reader_only(user_client, db, rep, make_user):
    other = make_user("other", ["other@example.com"])
    mail = make_email(db, users=[rep.id, other], subject="Status report").id
    db.commit()
    response = user_client.get(f"/mail/{mail}")
    assert response.status_code == 200 and "Status report" in response.get_data(as_text=True)
    assert state(db, rep.id, mail).is_read
    assert not state(db, other, mail).is_read


def test_mail_without_a_state_row_is_404_but_admins_read_it(user_client, db, make_user):
    other = make_user("other", ["other@example.com"])
    mail = make_email(db, users=[other]).id
    db.commit()
    assert user_client.get(f"/mail/{mail}").status_code == 404  # it exists; rep has no state row
    make_user("admin", ["admin@example.com"], admin=True)
    user_client.login("admin")
    assert user_client.get(f"/mail/{mail}").status_code == 200
    assert user_client.get("/mail/999999").status_code == 404


def test_someone_elses_mail_and_its_files_are_404(user_client, db, make_user, services):
    other = make_user("other", ["other@example.com"])
    mail = make_email(db, users=[other])
    sha = services.blobs.put(b"secret")
    mail.raw_sha256 = sha
    db.add(Attachment(email_id=mail.id, filename="a.txt", content_type="text/plain", sha256=sha))
    db.commit()
    att = db.scalar(select(Attachment.id))
    for url in (
        f"/mail/{mail.id}",
        f"/mail/{mail.id}/original",
        f"/mail/{mail.id}/attachments/{att}",
    ):
        assert user_client.get(url).status_code == 404
    assert user_client.post(f"/mail/{mail.id}/action", data={"action": "read"}).status_code == 404


def test_page_as_htmx_has_no_layout(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    html = user_client.get(f"/mail/{mail}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in html and 'id="mail"' in html


def test_html_body_is_sanitised_inside_a_sandboxed_iframe(user_client, db, rep):
    body = '<p onclick="steal()">Hi <b>there</b></p><script>steal()</script><a href="javascript:steal()">x</a>'
    mail = make_email(db, users=[rep.id], html=body).id
    db.commit()
    response = user_client.get(f"/mail/{mail}")
    page = response.get_data(as_text=True)
    # allow-same-origin lets mail.js size the frame; scripts, forms, popups stay off.
    sandbox = re.search(r'<iframe class="mailbody" title="Message body" sandbox="([^"]*)"', page)
    assert sandbox.group(1).split() == [
        "allow-same-origin",
        "allow-popups",
        "allow-popups-to-escape-sandbox",
    ]
    doc = srcdoc(page)
    assert "Content-Security-Policy" in doc and "default-src &#39;none&#39;" in doc
    assert "<b>there</b>" in doc
    assert "steal" not in doc
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_remote_images_are_blocked_until_asked_for(user_client, db, rep):
    mail = make_email(db, users=[rep.id], html='<img src="https://tracker.example/p.gif">').id
    db.commit()
    page = user_client.get(f"/mail/{mail}").get_data(as_text=True)
    assert "tracker.example" not in srcdoc(page)
    assert "1 remote image blocked" in page and f"/mail/{mail}?images=1" in page
    shown = user_client.get(f"/mail/{mail}?images=1")
    assert "https://tracker.example/p.gif" in srcdoc(shown.get_data(as_text=True))
    assert "https:" in shown.headers["Content-Security-Policy"]


def test_always_show_images_from_a_sender(user_client, db, rep):
    mail = make_email(db, users=[rep.id], html='<img src="https://cdn.example/logo.png">').id
    later = make_email(db, users=[rep.id], html='<img src="https://cdn.example/other.png">').id
    db.commit()
    response = user_client.post(f"/mail/{mail}/trust-sender")
    assert response.status_code == 303
    assert "cdn.example/other.png" in srcdoc(
        user_client.get(f"/mail/{later}").get_data(as_text=True)
    )


def test_cid_images_point_at_a_signed_image_url_that_needs_no_cookie(
    user_client, db, rep, services, app
):
    mail = make_email(db, users=[rep.id], html='<img src="cid:logo@x">')
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    att = Attachment(
        email_id=mail.id,
        filename="logo.png",
        content_type="image/png",
        sha256=services.blobs.put(png),
        content_id="logo@x",
        is_inline=True,
        size=len(png),
    )
    db.add(att)
    db.commit()
    doc = srcdoc(user_client.get(f"/mail/{mail.id}").get_data(as_text=True))
    url = re.search(r'<img src="http://localhost(/mail/\d+/inline/\d+\?t=[^"]+)"', doc).group(1)
    assert url.startswith(f"/mail/{mail.id}/inline/{att.id}?t=")
    # The sandboxed iframe sends no session cookie: the token alone must do.
    image = app.test_client().get(url)
    assert image.data == png and image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline;")
    assert app.test_client().get(url[:-3] + "xyz").status_code == 404
    assert app.test_client().get(f"/mail/{mail.id}/inline/{att.id}").status_code == 404


def test_inline_token_is_bound_to_its_attachment(user_client, db, rep, services, app):
    mail = make_email(db, users=[rep.id], html='<img src="cid:a@x">')
    png = services.blobs.put(b"\x89PNG\r\n\x1a\n")
    first = Attachment(
        email_id=mail.id, filename="a.png", content_type="image/png", sha256=png, content_id="a@x"
    )
    second = Attachment(email_id=mail.id, filename="b.html", content_type="text/html", sha256=png)
    db.add_all([first, second])
    db.commit()
    doc = srcdoc(user_client.get(f"/mail/{mail.id}").get_data(as_text=True))
    token = re.search(r"\?t=([^\"]+)", doc).group(1)
    assert app.test_client().get(f"/mail/{mail.id}/inline/{second.id}?t={token}").status_code == 404


def test_attachments_download_with_our_own_type_and_a_safe_name(user_client, db, rep, services):
    mail = make_email(db, users=[rep.id])
    att = Attachment(
        email_id=mail.id,
        filename='ré"port<script>.html',
        content_type="text/html",
        sha256=services.blobs.put(b"<script>alert(1)</script>"),
        size=25,
    )
    db.add(att)
    db.commit()
    response = user_client.get(f"/mail/{mail.id}/attachments/{att.id}?inline=1")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="r__port_script_.html"')
    assert "filename*=UTF-8''r%C3%A9%22port%3Cscript%3E.html" in disposition


def test_an_attachments_size_reads_as_compose_shows_it(user_client, db, rep, services):
    """The mail page and compose (forward, templates) write a size the same way: 29.5 kB for
    29,500 bytes, not 28.8 KB on one page and 29.5 kB on the other."""
    mail = make_email(db, users=[rep.id])
    db.add(
        Attachment(
            email_id=mail.id, filename="specs.pdf", sha256=services.blobs.put(b"x"), size=29_500
        )
    )
    db.commit()
    page = user_client.get(f"/mail/{mail.id}").get_data(as_text=True)
    assert "29.5 kB" in page and "KB" not in page


def test_view_original_downloads_the_raw_message(user_client, db, rep, services):
    mail = make_email(db, users=[rep.id])
    mail.raw_sha256 = services.blobs.put(b"Subject: hi\r\n\r\nbody")
    db.commit()
    response = user_client.get(f"/mail/{mail.id}/original")
    assert response.data == b"Subject: hi\r\n\r\nbody"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_plain_text_is_escaped_and_linkified(user_client, db, rep):
    mail = make_email(db, users=[rep.id], text="<b>hi</b> see https://example.com/x").id
    db.commit()
    page = user_client.get(f"/mail/{mail}").get_data(as_text=True)
    assert "&lt;b&gt;hi&lt;/b&gt;" in page
    assert '<a href="https://example.com/x" rel="noopener noreferrer nofollow"' in page


def test_header_shows_badges_problems_people_and_thread(user_client, db, rep):
    root = make_email(db, users=[rep.id], message_id="root@x.example", subject="Original question")
    mail = make_email(
        db,
        users=[rep.id],
        in_reply_to="root@x.example",
        references=["root@x.example"],
        cc=("carol@customer.example",),
        subject="Re: Original question",
    )
    # A bounce carries Auto-Submitted too: it is shown as a bounce, not also as an auto-reply.
    mail.is_auto_reply = True
    mail.is_bounce = True
    mail.problems = ["Unknown charset x-foo; decoded as UTF-8"]
    reply = make_email(db, users=[rep.id], subject="Out of office")
    reply.is_auto_reply = True
    db.commit()
    page = user_client.get(f"/mail/{mail.id}").get_data(as_text=True)
    for text in (
        ">Bounce</span>",
        "Unknown charset x-foo",
        "carol@customer.example",
        "Conversation",
        f"/mail/{root.id}",
    ):
        assert text in page
    assert ">Auto-reply</span>" not in page
    assert ">Auto-reply</span>" in user_client.get(f"/mail/{reply.id}").get_data(as_text=True)


def test_status_badge_only_for_drafts_and_sent_mail(user_client, db, rep):
    fetched = make_email(db, users=[rep.id]).id  # "Archived", like every fetched mail
    sent = make_email(db, users=[rep.id], status="Sent").id
    db.commit()
    badge = re.compile(r'<span class="badge status[^"]*">(\w+)</span>')
    assert not badge.search(user_client.get(f"/mail/{fetched}").get_data(as_text=True))
    assert badge.search(user_client.get(f"/mail/{sent}").get_data(as_text=True)).group(1) == "Sent"


@pytest.mark.parametrize("htmx", [False, True])
def test_actions_on_the_page_and_as_fragment(user_client, db, rep, htmx):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    response = user_client.post(f"/mail/{mail}/action", data={"action": "important"}, htmx=htmx)
    if htmx:
        assert response.status_code == 200 and "mail-changed" in response.headers["HX-Trigger"]
        assert response.get_data(as_text=True).lstrip().startswith('<div id="mail-actions"')
    else:
        assert response.status_code == 303 and response.headers["Location"].endswith(
            f"/mail/{mail}"
        )
    assert state(db, rep.id, mail).is_important
    user_client.post(f"/mail/{mail}/action", data={"action": "trash"}, htmx=htmx)
    assert state(db, rep.id, mail).in_trash
    user_client.post(f"/mail/{mail}/action", data={"action": "unread"}, htmx=htmx)
    assert not state(db, rep.id, mail).is_read


@pytest.mark.parametrize("htmx", [False, True])
def test_delete_from_the_mail_page(user_client, db, rep, htmx):
    settings.put(db, "users_may_delete_mail", True)
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    ask = user_client.post(f"/mail/{mail}/action", data={"action": "delete"}, htmx=htmx)
    assert "cannot be undone" in ask.get_data(as_text=True)
    response = user_client.post(
        f"/mail/{mail}/action", data={"action": "delete", "confirmed": "yes"}, htmx=htmx
    )
    if htmx:
        assert response.headers["HX-Redirect"].endswith("/inbox/")
    else:
        assert response.status_code == 303
    db.rollback()
    assert db.get(Email, mail) is None


def test_delete_refused_without_permission(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    response = user_client.post(
        f"/mail/{mail}/action", data={"action": "delete", "confirmed": "yes"}
    )
    assert response.status_code == 403
    db.rollback()
    assert db.get(Email, mail) is not None and state(db, rep.id, mail) is not None


def test_unconfirmed_delete_without_permission_is_refused_at_once(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    for url in (f"/mail/{mail}/action", "/inbox/actions"):
        response = user_client.post(url, data={"action": "delete", "ids": str(mail)})
        page = response.get_data(as_text=True)
        assert response.status_code == 403, url
        assert "Deleting mail permanently is switched off" in page
        assert "mail permanently?" not in page and "cannot be undone" not in page
    db.rollback()
    assert db.get(Email, mail) is not None


def test_hostile_subject_and_sender_are_escaped(user_client, db, rep):
    mail = make_email(
        db,
        users=[rep.id],
        subject="<img src=x onerror=alert(1)>",
        from_name='"><script>alert(2)</script>',
    ).id
    db.commit()
    for url in ("/inbox/", f"/mail/{mail}"):
        page = user_client.get(url).get_data(as_text=True)
        assert "<img src=x" not in page and "<script>alert(2)" not in page


def test_links_panel_is_embedded_when_linking_is_installed(user_client, db, rep, app):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    page = user_client.get(f"/mail/{mail}").get_data(as_text=True)
    if "linking.email_panel" in app.view_functions:
        assert f'hx-get="/linking/email/{mail}/panel" hx-trigger="load"' in page


def test_records_and_people_sit_beside_the_headers_above_the_body(user_client, db, rep, app):
    mail = make_email(db, users=[rep.id], html="<p>Body</p>").id
    db.commit()
    page = user_client.get(f"/mail/{mail}").get_data(as_text=True)
    top = page[page.index('class="mailtop"') : page.index('<iframe class="mailbody"')]
    assert 'class="mailhead' in top
    if "linking.email_panel" in app.view_functions:
        assert f'hx-get="/linking/email/{mail}/panel"' in top


def test_a_mail_linked_to_a_record_opens_with_a_link_to_it(user_client, db, rep):
    """The parent macro is imported without context; it must still render (it answered 500)."""
    from crm.models import Account

    account = Account(name="Électricité du Rhône SA", assigned_user_id=rep.id)
    db.add(account)
    db.flush()
    mail = make_email(db, users=[rep.id], subject="Faktura 2026/11", parent=account).id
    db.commit()
    response = user_client.get(f"/mail/{mail}")
    assert response.status_code == 200
    assert f'href="/records/accounts/{account.id}"' in response.get_data(as_text=True)


def back_link(page: str) -> str:
    return htmllib.unescape(
        re.search(r'<a class="button secondary" href="([^"]*)" rel="up">', page).group(1)
    )


def test_the_list_sends_its_own_address_along_for_back(user_client, db, rep):
    from crm.mailbox.folders import create_folder

    folder = create_folder(db, rep.id, "Projects")
    mail = make_email(db, users=[rep.id], subject="Kickoff", folder_id=folder.id).id
    db.commit()
    listing = user_client.get(f"/inbox/{folder.id}").get_data(as_text=True)
    assert f'href="/mail/{mail}?back=/inbox/{folder.id}"' in listing
    page = user_client.get(f"/mail/{mail}?back=/inbox/{folder.id}").get_data(as_text=True)
    assert back_link(page) == f"/inbox/{folder.id}"


def test_back_returns_to_a_search_and_its_page(user_client, db, rep):
    mail = make_email(db, users=[rep.id], subject="Invoice 77").id
    db.commit()
    back = "/inbox/search?q=invoice&after=abc"
    page = user_client.get(f"/mail/{mail}", query_string={"back": back}).get_data(as_text=True)
    assert back_link(page) == back
    # Actions without JS come back to the mail with the same way back.
    response = user_client.post(f"/mail/{mail}/action", data={"action": "important", "back": back})
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == f"/mail/{mail}" and parse_qs(location.query) == {"back": [back]}


@pytest.mark.parametrize(
    "back", ["https://evil.example/", "//evil.example/inbox", "javascript:alert(1)", "/\\evil"]
)
def test_back_never_leaves_the_site(user_client, db, rep, back):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    page = user_client.get(f"/mail/{mail}", query_string={"back": back}).get_data(as_text=True)
    assert back_link(page) == "/inbox/"


def test_without_back_the_referring_page_of_this_site_is_used(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()

    def back_from(referer):
        headers = {"Referer": referer}
        return back_link(user_client.get(f"/mail/{mail}", headers=headers).get_data(as_text=True))

    assert back_from("http://localhost/records/contacts/4?page=2") == "/records/contacts/4?page=2"
    assert back_from("http://evil.example/records/contacts/4") == "/inbox/"
    assert back_from(f"http://localhost/mail/{mail}/action") == "/inbox/"


@pytest.mark.parametrize("htmx", [False, True])
def test_the_lists_star_sets_and_clears_important(user_client, db, rep, htmx):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    listing = user_client.get("/inbox/").get_data(as_text=True)
    assert f'hx-post="/mail/{mail}/star?on=1"' in listing
    response = user_client.post(f"/mail/{mail}/star?on=1", htmx=htmx)
    assert state(db, rep.id, mail).is_important
    if htmx:
        html = response.get_data(as_text=True)
        assert 'aria-pressed="true"' in html and f'hx-post="/mail/{mail}/star?on=0"' in html
        assert "mail-changed" in response.headers["HX-Trigger"]
    else:
        assert response.status_code == 303 and response.headers["Location"] == "/inbox/"
    user_client.post(f"/mail/{mail}/star?on=0", htmx=htmx)
    assert not state(db, rep.id, mail).is_important


def test_star_on_someone_elses_mail_is_404(user_client, db, make_user):
    other = make_user("other", ["other@example.com"])
    mail = make_email(db, users=[other]).id
    db.commit()
    assert user_client.post(f"/mail/{mail}/star?on=1").status_code == 404

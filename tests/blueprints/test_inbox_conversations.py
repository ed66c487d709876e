"""The mail lists as conversations: the preference, the rows, opening one, actions on a row."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from crm.db import utcnow
from crm.mailbox.folders import create_folder
from crm.models import EmailUserState, User
from tests.factories import make_email


@pytest.fixture
def rep(services, user_client):
    with services.session() as session:
        return SimpleNamespace(id=session.scalar(select(User.id).where(User.username == "rep")))


def conversations_on(db, rep):
    db.execute(update(User).where(User.id == rep.id).values(mail_as_conversations=True))
    db.commit()


def states(db, rep, ids) -> list[EmailUserState]:
    db.rollback()  # a fresh snapshot: the app committed in its own session
    stmt = select(EmailUserState).where(
        EmailUserState.user_id == rep.id, EmailUserState.email_id.in_(ids)
    )
    return list(db.scalars(stmt))


def make_thread(db, rep, senders=("Anna Alpha", "Bob Beta", "Cleo Gamma"), **state):
    """A root and its replies (newest last), unread unless told otherwise."""
    start = utcnow() - timedelta(days=2)
    mails = []
    for n, name in enumerate(senders):
        first = mails[0].message_id if mails else None
        mails.append(
            make_email(
                db,
                users=[rep.id],
                subject=("Re: " if n else "") + "Quote for the pumps",
                from_name=name,
                text=f"Message {n} of the thread",
                in_reply_to=mails[-1].message_id if mails else None,
                references=[first] if first else [],
                date=start + timedelta(hours=n),
                **state,
            )
        )
    db.commit()
    return [m.id for m in mails]


def test_single_mails_by_default_and_the_preference_switches_to_conversations(user_client, db, rep):
    ids = make_thread(db, rep)
    form = user_client.get("/preferences/").get_data(as_text=True)
    assert re.search(r'name="mail_view" value="mails" checked', form)
    html = user_client.get("/inbox/").get_data(as_text=True)
    assert html.count('class="mailrow') == 3
    saved = user_client.post(
        "/preferences/",
        data={"time_zone": "UTC", "date_format": "%Y-%m-%d", "mail_view": "conversations"},
    )
    assert saved.status_code == 303
    assert re.search(
        r'value="conversations" checked', user_client.get("/preferences/").get_data(as_text=True)
    )
    html = user_client.get("/inbox/").get_data(as_text=True)
    assert html.count('class="mailrow') == 1
    row = re.search(r'<tr class="mailrow unread conversation".*?</tr>', html, re.DOTALL).group(0)
    assert f'data-id="thread:{ids[-1]}"' in row and f'value="thread:{ids[-1]}"' in row
    assert "Anna Alpha, Bob Beta, Cleo Gamma" in row and ">3</span>" in row
    assert "Message 2 of the thread" in row
    assert f"/mail/{ids[-1]}?" in row and "conversation=inbox" in row


def test_search_results_stay_single_mails(user_client, db, rep):
    make_thread(db, rep)
    conversations_on(db, rep)
    html = user_client.get("/inbox/search?q=pumps").get_data(as_text=True)
    assert html.count('class="mailrow') == 3 and "thread:" not in html


def test_opening_a_conversation_shows_the_thread_and_reads_all_of_it(user_client, db, rep):
    ids = make_thread(db, rep)
    conversations_on(db, rep)
    html = user_client.get(f"/mail/{ids[-1]}?conversation=inbox").get_data(as_text=True)
    section = html[html.index('id="conversation"') :]
    assert "3 mails" in section and "Anna Alpha" in section and "Bob Beta" in section
    assert all(s.is_read for s in states(db, rep, ids))
    # Opened as a single mail, only that mail is read.
    other = make_thread(db, rep, senders=("Dan Delta", "Eve Epsilon"))
    user_client.get(f"/mail/{other[-1]}")
    assert [s.is_read for s in sorted(states(db, rep, other), key=lambda s: s.email_id)] == [
        False,
        True,
    ]


@pytest.mark.parametrize("htmx", [False, True])
def test_bulk_actions_on_a_conversation_row_take_all_its_mail_in_the_folder(
    user_client, db, rep, htmx
):
    ids = make_thread(db, rep)
    elsewhere = create_folder(db, rep.id, "Elsewhere")
    moved = make_email(db, users=[rep.id], folder_id=elsewhere.id, references=[])
    db.commit()
    conversations_on(db, rep)
    token = f"thread:{ids[-1]}"
    data = {"action": "read", "ids": [token], "folder": "inbox"}
    assert user_client.post("/inbox/actions", data=data, htmx=htmx).status_code in (200, 303)
    assert all(s.is_read for s in states(db, rep, ids))
    folder = create_folder(db, rep.id, "Projects")
    db.commit()
    data = {"action": "move", "ids": [token], "target": str(folder.id), "folder": "inbox"}
    response = user_client.post("/inbox/actions", data=data, htmx=htmx)
    html = response.get_data(as_text=True) if htmx else user_client.get("/inbox/").get_data(True)
    assert "3 mails moved to Projects." in html
    assert {s.folder_id for s in states(db, rep, ids)} == {folder.id}
    assert states(db, rep, [moved.id])[0].folder_id == elsewhere.id
    data = {"action": "trash", "ids": [token], "folder": str(folder.id)}
    user_client.post("/inbox/actions", data=data, htmx=htmx)
    assert all(s.in_trash for s in states(db, rep, ids))


def test_a_conversation_rows_star_stars_the_thread(user_client, db, rep):
    ids = make_thread(db, rep)
    conversations_on(db, rep)
    html = user_client.get("/inbox/").get_data(as_text=True)
    star = re.search(r'formaction="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "conversation=inbox" in star
    response = user_client.post(star, htmx=True)
    assert response.status_code == 200 and "conversation=inbox" in response.get_data(True)
    assert all(s.is_important for s in states(db, rep, ids))


def test_conversations_load_more_as_rows_fragment(user_client, db, rep):
    for n in range(55):
        make_email(db, users=[rep.id], subject=f"Mail number {n:02d}")
    make_thread(db, rep)
    conversations_on(db, rep)
    html = user_client.get("/inbox/").get_data(as_text=True)
    assert html.count('class="mailrow') == 50
    more = re.search(r'hx-get="([^"]+)"', html[html.index('id="more"') :]).group(1)
    rows = user_client.get(more.replace("&amp;", "&"), headers={"HX-Request": "true"})
    text = rows.get_data(as_text=True)
    assert "<html" not in text and text.count('class="mailrow') == 6
    assert "Quote for the pumps" in text and "thread:" in text

"""Folder definitions, unread counts, keyset paging, visibility and bulk actions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from crm import settings
from crm.mailbox import actions, listing
from crm.mailbox.folders import create_folder, create_group_folder
from crm.models import Email, EmailUserState, User
from tests.factories import make_email


@pytest.fixture
def users(db, make_user):
    ids = {
        "rep": make_user("rep", ["rep@example.com"], teams=["sales"]),
        "ann": make_user("ann", ["ann@example.com"], teams=["sales"]),
        "boss": make_user("boss", ["boss@example.com"], admin=True),
    }
    return {name: db.get(User, uid) for name, uid in ids.items()}


def keys(session, user, key, **kw):
    view = listing.resolve(session, user, key)
    return [r.id for r in listing.list_page(session, user, view, **kw).rows]


def test_shared_mail_keeps_each_users_read_and_trash_state(db, users):
    rep, ann = users["rep"], users["ann"]
    mail = make_email(db, users=[rep.id, ann.id])
    actions.apply(db, rep, "read", [mail.id])
    actions.apply(db, ann, "trash", [mail.id])
    assert keys(db, rep, "inbox") == [mail.id]
    assert keys(db, ann, "inbox") == []
    assert keys(db, ann, "trash") == [mail.id]
    assert listing.unread_counts(db, rep.id).get("inbox", 0) == 0
    assert listing.unread_counts(db, ann.id)["trash"] == 1
    assert listing.state_of(db, ann.id, mail.id).is_read is False


def test_folder_definitions(db, users):
    rep = users["rep"]
    inbox = make_email(db, users=[rep.id])
    mine = make_email(db, users=[rep.id], from_addr="rep@example.com", outgoing_for=[rep.id])
    sent = make_email(db, users=[rep.id], status="Sent")
    db.get(Email, sent.id).created_by_id = rep.id
    draft = make_email(db, users=[rep.id], status="Draft")
    db.get(Email, draft.id).created_by_id = rep.id
    flagged = make_email(db, users=[rep.id], is_important=True)
    trashed = make_email(db, users=[rep.id], in_trash=True, is_important=True)
    folder = create_folder(db, rep.id, "Projects")
    filed = make_email(db, users=[rep.id], folder_id=folder.id)
    db.flush()
    assert set(keys(db, rep, "inbox")) == {inbox.id, flagged.id, sent.id}
    assert set(keys(db, rep, "sent")) == {mine.id, sent.id}
    assert keys(db, rep, "drafts") == [draft.id]
    assert set(keys(db, rep, "important")) == {flagged.id}
    assert keys(db, rep, "trash") == [trashed.id]
    assert keys(db, rep, str(folder.id)) == [filed.id]


def test_sent_view_lists_recipients(db, users):
    rep = users["rep"]
    make_email(
        db,
        users=[rep.id],
        from_addr="rep@example.com",
        outgoing_for=[rep.id],
        to=("client@customer.example",),
    )
    page = listing.list_page(db, rep, listing.resolve(db, rep, "sent"))
    assert page.rows[0].recipients == "client@customer.example"


def test_folder_of_someone_else_is_not_resolved(db, users):
    rep, ann = users["rep"], users["ann"]
    private = create_folder(db, ann.id, "Ann's")
    group = create_group_folder(db, "Team", [t.id for t in ann.teams])
    other_group = create_group_folder(db, "Elsewhere", [])
    assert listing.resolve(db, rep, str(private.id)) is None
    assert listing.resolve(db, rep, str(group.id)).folder.id == group.id
    assert listing.resolve(db, rep, str(other_group.id)) is None
    assert listing.resolve(db, rep, "nonsense") is None
    assert [v.label for v, _ in listing.pane(db, rep)] == [
        "Inbox",
        "Important",
        "Sent",
        "Drafts",
        "Trash",
        "Team",
    ]


def test_unread_counts_leave_out_own_mail_and_count_important_everywhere(db, users):
    rep = users["rep"]
    make_email(db, users=[rep.id], from_addr="rep@example.com", outgoing_for=[rep.id])
    make_email(db, users=[rep.id], is_important=True, in_trash=True)
    make_email(db, users=[rep.id], is_important=True)
    assert listing.unread_counts(db, rep.id) == {"inbox": 1, "important": 1, "trash": 1}


def test_unread_counts_per_folder(db, users):
    rep = users["rep"]
    folder = create_folder(db, rep.id, "Projects")
    make_email(db, users=[rep.id])
    make_email(db, users=[rep.id], is_read=True)
    make_email(db, users=[rep.id], folder_id=folder.id)
    make_email(db, users=[rep.id], folder_id=folder.id, is_important=True)
    counts = {v.key: n for v, n in listing.pane(db, rep)}
    assert counts["inbox"] == 1
    assert counts[str(folder.id)] == 2
    assert counts["important"] == 1


def test_keyset_pages_cover_every_mail_once_across_equal_dates(db, users):
    rep = users["rep"]
    same = datetime(2026, 1, 1, 12, 0)
    ids = [make_email(db, users=[rep.id], date=same).id for _ in range(7)]
    ids += [make_email(db, users=[rep.id], date=same - timedelta(days=1)).id for _ in range(4)]
    view = listing.resolve(db, rep, "inbox")
    seen, cursor = [], None
    while True:
        page = listing.list_page(db, rep, view, cursor, limit=3)
        seen += [r.id for r in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = sorted(ids[:7], reverse=True) + sorted(ids[7:], reverse=True)
    assert seen == expected


def test_a_broken_cursor_means_the_first_page(db, users):
    rep = users["rep"]
    mail = make_email(db, users=[rep.id])
    assert keys(db, rep, "inbox", cursor="!!not-a-cursor") == [mail.id]


def test_mail_is_readable_only_with_a_state_row_or_as_admin(db, users):
    rep, ann, boss = users["rep"], users["ann"], users["boss"]
    mail = make_email(db, users=[ann.id])
    assert listing.readable(db, rep, mail.id) is None
    assert listing.readable(db, ann, mail.id).id == mail.id
    assert listing.readable(db, boss, mail.id).id == mail.id


def test_opening_marks_read_for_that_user_only(db, users):
    rep, ann = users["rep"], users["ann"]
    mail = make_email(db, users=[rep.id, ann.id])
    listing.open_mail(db, rep, mail.id)
    db.flush()
    assert listing.state_of(db, rep.id, mail.id).is_read
    assert not listing.state_of(db, ann.id, mail.id).is_read


def test_bulk_actions_touch_only_the_actors_rows(db, users):
    rep, ann = users["rep"], users["ann"]
    a = make_email(db, users=[rep.id, ann.id])
    b = make_email(db, users=[rep.id])
    other = make_email(db, users=[ann.id])
    done = actions.apply(db, rep, "important", [a.id, b.id, other.id])
    assert done.count == 2
    flagged = db.scalars(select(EmailUserState).where(EmailUserState.is_important.is_(True)))
    assert {(s.user_id, s.email_id) for s in flagged} == {(rep.id, a.id), (rep.id, b.id)}


def test_move_to_folder_and_back_to_inbox(db, users):
    rep = users["rep"]
    folder = create_folder(db, rep.id, "Projects")
    mail = make_email(db, users=[rep.id], in_trash=True)
    actions.apply(db, rep, "move", [mail.id], str(folder.id))
    assert keys(db, rep, str(folder.id)) == [mail.id]
    actions.apply(db, rep, "move", [mail.id], "inbox")
    assert keys(db, rep, "inbox") == [mail.id]


def test_undo_puts_moved_and_trashed_mail_back_where_each_was(db, users):
    rep, ann = users["rep"], users["ann"]
    projects = create_folder(db, rep.id, "Projects")
    archive = create_folder(db, rep.id, "Archive")
    in_inbox = make_email(db, users=[rep.id, ann.id])
    in_projects = make_email(db, users=[rep.id], folder_id=projects.id)
    in_trash = make_email(db, users=[rep.id], in_trash=True)
    ids = [in_inbox.id, in_projects.id, in_trash.id]
    done = actions.apply(db, rep, "move", ids, str(archive.id))
    assert sorted(keys(db, rep, str(archive.id))) == sorted(ids)
    assert actions.restore(db, rep, list(done.before)) == 3
    assert keys(db, rep, "inbox") == [in_inbox.id]
    assert keys(db, rep, str(projects.id)) == [in_projects.id]
    assert keys(db, rep, "trash") == [in_trash.id]
    done = actions.apply(db, rep, "trash", [in_inbox.id, in_projects.id])
    actions.restore(db, rep, list(done.before))
    assert keys(db, rep, "inbox") == [in_inbox.id]
    assert keys(db, rep, str(projects.id)) == [in_projects.id]
    assert keys(db, ann, "inbox") == [in_inbox.id]  # ann's copy never moved


def test_undo_never_files_into_a_folder_not_mine(db, users):
    rep, ann = users["rep"], users["ann"]
    theirs = create_folder(db, ann.id, "Ann's")
    mail = make_email(db, users=[rep.id])
    forged = [actions.Placement(mail.id, theirs.id, False)]
    actions.restore(db, rep, forged)
    assert keys(db, rep, "inbox") == [mail.id]


def test_move_to_a_folder_not_mine_is_refused(db, users):
    rep, ann = users["rep"], users["ann"]
    folder = create_folder(db, ann.id, "Ann's")
    mail = make_email(db, users=[rep.id])
    with pytest.raises(actions.ActionError):
        actions.apply(db, rep, "move", [mail.id], str(folder.id))


def test_delete_permission(db, users):
    rep, boss = users["rep"], users["boss"]
    assert not actions.may_delete(db, rep)
    assert actions.may_delete(db, boss)
    mail = make_email(db, users=[rep.id])
    with pytest.raises(actions.ActionError):
        actions.apply(db, rep, "delete", [mail.id])
    settings.put(db, "users_may_delete_mail", True)
    assert actions.apply(db, rep, "delete", [mail.id]).count == 1


def test_delete_removes_the_mail_for_everyone_and_only_unshared_blobs(db, users, services):
    rep, ann, boss = users["rep"], users["ann"], users["boss"]
    shared_raw = services.blobs.put(b"raw shared")
    own_raw = services.blobs.put(b"raw own")
    gone = make_email(db, users=[rep.id, ann.id])
    gone.raw_sha256 = own_raw
    keeper = make_email(db, users=[rep.id])
    keeper.raw_sha256 = shared_raw
    twin = make_email(db, users=[rep.id])
    twin.raw_sha256 = shared_raw
    db.flush()
    gone_id = gone.id
    done = actions.apply(db, boss, "delete", [gone_id, twin.id])
    db.commit()
    actions.drop_unreferenced_blobs(db, services.blobs, done.blobs)
    assert db.get(Email, gone_id) is None
    assert db.scalars(select(EmailUserState).where(EmailUserState.email_id == gone_id)).all() == []
    assert not services.blobs.exists(own_raw)
    assert services.blobs.exists(shared_raw)  # the keeper still uses it


def test_users_delete_only_mail_they_have(db, users):
    rep, ann = users["rep"], users["ann"]
    settings.put(db, "users_may_delete_mail", True)
    theirs = make_email(db, users=[ann.id]).id
    assert actions.apply(db, rep, "delete", [theirs]).count == 0
    assert db.get(Email, theirs) is not None


def test_thread_finds_ancestors_and_replies_the_user_can_see(db, users):
    rep, ann = users["rep"], users["ann"]
    root = make_email(db, users=[rep.id], message_id="root@x.example")
    reply = make_email(
        db,
        users=[rep.id],
        message_id="reply@x.example",
        in_reply_to="root@x.example",
        references=["root@x.example"],
    )
    hidden = make_email(db, users=[ann.id], in_reply_to="root@x.example")
    third = make_email(
        db,
        users=[rep.id],
        in_reply_to="reply@x.example",
        references=["root@x.example", "reply@x.example"],
    )
    found = {e.id for e in listing.thread(db, rep, reply)}
    assert found == {root.id, third.id}
    assert hidden.id not in {e.id for e in listing.thread(db, rep, root)}

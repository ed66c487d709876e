"""Folders: personal folders, group folders shared with teams, moving mail."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.mailbox import folders
from crm.models import EmailFilter, EmailUserState, MailAccount, User
from tests.factories import make_email


@pytest.fixture
def people(db, make_user):
    ids = {
        "rep": make_user("rep", ["rep@example.com"], teams=["sales"]),
        "ann": make_user("ann", ["ann@example.com"], teams=["sales"]),
        "sup": make_user("sup", ["sup@example.com"], teams=["support"]),
        "out": make_user("out", ["out@example.com"]),
        "boss": make_user("boss", admin=True),
    }
    return {name: db.get(User, i) for name, i in ids.items()}


def state(db, email, user) -> EmailUserState | None:
    return db.scalars(
        select(EmailUserState).where(
            EmailUserState.email_id == email.id, EmailUserState.user_id == user.id
        )
    ).first()


def names(rows):
    return [f.name for f in rows]


def test_create_rename_and_reorder_personal_folders(db, people):
    rep = people["rep"]
    a = folders.create_folder(db, rep.id, "  Customers  ")
    b = folders.create_folder(db, rep.id, "Suppliers", skip_notifications=True)
    c = folders.create_folder(db, rep.id, "Later")
    assert names(folders.personal_folders(db, rep.id)) == ["Customers", "Suppliers", "Later"]
    assert b.skip_notifications
    folders.shift_folder(db, c, -1)
    assert names(folders.personal_folders(db, rep.id)) == ["Customers", "Later", "Suppliers"]
    folders.shift_folder(db, a, -1)  # already first: stays
    folders.reorder_folders(db, rep.id, [b.id, a.id])
    assert names(folders.personal_folders(db, rep.id)) == ["Suppliers", "Customers", "Later"]
    folders.update_folder(db, a, "Clients", skip_notifications=True)
    assert a.name == "Clients" and a.skip_notifications


def test_folder_names_are_required_and_unique_per_user(db, people):
    folders.create_folder(db, people["rep"].id, "Customers")
    with pytest.raises(folders.FolderError):
        folders.create_folder(db, people["rep"].id, "customers")
    with pytest.raises(folders.FolderError):
        folders.create_folder(db, people["rep"].id, "   ")
    with pytest.raises(folders.FolderError):
        folders.create_folder(db, people["rep"].id, "x" * 101)
    folders.create_folder(db, people["ann"].id, "Customers")  # another user's: fine


def test_folders_are_visible_to_their_owner_only(db, people):
    folder = folders.create_folder(db, people["rep"].id, "Mine")
    assert folders.own_folder(db, people["rep"], folder.id) is folder
    assert folders.own_folder(db, people["ann"], folder.id) is None
    assert folders.target_folder(db, people["ann"], folder.id) is None


def test_deleting_a_folder_returns_its_mail_to_the_inbox_and_drops_its_filters(db, people):
    rep = people["rep"]
    folder = folders.create_folder(db, rep.id, "Old")
    email = make_email(db, users=[rep.id])
    folders.move_mail(db, rep, [email.id], folder)
    db.add(
        EmailFilter(
            scope="inbox",
            user_id=rep.id,
            action="move",
            folder_id=folder.id,
            from_pattern="*",
            body_any=[],
            body_all=[],
        )
    )
    account = MailAccount(
        user_id=rep.id,
        email_address="rep@example.com",
        target_folder_id=folder.id,
        folder_map={"Archive": folder.id, "X": 999},
    )
    db.add(account)
    db.flush()
    folders.delete_folder(db, folder)
    db.expire_all()
    assert state(db, email, rep).folder_id is None
    assert db.scalars(select(EmailFilter)).all() == []
    assert account.target_folder_id is None and account.folder_map == {"X": 999}


def test_moving_mail_between_inbox_and_folders_only_touches_my_copy(db, people):
    rep, ann = people["rep"], people["ann"]
    folder = folders.create_folder(db, rep.id, "Customers")
    email = make_email(db, users=[rep.id, ann.id], in_trash=True)
    assert folders.move_mail(db, rep, [email.id], folder) == 1
    assert (state(db, email, rep).folder_id, state(db, email, rep).in_trash) == (folder.id, False)
    assert state(db, email, ann).folder_id is None and state(db, email, ann).in_trash
    folders.move_mail(db, rep, [email.id], None)
    assert state(db, email, rep).folder_id is None


def test_moving_mail_i_do_not_have_does_nothing(db, people):
    email = make_email(db, users=[people["ann"].id])
    assert folders.move_mail(db, people["rep"], [email.id], None) == 0
    assert state(db, email, people["rep"]) is None


def test_group_folders_are_visible_to_their_teams_and_admins(db, people):
    admin = people["boss"]
    sales = [t.id for t in people["rep"].teams]
    shared = folders.create_group_folder(db, "Sales desk", sales)
    assert names(folders.visible_group_folders(db, people["ann"])) == ["Sales desk"]
    assert folders.visible_group_folders(db, people["sup"]) == []
    assert folders.target_folder(db, people["sup"], shared.id) is None
    assert folders.target_folder(db, admin, shared.id) is shared


def test_moving_mail_into_a_group_folder_shares_it_with_the_teams(db, people):
    rep, ann, sup, out = people["rep"], people["ann"], people["sup"], people["out"]
    teams = [t.id for t in rep.teams + sup.teams]
    shared = folders.create_group_folder(db, "Escalations", teams)
    email = make_email(db, users=[rep.id, ann.id], is_read=True)
    folders.move_mail(db, rep, [email.id], shared)
    for member in (rep, ann, sup):
        assert state(db, email, member).folder_id == shared.id
    assert state(db, email, ann).is_read and not state(db, email, sup).is_read
    assert state(db, email, out) is None


def test_group_folder_trash_is_shared_among_members(db, people):
    rep, ann = people["rep"], people["ann"]
    shared = folders.create_group_folder(db, "Desk", [t.id for t in rep.teams])
    email = make_email(db, users=[rep.id])
    folders.move_mail(db, rep, [email.id], shared)
    folders.set_trash(db, ann, [email.id], True)
    db.expire_all()
    assert state(db, email, rep).in_trash and state(db, email, rep).folder_id == shared.id
    folders.set_trash(db, rep, [email.id], False)
    db.expire_all()
    assert not state(db, email, ann).in_trash


def test_taking_mail_out_of_a_group_folder_takes_it_out_for_every_member(db, people):
    rep, ann = people["rep"], people["ann"]
    shared = folders.create_group_folder(db, "Desk", [t.id for t in rep.teams])
    mine = folders.create_folder(db, rep.id, "Done")
    email = make_email(db, users=[rep.id])
    folders.move_mail(db, rep, [email.id], shared)
    folders.move_mail(db, rep, [email.id], mine)
    db.expire_all()
    assert state(db, email, rep).folder_id == mine.id
    assert state(db, email, ann).folder_id is None


def test_trash_outside_group_folders_stays_personal(db, people):
    rep, ann = people["rep"], people["ann"]
    email = make_email(db, users=[rep.id, ann.id])
    folders.set_trash(db, rep, [email.id], True)
    db.expire_all()
    assert state(db, email, rep).in_trash and not state(db, email, ann).in_trash


def test_sharing_a_group_folder_with_a_new_team_gives_its_members_the_mail(db, people):
    rep, sup = people["rep"], people["sup"]
    sales = [t.id for t in rep.teams]
    shared = folders.create_group_folder(db, "Desk", sales)
    email = make_email(db, users=[rep.id])
    folders.move_mail(db, rep, [email.id], shared)
    assert state(db, email, sup) is None
    folders.update_group_folder(db, shared, "Desk", sales + [t.id for t in sup.teams], True)
    assert state(db, email, sup).folder_id == shared.id
    assert shared.skip_notifications


def test_deleting_a_group_folder_returns_mail_to_every_members_inbox(db, people):
    rep, ann = people["rep"], people["ann"]
    shared = folders.create_group_folder(db, "Desk", [t.id for t in rep.teams])
    email = make_email(db, users=[rep.id])
    folders.move_mail(db, rep, [email.id], shared)
    folders.delete_folder(db, shared)
    db.expire_all()
    assert state(db, email, rep).folder_id is None and state(db, email, ann).folder_id is None


def test_mail_counts_count_each_mail_once(db, people):
    rep = people["rep"]
    shared = folders.create_group_folder(db, "Desk", [t.id for t in rep.teams])
    emails = [make_email(db, users=[rep.id]) for _ in range(2)]
    folders.move_mail(db, rep, [e.id for e in emails], shared)
    assert folders.mail_counts(db, [shared.id]) == {shared.id: 2}

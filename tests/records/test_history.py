from datetime import datetime

from crm.models import Task, User
from crm.records import history
from tests.factories import make_email
from tests.support import records


def viewer(db, make_user, name="rep", admin=False, teams=()):
    return db.get(User, make_user(name, admin=admin, teams=teams))


def subjects(page):
    return [m.subject for m in page.items]


def test_history_lists_archived_and_sent_mail_newest_first(db, make_user):
    admin = viewer(db, make_user, admin=True)
    acme = records.account(db)
    make_email(db, subject="old", parent=acme, date=datetime(2024, 1, 1))
    make_email(db, subject="new", parent=acme, date=datetime(2024, 3, 1), status="Sent")
    make_email(db, subject="draft", parent=acme, status="Draft")
    assert subjects(history.history(db, admin, "Account", acme.id)) == ["new", "old"]


def test_account_history_includes_mail_of_its_contacts_opportunities_and_cases(db, make_user):
    admin = viewer(db, make_user, admin=True)
    acme = records.account(db)
    ann = records.contact(db, account=acme)
    opp = records.opportunity(db, account=acme)
    case = records.case(db, 1, account=acme)
    for parent, subject in ((ann, "contact"), (opp, "opportunity"), (case, "case")):
        make_email(db, subject=subject, parent=parent)
    make_email(db, subject="elsewhere", parent=records.account(db, name="Other"))
    assert sorted(subjects(history.history(db, admin, "Account", acme.id))) == [
        "case",
        "contact",
        "opportunity",
    ]


def test_history_includes_mail_with_the_records_address_under_another_parent(db, make_user):
    admin = viewer(db, make_user, admin=True)
    ann = records.contact(db, addresses=["ann@acme.example"])
    lee = records.lead(db)
    make_email(db, subject="cc'd", cc=("Ann@Acme.example",), parent=lee)
    make_email(db, subject="from", from_addr="ann@acme.example")
    make_email(db, subject="unrelated")
    assert sorted(subjects(history.history(db, admin, "Contact", ann.id))) == ["cc'd", "from"]


def test_bcc_alone_does_not_put_mail_in_history(db, make_user):
    from crm.models import EmailRecipient
    from crm.records import addressbook

    admin = viewer(db, make_user, admin=True)
    ann = records.contact(db, addresses=["ann@acme.example"])
    email = make_email(db)
    row = addressbook.find_or_create(db, ["ann@acme.example"])["ann@acme.example"]
    email.recipients.append(EmailRecipient(position=9, role="bcc", address_id=row.id))
    db.flush()
    assert history.history(db, admin, "Contact", ann.id).total == 0


def test_viewer_sees_mail_they_have_or_whose_parent_they_may_read(db, make_user):
    rep = viewer(db, make_user)
    mine = records.account(db, assigned_user_id=rep.id, addresses=["buyer@acme.example"])
    hidden = records.lead(db)
    make_email(db, subject="linked to mine", parent=mine)
    make_email(
        db, subject="in my mailbox", from_addr="buyer@acme.example", parent=hidden, users=[rep.id]
    )
    make_email(db, subject="someone else's", from_addr="buyer@acme.example", parent=hidden)
    make_email(db, subject="unlinked, not mine", from_addr="buyer@acme.example")
    page = history.history(db, rep, "Account", mine.id)
    assert sorted(subjects(page)) == ["in my mailbox", "linked to mine"]


def test_team_members_read_mail_of_team_records(db, make_user):
    rep = viewer(db, make_user, teams=["Sales"])
    acme = records.account(db, team_id=rep.teams[0].id)
    make_email(db, subject="team mail", parent=acme)
    assert subjects(history.history(db, rep, "Account", acme.id)) == ["team mail"]


def test_history_is_paginated(db, make_user):
    admin = viewer(db, make_user, admin=True)
    acme = records.account(db)
    for i in range(history.HISTORY_PER_PAGE + 3):
        make_email(db, subject=f"m{i}", parent=acme, date=datetime(2024, 1, 1, 0, i))
    first = history.history(db, admin, "Account", acme.id)
    second = history.history(db, admin, "Account", acme.id, page=2)
    assert first.total == history.HISTORY_PER_PAGE + 3 and first.has_next
    assert subjects(second) == ["m2", "m1", "m0"]


def test_unknown_record_type_has_no_history(db, make_user):
    assert history.history(db, viewer(db, make_user, admin=True), "Nope", 1).total == 0


def test_can_read_email_applies_the_rule(db, make_user):
    rep_id, other_id = make_user("rep"), make_user("other")
    rep, other = db.get(User, rep_id), db.get(User, other_id)
    email = make_email(db, users=[other.id])
    assert history.can_read_email(db, email.id, rep) is None
    assert history.can_read_email(db, email.id, other) is email


def test_activities_list_open_tasks_and_the_viewers_drafts(db, make_user):
    rep = viewer(db, make_user)
    acme = records.account(db, assigned_user_id=rep.id)
    for name, status in (("call", "Not Started"), ("done", "Completed"), ("gone", "Canceled")):
        db.add(
            Task(
                name=name,
                status=status,
                parent_type="Account",
                parent_id=acme.id,
                assigned_user_id=rep.id,
            )
        )
    db.add(Task(name="hidden", parent_type="Account", parent_id=acme.id))
    draft = make_email(db, subject="my draft", status="Draft", parent=acme)
    draft.created_by_id = rep.id
    make_email(db, subject="colleague draft", status="Draft", parent=acme)
    db.flush()
    found = history.activities(db, rep, "Account", acme.id)
    assert [t.name for t in found.tasks] == ["call"]
    assert [d.subject for d in found.drafts] == ["my draft"]

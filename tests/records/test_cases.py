"""Email-to-case on stored mail rows (the Dovecot path is in test_linking_import)."""

from crm.models import Attachment, Case
from crm.records import cases, linking
from tests.factories import make_email
from tests.support import records


def route(db, email, group):
    link = linking.find_parent(db, email, None, group, key="k")
    linking.apply_link(db, email, link)
    return cases.route_to_case(db, email, None, group)


def only_case(db):
    (case,) = db.query(Case).all()
    return case


def test_new_mail_opens_a_case_assigned_directly(db, make_user):
    owner = make_user("owner")
    group = records.group_account(db, user_id=owner)
    email = make_email(db, subject="Printer on fire", text="It smokes.")
    assert route(db, email, group) == [owner]
    case = only_case(db)
    assert (case.name, case.description, case.assigned_user_id, case.status) == (
        "Printer on fire",
        "It smokes.",
        owner,
        "Assigned",
    )
    assert case.inbound_account_id == group.id and case.number == 1
    assert (email.parent_type, email.parent_id, email.link_rule) == (
        "Case",
        case.id,
        "case-created",
    )


def test_case_takes_contact_and_its_account_from_the_sender(db):
    acme = records.account(db)
    ann = records.contact(db, addresses=["sender@customer.example"], account=acme)
    group = records.group_account(db)
    route(db, make_email(db), group)
    case = only_case(db)
    assert (case.contact_id, case.account_id, case.lead_id) == (ann.id, acme.id, None)


def test_case_takes_a_lead_sender(db):
    lee = records.lead(db, addresses=["sender@customer.example"])
    route(db, make_email(db), records.group_account(db))
    assert only_case(db).lead_id == lee.id


def test_case_copies_attachments_to_the_same_blob(db):
    email = make_email(db)
    email.attachments.append(
        Attachment(filename="log.txt", sha256="a" * 64, size=3, content_type="text/plain")
    )
    db.flush()
    route(db, email, records.group_account(db))
    case = only_case(db)
    copy = db.query(Attachment).filter_by(parent_type="Case", parent_id=case.id).one()
    assert (copy.sha256, copy.filename, copy.email_id) == ("a" * 64, "log.txt", None)


def test_reply_by_case_number_attaches_and_goes_to_the_assignee(db, make_user):
    owner, agent = make_user("owner"), make_user("agent")
    group = records.group_account(db, user_id=owner)
    case = records.case(db, 42, inbound=group, assigned_user_id=agent)
    email = make_email(db, subject="Re: [#42] still broken")
    assert route(db, email, group) == [agent]
    assert db.query(Case).count() == 1
    assert (email.parent_type, email.parent_id, email.link_rule) == ("Case", case.id, "case-number")


def test_reply_in_the_thread_of_a_case_attaches(db, make_user):
    agent = make_user("agent")
    group = records.group_account(db)
    case = records.case(db, 7, inbound=group, assigned_user_id=agent)
    make_email(db, message_id="case-mail@x.example", parent=case)
    reply = make_email(db, subject="no number here", in_reply_to="case-mail@x.example")
    assert route(db, reply, group) == [agent]
    assert db.query(Case).count() == 1 and reply.link_rule == "replied-mail"


def test_original_arriving_after_its_reply_joins_the_case_the_reply_opened(db, make_user):
    # A folder is read newest first: the reply can open a case before its original is stored.
    agent = make_user("agent")
    group = records.group_account(db, user_id=agent)
    reply = make_email(db, subject="Re: Broken", in_reply_to="orig@x.example")
    assert route(db, reply, group) == [agent]
    original = make_email(db, subject="Broken", message_id="orig@x.example")
    assert route(db, original, group) == [agent]
    case = only_case(db)
    assert (original.parent_type, original.parent_id, original.link_rule) == (
        "Case",
        case.id,
        "case-thread",
    )
    assert (reply.parent_type, reply.parent_id) == ("Case", case.id)


def test_mail_of_the_same_thread_whose_reply_opened_a_case_joins_it(db):
    # Root lost, the later reply (naming the root first in References) came first.
    group = records.group_account(db)
    later = make_email(db, subject="Re: x", references=["root@x.example", "mid@x.example"])
    route(db, later, group)
    earlier = make_email(db, subject="Re: x", in_reply_to="root@x.example")
    route(db, earlier, group)
    assert only_case(db).id == earlier.parent_id == later.parent_id


def test_numbers_increase(db):
    group = records.group_account(db)
    records.case(db, 100)
    route(db, make_email(db, subject="one"), group)
    assert db.query(Case).filter_by(name="one").one().number == 101


def test_round_robin_takes_turns_and_remembers_the_turn_on_the_account(db, make_user):
    a, b, c = make_user("a"), make_user("b"), make_user("c")
    team = records.team_of(db, "Support", [c, a, b])
    group = records.group_account(db, distribution="round-robin", team=team)
    picks = [route(db, make_email(db, subject=f"m{i}"), group)[0] for i in range(4)]
    assert picks == [a, b, c, a]
    assert group.case_last_assignee_id == a


def test_round_robin_skips_inactive_members(db, make_user):
    from crm.models import User

    a, b = make_user("a"), make_user("b")
    db.get(User, a).is_active = False
    group = records.group_account(
        db, distribution="round-robin", team=records.team_of(db, "T", [a, b])
    )
    assert route(db, make_email(db), group) == [b]


def test_least_busy_picks_the_member_with_fewest_open_cases(db, make_user):
    a, b = make_user("a"), make_user("b")
    records.case(db, 1, assigned_user_id=a)
    records.case(db, 2, assigned_user_id=b, status="Closed")
    group = records.group_account(
        db, distribution="least-busy", team=records.team_of(db, "T", [a, b])
    )
    assert route(db, make_email(db, subject="x"), group) == [b]
    assert route(db, make_email(db, subject="y"), group) == [a]


def test_team_modes_without_a_team_fall_back_to_the_account_user(db, make_user):
    owner = make_user("owner")
    group = records.group_account(db, user_id=owner, distribution="least-busy")
    assert route(db, make_email(db), group) == [owner]


def test_auto_replies_and_bounces_open_no_case(db):
    group = records.group_account(db)
    auto = make_email(db)
    auto.is_auto_reply = True
    bounce = make_email(db)
    bounce.is_bounce = True
    assert route(db, auto, group) == [] and route(db, bounce, group) == []
    assert db.query(Case).count() == 0


def test_mail_from_our_own_users_opens_no_case(db, make_user):
    make_user("rep", ["rep@example.com"])
    route(
        db,
        make_email(db, from_addr="rep@example.com", to=("support@example.com",)),
        records.group_account(db),
    )
    assert db.query(Case).count() == 0

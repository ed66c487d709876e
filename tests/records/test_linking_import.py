"""Every linking rule, in order, through real imports from the test Dovecot."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from crm import settings
from crm.mail.threadtoken import make_message_id
from crm.models import Case, Email, EmailUserState, MailAccount, User
from crm.records import history
from crm.records.from_mail import prefill
from tests.support import records
from tests.support.mailboxes import fetch, make_account, raw_message

CONTACT = "ann@acme.example"


@pytest.fixture
def rep(make_user):
    return make_user("rep", ["rep@example.com"])


@pytest.fixture
def box(imap_server, services, rep):
    """A fresh mailbox read by rep's personal account: (imap user, account id)."""
    user = imap_server.new_user()
    return user, make_account(services, rep, imap_server, user)


def seed(services, build):
    with services.session() as session:
        return build(session)


def deliver(services, imap_server, box, **message):
    imap_server.append(box[0], raw_message(**message))
    summary = fetch(services, box[1])
    assert summary.error is None and summary.failed == 0


def linked(services, subject):
    with services.session() as session:
        email = session.scalars(select(Email).where(Email.subject == subject)).one()
        return email.parent_type, email.parent_id, email.link_rule, email.account_id


def token(services, record):
    return make_message_id(services.secret_key(), record.entity_type, record.id, "crm.example")


def acme_with_ann(services):
    def build(s):
        acme = records.account(s)
        return acme, records.contact(s, addresses=[CONTACT], account=acme)

    return seed(services, build)


# --- 1. thread token --------------------------------------------------------------------------


def test_thread_token_in_in_reply_to_wins_over_the_sender(services, imap_server, box):
    acme, _ = acme_with_ann(services)
    opp = seed(services, lambda s: records.opportunity(s, account=acme))
    deliver(
        services, imap_server, box, subject="t1", from_=CONTACT, in_reply_to=token(services, opp)
    )
    assert linked(services, "t1") == ("Opportunity", opp.id, "thread-token", acme.id)


def test_thread_token_anywhere_in_references_is_found(services, imap_server, box):
    lead = seed(services, lambda s: records.lead(s))
    refs = f"{token(services, lead)} <a@mua.example> <b@mua.example>"
    deliver(
        services, imap_server, box, subject="t2", in_reply_to="<b@mua.example>", references=refs
    )
    assert linked(services, "t2") == ("Lead", lead.id, "thread-token", None)


def test_forged_thread_token_is_ignored(services, imap_server, box):
    acme, _ = acme_with_ann(services)
    victim = seed(services, lambda s: records.account(s, name="Victim"))
    forged = token(services, acme).replace(f"crm.a.{acme.id}.", f"crm.a.{victim.id}.")
    deliver(services, imap_server, box, subject="t3", from_=CONTACT, in_reply_to=forged)
    assert linked(services, "t3") == ("Account", acme.id, "sender-address", acme.id)


# --- 2. replied mail ----------------------------------------------------------------------------


def test_reply_takes_the_parent_of_the_mail_it_answers(services, imap_server, box):
    acme, _ = acme_with_ann(services)
    deliver(
        services, imap_server, box, subject="ask", from_=CONTACT, message_id="<ask@acme.example>"
    )
    deliver(
        services,
        imap_server,
        box,
        subject="fwd",
        from_="x@stranger.example",
        in_reply_to="<ask@acme.example>",
    )
    assert linked(services, "fwd") == ("Account", acme.id, "replied-mail", acme.id)


def test_reply_arriving_before_its_parent_gets_the_parent(services, imap_server, box):
    acme, _ = acme_with_ann(services)
    refs = "<late@acme.example>"
    deliver(
        services,
        imap_server,
        box,
        subject="early reply",
        from_="x@stranger.example",
        in_reply_to=refs,
        references=refs,
    )
    assert linked(services, "early reply")[0] is None
    deliver(services, imap_server, box, subject="late original", from_=CONTACT, message_id=refs)
    assert linked(services, "early reply") == ("Account", acme.id, "replied-mail", acme.id)


# --- 3. case number (group account) -------------------------------------------------------------


@pytest.fixture
def group(imap_server, services, rep):
    """A group account with email-to-case, direct to rep: (imap user, account id)."""
    user = imap_server.new_user()
    account_id = make_account(
        services,
        rep,
        imap_server,
        user,
        is_group=True,
        email="support@example.com",
        create_case=True,
        case_distribution="direct",
    )
    return user, account_id


def test_case_number_in_the_subject_attaches_to_that_case(services, imap_server, group, make_user):
    agent = make_user("agent")
    case = seed(
        services,
        lambda s: records.case(
            s, 4711, inbound=s.get(MailAccount, group[1]), assigned_user_id=agent
        ),
    )
    deliver(
        services, imap_server, group, subject="Re: [#4711] still broken", from_="x@stranger.example"
    )
    assert linked(services, "Re: [#4711] still broken") == ("Case", case.id, "case-number", None)
    with services.session() as s:
        assert s.query(Case).count() == 1
        email_id = s.scalars(select(Email.id).where(Email.subject.like("%4711%"))).one()
        assert s.scalars(select(EmailUserState).filter_by(email_id=email_id, user_id=agent)).one()


def test_case_number_of_another_account_opens_a_new_case(services, imap_server, group):
    seed(services, lambda s: records.case(s, 99))
    deliver(services, imap_server, group, subject="[#99] hello", from_="x@stranger.example")
    parent_type, parent_id, rule, _ = linked(services, "[#99] hello")
    assert (parent_type, rule) == ("Case", "case-created")
    with services.session() as s:
        assert s.get(Case, parent_id).number == 100


# --- 4. addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize("b2c", [False, True])
def test_contact_sender_links_account_in_b2b_and_contact_in_b2c(services, imap_server, box, b2c):
    seed(services, lambda s: settings.put(s, "b2c_mode", b2c))
    acme, ann = acme_with_ann(services)
    deliver(services, imap_server, box, subject="hi", from_=f"Ann Buyer <{CONTACT.upper()}>")
    expected = ("Contact", ann.id) if b2c else ("Account", acme.id)
    assert linked(services, "hi") == (*expected, "sender-address", acme.id)


def test_account_then_lead_addresses(services, imap_server, box):
    acme = seed(services, lambda s: records.account(s, addresses=["info@acme.example"]))
    lee = seed(services, lambda s: records.lead(s, addresses=["lee@lead.example"]))
    deliver(services, imap_server, box, subject="from account", from_="info@acme.example")
    deliver(services, imap_server, box, subject="from lead", from_="lee@lead.example")
    assert linked(services, "from account") == ("Account", acme.id, "sender-address", acme.id)
    assert linked(services, "from lead") == ("Lead", lee.id, "sender-address", None)


@pytest.mark.parametrize("b2c", [False, True])
def test_converted_lead_gives_what_it_became(services, imap_server, box, b2c):
    seed(services, lambda s: settings.put(s, "b2c_mode", b2c))
    acme, ann = acme_with_ann(services)
    seed(
        services,
        lambda s: records.lead(
            s,
            addresses=["old@lead.example"],
            status="Converted",
            converted_contact_id=ann.id,
            converted_account_id=acme.id,
        ),
    )
    deliver(services, imap_server, box, subject="converted", from_="old@lead.example")
    expected = ("Contact", ann.id) if b2c else ("Account", acme.id)
    assert linked(services, "converted")[:3] == (*expected, "sender-address")


def test_reply_to_then_to_and_our_own_users_are_skipped(services, imap_server, box):
    lee = seed(services, lambda s: records.lead(s, addresses=["lee@lead.example"]))
    acme, _ = acme_with_ann(services)
    deliver(
        services,
        imap_server,
        box,
        subject="via form",
        from_="noreply@forms.example",
        headers={"Reply-To": "lee@lead.example"},
    )
    deliver(services, imap_server, box, subject="we wrote", from_="rep@example.com", to=CONTACT)
    assert linked(services, "via form") == ("Lead", lee.id, "reply-to-address", None)
    assert linked(services, "we wrote") == ("Account", acme.id, "recipient-address", acme.id)


def test_strangers_stay_unlinked(services, imap_server, box):
    deliver(services, imap_server, box, subject="spam", from_="who@nowhere.example")
    assert linked(services, "spam") == (None, None, None, None)


# --- History and create-from-mail on imported mail ---------------------------------------------


def test_account_history_shows_mail_of_its_contact(services, imap_server, box, rep):
    seed(services, lambda s: settings.put(s, "b2c_mode", True))
    acme, ann = acme_with_ann(services)
    deliver(services, imap_server, box, subject="to history", from_=CONTACT)
    with services.session() as s:
        viewer = s.get(User, rep)
        assert [m.subject for m in history.history(s, viewer, "Account", acme.id).items] == [
            "to history"
        ]
        assert [m.subject for m in history.history(s, viewer, "Contact", ann.id).items] == [
            "to history"
        ]


def test_create_from_mail_prefill_from_an_imported_header(services, imap_server, box):
    deliver(
        services, imap_server, box, subject="new person", from_='"Doe, Jane" <jane@newco.example>'
    )
    with services.session() as s:
        email = s.scalars(select(Email).where(Email.subject == "new person")).one()
        draft = prefill(s, email, "jane@newco.example")
    assert (draft.first_name, draft.last_name, draft.address) == (
        "Jane",
        "Doe",
        "jane@newco.example",
    )


# --- email-to-case distribution -------------------------------------------------------------------


def case_of(services, subject):
    with services.session() as s:
        parent_type, parent_id, _, _ = linked(services, subject)
        assert parent_type == "Case"
        case = s.get(Case, parent_id)
        return case


def test_email_to_case_direct_fills_the_case_and_delivers_to_the_assignee(
    services, imap_server, group, rep
):
    acme, ann = acme_with_ann(services)
    deliver(
        services, imap_server, group, subject="Printer on fire", from_=CONTACT, body="It smokes.\n"
    )
    case = case_of(services, "Printer on fire")
    assert (case.name, case.description.strip(), case.contact_id, case.account_id) == (
        "Printer on fire",
        "It smokes.",
        ann.id,
        acme.id,
    )
    assert (case.assigned_user_id, case.inbound_account_id) == (rep, group[1])
    deliver(
        services, imap_server, group, subject=f"Re: [#{case.number}] Printer on fire", from_=CONTACT
    )
    assert linked(services, f"Re: [#{case.number}] Printer on fire")[:3] == (
        "Case",
        case.id,
        "case-number",
    )


def test_email_to_case_round_robin_and_least_busy(services, imap_server, make_user, rep):
    a, b = make_user("a"), make_user("b")
    team = seed(services, lambda s: records.team_of(s, "Support", [a, b]))
    picks = {}
    for mode in ("round-robin", "least-busy"):
        user = imap_server.new_user()
        account = make_account(
            services,
            rep,
            imap_server,
            user,
            is_group=True,
            email=f"{mode}@example.com",
            create_case=True,
            case_distribution=mode,
            case_team_id=team.id,
        )
        for i in range(3):
            deliver(
                services,
                imap_server,
                (user, account),
                subject=f"{mode} {i}",
                from_="x@stranger.example",
            )
        picks[mode] = [case_of(services, f"{mode} {i}").assigned_user_id for i in range(3)]
    assert picks["round-robin"] == [a, b, a]
    # Round-robin left a with 2 open cases and b with 1; least-busy evens them out.
    assert picks["least-busy"] == [b, a, b]
    with services.session() as s:
        email_id = s.scalars(select(Email.id).where(Email.subject == "least-busy 0")).one()
        assert s.scalars(select(EmailUserState).filter_by(email_id=email_id, user_id=b)).one()


# --- replies that arrive before their parents -----------------------------------------------


def deliver_all(services, imap_server, box, *messages, batch_size=1):
    """Append in this order (the first import then reads them newest first)."""
    for message in messages:
        imap_server.append(box[0], raw_message(**message))
    summary = fetch(services, box[1], batch_size=batch_size)
    assert summary.error is None and summary.failed == 0


def test_reply_linked_by_its_sender_takes_the_parent_of_an_original_that_arrives_later(
    services, imap_server, box
):
    acme, _ = acme_with_ann(services)
    opp = seed(services, lambda s: records.opportunity(s, name="Deal", account=acme))
    deliver(
        services, imap_server, box, subject="early", from_=CONTACT, in_reply_to="<late@x.example>"
    )
    assert linked(services, "early")[2] == "sender-address"
    deliver(
        services,
        imap_server,
        box,
        subject="late",
        message_id="<late@x.example>",
        in_reply_to=token(services, opp),
    )
    # Rule 2 outranks rule 4: the same answer as if the original had come first.
    assert linked(services, "early") == ("Opportunity", opp.id, "replied-mail", acme.id)


def test_reply_naming_its_parent_only_in_references_gets_it_when_it_arrives(
    services, imap_server, box
):
    acme, _ = acme_with_ann(services)
    deliver(
        services,
        imap_server,
        box,
        subject="refs only",
        from_="x@stranger.example",
        references="<root@acme.example>",
    )
    assert linked(services, "refs only")[0] is None
    deliver(
        services, imap_server, box, subject="root", from_=CONTACT, message_id="<root@acme.example>"
    )
    assert linked(services, "refs only") == ("Account", acme.id, "replied-mail", acme.id)


def test_reply_whose_direct_parent_is_lost_gets_the_ancestor_that_arrives_later(
    services, imap_server, box
):
    acme, _ = acme_with_ann(services)
    deliver_all(
        services,
        imap_server,
        box,
        {"subject": "root", "from_": CONTACT, "message_id": "<root@acme.example>"},
        {
            "subject": "grandchild",
            "from_": "x@stranger.example",
            "in_reply_to": "<lost@acme.example>",
            "references": "<root@acme.example> <lost@acme.example>",
        },
    )
    assert linked(services, "grandchild") == ("Account", acme.id, "replied-mail", acme.id)


def test_reply_in_the_same_batch_with_an_earlier_date_than_its_parent(services, imap_server, box):
    lee = seed(services, lambda s: records.lead(s, addresses=["lee@lead.example"]))
    deliver_all(
        services,
        imap_server,
        box,
        {
            "subject": "parent",
            "from_": "lee@lead.example",
            "message_id": "<p@lead.example>",
            "date": datetime(2024, 1, 2, tzinfo=UTC),
        },
        {
            "subject": "skewed reply",
            "from_": CONTACT,
            "in_reply_to": "<p@lead.example>",
            "date": datetime(2024, 1, 1, tzinfo=UTC),
        },
        batch_size=10,
    )
    assert linked(services, "skewed reply") == ("Lead", lee.id, "replied-mail", None)


def test_thread_token_and_hand_made_links_are_not_revised_by_a_late_parent(
    services, imap_server, box
):
    acme_with_ann(services)
    lee = seed(services, lambda s: records.lead(s))
    deliver(
        services,
        imap_server,
        box,
        subject="tokened",
        in_reply_to="<late@x.example>",
        references=f"{token(services, lee)} <late@x.example>",
    )
    deliver(
        services, imap_server, box, subject="late", from_=CONTACT, message_id="<late@x.example>"
    )
    assert linked(services, "tokened")[:3] == ("Lead", lee.id, "thread-token")


# One batch: the import links the original first. One message a batch: the first import walks
# newest first, so the reply arrives, and opens the case, before its original.
@pytest.mark.parametrize("batch_size", [10, 1])
def test_email_to_case_opens_one_case_for_a_mail_and_its_reply(
    services, imap_server, group, batch_size
):
    deliver_all(
        services,
        imap_server,
        group,
        {"subject": "Broken", "from_": CONTACT, "message_id": "<q@acme.example>"},
        {"subject": "Re: Broken", "from_": CONTACT, "in_reply_to": "<q@acme.example>"},
        batch_size=batch_size,
    )
    assert linked(services, "Broken")[0] == linked(services, "Re: Broken")[0] == "Case"
    assert linked(services, "Re: Broken")[1] == linked(services, "Broken")[1]
    with services.session() as s:
        assert s.query(Case).count() == 1

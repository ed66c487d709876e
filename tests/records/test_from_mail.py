import pytest

from crm import settings
from crm.models import Attachment, EmailUserState, User
from crm.records.from_mail import (
    DraftError,
    PersonDraft,
    create_case,
    create_contact,
    create_lead,
    create_task,
    prefill,
)
from tests.factories import make_email
from tests.support import records


@pytest.fixture
def rep(db, make_user):
    return db.get(User, make_user("rep", ["rep@example.com"], teams=["Sales"]))


def test_prefill_splits_the_header_name(db):
    email = make_email(db, from_addr="jd@x.example", from_name="John Q Doe", cc=("pat@y.example",))
    assert prefill(db, email, "JD@x.example") == PersonDraft("John Q", "Doe", "jd@x.example")
    assert prefill(db, email, "pat@y.example") == PersonDraft("", "pat", "pat@y.example")
    assert prefill(db, email, None).address == "jd@x.example"


def test_contact_from_an_orphan_mail_becomes_its_parent(db, rep):
    email = make_email(db)
    contact = create_contact(
        db, email, rep, PersonDraft("Sam", "Sender", "sender@customer.example")
    )
    assert (email.parent_type, email.parent_id, email.link_rule) == (
        "Contact",
        contact.id,
        "created-from-mail",
    )
    assert contact.team_id == rep.teams[0].id and contact.created_by_id == rep.id


def test_contact_with_account_links_the_account_in_b2b_and_the_contact_in_b2c(db, rep):
    acme = records.account(db)
    b2b = make_email(db)
    create_contact(db, b2b, rep, PersonDraft("A", "B", ""), acme.id)
    assert (b2b.parent_type, b2b.parent_id) == ("Account", acme.id)
    settings.put(db, "b2c_mode", True)
    b2c = make_email(db)
    contact = create_contact(db, b2c, rep, PersonDraft("C", "D", ""), acme.id)
    assert (b2c.parent_type, b2c.parent_id, b2c.account_id) == ("Contact", contact.id, acme.id)


def test_a_mail_with_a_parent_keeps_it(db, rep):
    acme = records.account(db)
    email = make_email(db, parent=acme)
    create_lead(db, email, rep, PersonDraft("L", "M", "l@m.example"))
    assert (email.parent_type, email.parent_id) == ("Account", acme.id)


def test_a_lead_gets_the_address_so_the_next_mail_links_to_it(db, rep):
    from crm.records import linking

    lead = create_lead(
        db, make_email(db), rep, PersonDraft("Sam", "Sender", "Sender@Customer.example")
    )
    link = linking.find_parent(db, make_email(db), key="")
    assert (link.parent_type, link.parent_id) == ("Lead", lead.id)


def test_bad_input_is_refused_before_anything_is_made(db, rep):
    with pytest.raises(DraftError):
        create_lead(db, make_email(db), rep, PersonDraft("", " ", "a@b.example"))
    with pytest.raises(DraftError):
        create_contact(db, make_email(db), rep, PersonDraft("A", "B", "not an address"))


def test_task_copies_the_parent_and_delivers_the_mail_once(db, rep, make_user):
    colleague = make_user("colleague")  # its own session: before this one writes
    acme = records.account(db)
    email = make_email(db, parent=acme, users=[rep.id])
    create_task(db, email, rep, "Call back", colleague)
    create_task(db, email, rep, "Call again", colleague)
    states = db.query(EmailUserState).filter_by(email_id=email.id)
    assert sorted(s.user_id for s in states) == sorted([rep.id, colleague])
    task = create_task(db, email, rep, "", rep.id)
    assert (task.name, task.parent_type, task.parent_id, task.email_id) == (
        "Hello",
        "Account",
        acme.id,
        email.id,
    )
    assert db.query(EmailUserState).filter_by(email_id=email.id).count() == 2


def test_case_from_mail_takes_links_attachments_and_direct_replies(db, rep):
    acme = records.account(db)
    ann = records.contact(db, account=acme)
    email = make_email(
        db, message_id="ask@x.example", parent=ann, subject="Broken", text="It broke."
    )
    email.account_id = acme.id
    email.attachments.append(Attachment(filename="a.png", sha256="b" * 64))
    reply = make_email(db, in_reply_to="ask@x.example", parent=records.lead(db))
    unrelated = make_email(db)
    case = create_case(db, email, rep)
    assert (case.name, case.description, case.contact_id, case.account_id) == (
        "Broken",
        "It broke.",
        ann.id,
        acme.id,
    )
    assert (email.parent_type, email.parent_id, reply.parent_type, reply.parent_id) == (
        "Case",
        case.id,
        "Case",
        case.id,
    )
    assert unrelated.parent_type is None
    assert (
        db.query(Attachment).filter_by(parent_type="Case", parent_id=case.id).one().sha256
        == "b" * 64
    )

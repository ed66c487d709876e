from crm.models import User
from crm.records.people import people_for, people_on_mail
from tests.factories import make_email
from tests.support import records


def one(db, address, name="", viewer=None):
    return people_for(db, [(name, address)], viewer)[0]


def test_a_user_comes_before_any_record(db, make_user):
    shared = "shared@acme.example"
    make_user("colleague", [shared], name="Col League")
    records.contact(db, addresses=[shared])
    assert (one(db, shared).kind, one(db, shared).record_name) == ("User", "Col League")


def test_precedence_is_contact_lead_account(db):
    shared = "shared@acme.example"
    records.account(db, addresses=[shared])
    assert one(db, shared).kind == "Account"
    records.lead(db, addresses=[shared])
    assert one(db, shared).kind == "Lead"
    ann = records.contact(db, addresses=[shared])
    assert (one(db, shared).kind, one(db, shared).record_id, one(db, shared).record_name) == (
        "Contact",
        ann.id,
        "Ann Buyer",
    )


def test_matching_ignores_case(db):
    records.contact(db, addresses=["ann@acme.example"])
    assert one(db, "ANN@Acme.Example").kind == "Contact"


def test_unknown_address_gets_a_split_name(db):
    person = one(db, "jd@x.example", "Doe, John")
    assert not person.is_known and person.first_last == ("John", "Doe")
    assert one(db, "jd@x.example").first_last == ("", "jd")


def test_records_the_viewer_may_not_read_are_left_out(db, make_user):
    rep = db.get(User, make_user("rep"))
    records.contact(db, addresses=["ann@acme.example"])
    acme = records.account(db, addresses=["ann@acme.example"], assigned_user_id=rep.id)
    person = one(db, "ann@acme.example", viewer=rep)
    assert (person.kind, person.record_id) == ("Account", acme.id)


def test_people_on_mail_follow_header_order_with_roles(db):
    records.lead(db, addresses=["to@x.example"])
    email = make_email(
        db,
        from_addr="f@x.example",
        from_name="Fred Flint",
        to=("to@x.example",),
        cc=("cc@x.example",),
    )
    people = people_on_mail(db, email)
    assert [(p.role, p.address, p.kind) for p in people] == [
        ("from", "f@x.example", None),
        ("to", "to@x.example", "Lead"),
        ("cc", "cc@x.example", None),
    ]
    assert people[0].first_last == ("Fred", "Flint")

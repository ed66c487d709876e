"""The parent finder on stored mail rows (the Dovecot import path is in test_linking_import)."""

import pytest

from crm import settings
from crm.mail.threadtoken import make_message_id
from crm.records import linking
from tests.factories import make_email
from tests.support import records

KEY = "test-secret"


def token(parent):
    return make_message_id(KEY, parent.entity_type, parent.id, "crm.example").strip("<>")


def find(db, email, account=None):
    return linking.find_parent(db, email, None, account, key=KEY)


# --- rule 1: thread token ---------------------------------------------------------------


def test_thread_token_in_in_reply_to_links_its_record(db):
    opp = records.opportunity(db, account=records.account(db))
    email = make_email(db, in_reply_to=token(opp))
    assert find(db, email) == linking.Link("Opportunity", opp.id, opp.account_id, "thread-token")


def test_thread_token_deep_in_the_references_chain_is_found(db):
    lead = records.lead(db)
    email = make_email(
        db,
        in_reply_to="other@mua.example",
        references=[token(lead), "a@b.example", "other@mua.example"],
    )
    assert find(db, email).rule == "thread-token"
    assert (find(db, email).parent_type, find(db, email).parent_id) == ("Lead", lead.id)


def test_thread_token_wins_over_the_sender_address(db):
    lead = records.lead(db)
    records.contact(db, addresses=["sender@customer.example"])
    email = make_email(db, references=[token(lead)])
    assert find(db, email).parent_type == "Lead"


def test_forged_thread_token_is_ignored(db):
    acme = records.account(db, addresses=["sender@customer.example"])
    victim = records.account(db, name="Victim")
    forged = token(acme).replace(f"crm.a.{acme.id}.", f"crm.a.{victim.id}.")
    email = make_email(db, in_reply_to=forged)
    assert find(db, email) == linking.Link("Account", acme.id, acme.id, "sender-address")


def test_token_without_the_key_is_not_trusted(db):
    lead = records.lead(db)
    email = make_email(db, in_reply_to=token(lead))
    assert linking.find_parent(db, email, None, None, key="") is None


def test_the_key_defaults_to_the_app_secret_on_the_session(db, services):
    assert services.secret_key() == KEY
    lead = records.lead(db)
    email = make_email(db, in_reply_to=token(lead))
    assert linking.find_parent(db, email, None, None).parent_id == lead.id


def test_token_of_a_deleted_record_falls_through(db):
    lead = records.lead(db)
    ref = token(lead)
    db.delete(lead)
    db.flush()
    assert find(db, make_email(db, in_reply_to=ref)) is None


# --- rule 2: the replied mail -----------------------------------------------------------


def test_reply_takes_the_parent_of_the_mail_it_answers(db):
    case = records.case(db, 5, account=records.account(db))
    make_email(db, message_id="orig@x.example", parent=case)
    reply = make_email(db, in_reply_to="orig@x.example", from_addr="someone@else.example")
    assert find(db, reply) == linking.Link("Case", case.id, case.account_id, "replied-mail")


def test_nearest_replied_mail_with_a_parent_wins(db):
    old, new = records.lead(db, last="Old"), records.lead(db, last="New")
    make_email(db, message_id="first@x.example", parent=old)
    make_email(db, message_id="second@x.example", parent=new)
    reply = make_email(
        db, in_reply_to="second@x.example", references=["first@x.example", "second@x.example"]
    )
    assert find(db, reply).parent_id == new.id


def test_replied_mail_without_parent_falls_through_to_addresses(db):
    acme = records.account(db, addresses=["sender@customer.example"])
    make_email(db, message_id="orig@x.example")
    reply = make_email(db, in_reply_to="orig@x.example")
    assert find(db, reply).rule == "sender-address"
    assert find(db, reply).parent_id == acme.id


# --- rule 3: case number ----------------------------------------------------------------


def test_case_number_links_for_the_group_account_that_made_the_case(db):
    group = records.group_account(db)
    case = records.case(db, 1234, inbound=group)
    email = make_email(db, subject="Re: [#1234] Printer on fire")
    assert find(db, email, group) == linking.Link("Case", case.id, None, "case-number")


def test_case_number_of_another_group_account_is_ignored(db):
    mine, theirs = records.group_account(db), records.group_account(db, "sales@example.com")
    records.case(db, 1234, inbound=theirs)
    assert find(db, make_email(db, subject="[#1234] hi"), mine) is None


def test_case_number_is_ignored_for_accounts_that_do_not_create_cases(db):
    group = records.group_account(db, create_case=False)
    records.case(db, 77, inbound=group)
    assert find(db, make_email(db, subject="[#77] hi"), group) is None


# --- rule 4: addresses ------------------------------------------------------------------


def test_contact_with_account_links_the_account_in_b2b(db):
    acme = records.account(db)
    records.contact(db, addresses=["Sender@Customer.example"], account=acme)
    assert find(db, make_email(db)) == linking.Link("Account", acme.id, acme.id, "sender-address")


def test_contact_with_account_links_the_contact_in_b2c(db):
    settings.put(db, "b2c_mode", True)
    acme = records.account(db)
    ann = records.contact(db, addresses=["sender@customer.example"], account=acme)
    assert find(db, make_email(db)) == linking.Link("Contact", ann.id, acme.id, "sender-address")


def test_contact_without_account_links_itself(db):
    ann = records.contact(db, addresses=["sender@customer.example"])
    assert find(db, make_email(db)) == linking.Link("Contact", ann.id, None, "sender-address")


def test_contact_wins_over_an_account_and_a_lead_with_the_same_address(db):
    records.lead(db, addresses=["sender@customer.example"])
    records.account(db, name="Other", addresses=["sender@customer.example"])
    ann = records.contact(db, addresses=["sender@customer.example"])
    assert (
        find(db, make_email(db)).parent_type == "Contact"
        and find(db, make_email(db)).parent_id == ann.id
    )


def test_account_wins_over_a_lead(db):
    records.lead(db, addresses=["sender@customer.example"])
    acme = records.account(db, addresses=["sender@customer.example"])
    assert find(db, make_email(db)).parent_id == acme.id


def test_open_lead_is_linked(db):
    lee = records.lead(db, addresses=["sender@customer.example"])
    assert find(db, make_email(db)) == linking.Link("Lead", lee.id, None, "sender-address")


@pytest.mark.parametrize("b2c, expected", [(False, "Account"), (True, "Contact")])
def test_converted_lead_gives_what_it_became(db, b2c, expected):
    settings.put(db, "b2c_mode", b2c)
    acme = records.account(db)
    ann = records.contact(db, account=acme)
    records.lead(
        db,
        addresses=["sender@customer.example"],
        status="Converted",
        converted_contact_id=ann.id,
        converted_account_id=acme.id,
    )
    link = find(db, make_email(db))
    assert (link.parent_type, link.parent_id) == (
        expected,
        acme.id if expected == "Account" else ann.id,
    )


def test_converted_lead_with_nothing_to_show_for_it_is_not_linked(db):
    records.lead(db, addresses=["sender@customer.example"], status="Converted")
    assert find(db, make_email(db)) is None


def test_our_own_users_are_skipped_for_the_recipient(db, make_user):
    make_user("rep", ["rep@example.com"])
    acme = records.account(db, addresses=["buyer@acme.example"])
    sent = make_email(db, from_addr="rep@example.com", to=("buyer@acme.example",))
    assert find(db, sent) == linking.Link("Account", acme.id, acme.id, "recipient-address")


def test_reply_to_comes_before_to(db):
    from crm.models import EmailRecipient
    from crm.records import addressbook

    lee = records.lead(db, addresses=["replies@lead.example"])
    records.account(db, addresses=["rep@example.com"])
    email = make_email(db, from_addr="noreply@tool.example")
    row = addressbook.find_or_create(db, ["replies@lead.example"])["replies@lead.example"]
    email.recipients.append(EmailRecipient(position=9, role="reply_to", address_id=row.id))
    db.flush()
    assert find(db, email) == linking.Link("Lead", lee.id, None, "reply-to-address")


def test_unknown_addresses_leave_the_mail_unlinked(db):
    assert find(db, make_email(db)) is None


# --- setting a parent and replies ---------------------------------------------------------


def test_set_parent_by_hand_passes_it_to_replies_without_parent(db):
    acme, other = records.account(db), records.account(db, name="Other")
    root = make_email(db, message_id="root@x.example")
    child = make_email(
        db,
        message_id="child@x.example",
        in_reply_to="root@x.example",
        references=["root@x.example"],
    )
    grandchild = make_email(
        db, in_reply_to="child@x.example", references=["root@x.example", "child@x.example"]
    )
    linked = make_email(db, in_reply_to="root@x.example", parent=other)
    linking.set_parent(db, root, "Account", acme.id)
    assert (root.parent_id, root.link_rule, root.account_id) == (acme.id, "manual", acme.id)
    assert child.parent_id == grandchild.parent_id == acme.id
    assert child.link_rule == "replied-mail"
    assert linked.parent_id == other.id


def test_set_parent_by_hand_reaches_replies_whose_direct_parent_is_missing(db):
    lee = records.lead(db)
    root = make_email(db, message_id="root@x.example")
    orphan = make_email(
        db, in_reply_to="missing@x.example", references=["root@x.example", "missing@x.example"]
    )
    linking.set_parent(db, root, "Lead", lee.id)
    assert (orphan.parent_type, orphan.parent_id) == ("Lead", lee.id)


def test_clearing_a_parent_removes_the_link(db):
    acme = records.account(db)
    email = make_email(db, parent=acme)
    linking.set_parent(db, email, None, None)
    assert (email.parent_type, email.parent_id, email.account_id, email.link_rule) == (
        None,
        None,
        None,
        None,
    )


def test_set_parent_to_a_missing_record_fails(db):
    with pytest.raises(LookupError):
        linking.set_parent(db, make_email(db), "Account", 999999)


def test_reply_arriving_before_its_parent_gets_the_parent_later(db):
    lee = records.lead(db)
    reply = make_email(
        db,
        in_reply_to="late@x.example",
        references=["late@x.example"],
        from_addr="x@unknown.example",
    )
    assert find(db, reply) is None
    original = make_email(db, message_id="late@x.example", in_reply_to=token(lee))
    linking.apply_link(db, original, find(db, original))
    assert (reply.parent_type, reply.parent_id, reply.link_rule) == ("Lead", lee.id, "replied-mail")


def test_references_matching_does_not_confuse_similar_ids(db):
    lee = records.lead(db)
    other = make_email(db, references=["1root@x.example"])
    root = make_email(db, message_id="root@x.example")
    linking.set_parent(db, root, "Lead", lee.id)
    assert other.parent_type is None


def test_mail_derives_its_account_from_a_contact_parent(db):
    acme = records.account(db)
    ann = records.contact(db, account=acme)
    email = make_email(db)
    linking.set_parent(db, email, "Contact", ann.id)
    assert email.account_id == acme.id


def test_thread_root_is_the_first_reference_else_in_reply_to(db):
    assert make_email(db, in_reply_to="b@x.example", references=["a@x.example"]).thread_root == (
        "a@x.example"
    )
    assert make_email(db, in_reply_to="b@x.example").thread_root == "b@x.example"
    assert make_email(db).thread_root is None


def test_import_relinks_a_reply_linked_by_address_once_an_ancestor_has_a_parent(db):
    lee = records.lead(db)
    records.account(db, addresses=["sender@customer.example"])
    reply = make_email(db, references=["root@x.example", "lost@x.example"])
    linking.apply_link_columns(reply, find(db, reply))
    assert reply.link_rule == "sender-address"
    root = make_email(db, message_id="root@x.example", from_addr="x@unknown.example")
    linking.apply_link_columns(root, linking.make_link(db, "Lead", lee.id, "thread-token"))
    assert linking.propagate_to_orphan_replies_of(db, [root]) == 1
    assert (reply.parent_type, reply.parent_id, reply.link_rule) == ("Lead", lee.id, "replied-mail")
    assert find(db, reply) == linking.Link("Lead", lee.id, None, "replied-mail")

"""The record of a mail being written (crm.outbound.parents): the linking panel's types, its
search, and the access rule: only records the user may read are found or chosen."""

from __future__ import annotations

import pytest

from crm import settings
from crm.models import User
from crm.outbound import parents
from crm.outbound.parents import ParentRefused
from tests.support import records


@pytest.fixture
def accounts(db, rep, make_user):
    other = make_user("other")
    mine = records.account(db, "Électricité du Rhône SA", assigned_user_id=rep.id)
    theirs = records.account(db, "Électricité de Lyon", assigned_user_id=other)
    db.commit()
    return mine, theirs


def test_the_search_finds_folded_names_of_readable_records_only(db, rep, accounts):
    found = parents.search(db, rep, "Account", "elec")
    assert [a.name for a in found.items] == ["Électricité du Rhône SA"]


def test_choosing_a_readable_record_answers_it(db, rep, accounts):
    assert parents.choose(db, rep, "Account", accounts[0].id) is accounts[0]


@pytest.mark.parametrize(
    ("parent_type", "which", "message"),
    [
        ("Account", 1, "That account is not one you may open."),
        ("Account", None, "No account was chosen: pick one from the search results."),
        ("Task", 0, "A mail can be linked to: Account, Contact, Lead, Opportunity, Case."),
        ("", 0, "A mail can be linked to:"),
    ],
)
def test_what_cannot_be_chosen_says_why(db, rep, accounts, parent_type, which, message):
    record_id = accounts[which].id if which is not None else None
    with pytest.raises(ParentRefused, match=message):
        parents.choose(db, rep, parent_type, record_id)


def test_an_admin_may_choose_any_record(db, make_user, accounts):
    admin = db.get(User, make_user("boss", admin=True))
    assert parents.choose(db, admin, "Account", accounts[1].id) is accounts[1]


def test_b2c_mode_offers_no_account(db, rep, accounts):
    settings.put(db, "b2c_mode", True)
    assert parents.offered_types(db) == ("Contact", "Lead", "Opportunity", "Case")
    with pytest.raises(ParentRefused):
        parents.search(db, rep, "Account", "")


def test_the_name_shown_is_a_readable_records_only(db, rep, accounts):
    assert parents.name_of(db, rep, "Account", accounts[0].id) == "Électricité du Rhône SA"
    assert parents.name_of(db, rep, "Account", accounts[1].id) == "a record you cannot open"
    assert parents.name_of(db, rep, "Account", 999999) == ""
    assert parents.name_of(db, rep, None, None) == ""

"""The record page's opted-out box means what the unsubscribe page's buttons mean: ticking it
ends an earlier subscribing again, unticking an opted-out address dates the subscribing again,
and leaving it as it is (or setting only 'invalid') changes no date."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from werkzeug.datastructures import MultiDict

from crm.campaigns import opt_out
from crm.db import utcnow
from crm.models import EmailAddress, User
from crm.records import addressbook, records

KIND = records.KINDS["contacts"]
EARLIER = datetime(2026, 1, 2, 3, 4, 5)


@pytest.fixture
def rep(db, make_user):
    return db.get(User, make_user("rep", teams=["Sales"]))


@pytest.fixture
def holder(db, rep):
    """A contact holding one address, and that address."""
    form = MultiDict({"last_name": "Lee", "emails": "lee@example.com"})
    contact = records.create_record(
        db, KIND, records.clean(db, KIND.model, KIND.fields, form, rep), rep
    )
    db.flush()
    return contact, addressbook.addresses_of(db, "Contact", contact.id)[0].address


def _flags(db, contact, address: EmailAddress, *, opted_out: bool, invalid: bool = False):
    found = records.set_address_flags(
        db, KIND, contact, address.id, opted_out=opted_out, invalid=invalid
    )
    assert found is address
    db.commit()
    db.expire_all()
    found = db.get(EmailAddress, address.id)
    return found.opted_out, found.invalid, found.subscribed_again_at


def test_ticking_opted_out_ends_an_earlier_subscribing_again(db, holder):
    contact, address = holder
    address.opted_out, address.subscribed_again_at = False, EARLIER
    assert _flags(db, contact, address, opted_out=True) == (True, False, None)


def test_unticking_an_opted_out_address_dates_the_subscribing_again(db, holder):
    contact, address = holder
    address.opted_out = True
    before = utcnow()
    opted_out, invalid, again = _flags(db, contact, address, opted_out=False)
    assert (opted_out, invalid) == (False, False)
    assert before - timedelta(seconds=1) <= again <= utcnow() + timedelta(seconds=1)


def test_unticking_again_keeps_the_date(db, holder):
    contact, address = holder
    address.opted_out, address.subscribed_again_at = False, EARLIER
    assert _flags(db, contact, address, opted_out=False) == (False, False, EARLIER)


def test_setting_only_invalid_leaves_the_subscription_alone(db, holder):
    contact, address = holder
    address.opted_out, address.subscribed_again_at = False, EARLIER
    assert _flags(db, contact, address, opted_out=False, invalid=True) == (False, True, EARLIER)
    address.opted_out, address.subscribed_again_at = True, None
    assert _flags(db, contact, address, opted_out=True, invalid=False) == (True, False, None)


def _dated(value: datetime | None) -> str:
    return "none" if value is None else "earlier" if value == EARLIER else "now"


@pytest.mark.parametrize("opted_out", [True, False])
@pytest.mark.parametrize("start", [(False, None), (False, EARLIER), (True, None)])
def test_the_record_page_agrees_with_the_unsubscribe_page(db, holder, start, opted_out):
    """From the same state, the record page's box and the unsubscribe page's buttons (opt
    out, subscribe again) leave the same flag and the same date: none, kept, or now."""
    contact, address = holder
    address.opted_out, address.subscribed_again_at = start
    db.commit()
    on_record = _flags(db, contact, address, opted_out=opted_out)
    address = db.get(EmailAddress, address.id)
    address.opted_out, address.subscribed_again_at = start
    if opted_out:
        opt_out.opt_out(db, opt_out.Token(opt_out.UNSUBSCRIBE, address.id, 0), address)
    else:
        opt_out.subscribe_again(db, address)
    db.commit()
    db.expire_all()
    by_link = db.get(EmailAddress, address.id)
    assert (on_record[0], _dated(on_record[2])) == (
        by_link.opted_out,
        _dated(by_link.subscribed_again_at),
    )

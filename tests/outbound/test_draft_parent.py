"""A draft's record (crm.outbound.drafts.save): one the writer may read, or one that came with
mail they may read (a reply, a forward, their own draft); never a stranger's record named by a
hand-made form, which would put the mail into that record's History."""

from __future__ import annotations

import pytest

from crm.outbound.drafts import DraftError, DraftInput, save
from tests.factories import make_email
from tests.support import records


@pytest.fixture
def theirs(db, make_user):
    other = make_user("otto", ["otto@example.com"])
    account = records.account(db, "Otto's customer", assigned_user_id=other)
    db.commit()
    return account


def _draft(parent) -> DraftInput:
    return DraftInput(
        from_address="rep@example.com",
        to="ann@customer.example",
        subject="Offer",
        body="<p>Hello</p>",
        parent_type="Account",
        parent_id=parent.id,
    )


def test_a_record_the_writer_may_read_is_kept(db, services, rep):
    mine = records.account(db, "Rep's customer", assigned_user_id=rep.id)
    email = save(db, services.blobs, rep, _draft(mine))
    assert (email.parent_type, email.parent_id) == ("Account", mine.id)


def test_a_strangers_record_named_by_a_form_is_refused(db, services, rep, theirs):
    with pytest.raises(DraftError) as refused:
        save(db, services.blobs, rep, _draft(theirs))
    assert "not one you may open" in refused.value.errors["parent"]


def test_a_reply_keeps_the_record_of_the_mail_it_answers(db, services, rep, theirs):
    """rep reads a mail linked to Otto's customer (it came to rep's mailbox): the reply keeps
    that record, though rep may not open the record itself."""
    make_email(db, users=[rep.id], parent=theirs)
    email = save(db, services.blobs, rep, _draft(theirs))
    assert (email.parent_type, email.parent_id) == ("Account", theirs.id)

import pytest

from crm import settings
from crm.models import MailAccount, User
from tests.support.sending import smtp_only_account


@pytest.fixture
def rep(db, make_user):
    user_id = make_user("rep", ["rep@example.com"], teams=["Sales"], name="Rita Rep")
    return db.get(User, user_id)


@pytest.fixture
def smtp_account(db, services, rep, smtp_server):
    """rep's personal SMTP-only account on the loopback test server; mail leaves at once."""
    account = smtp_only_account(
        db, services, rep.id, "rep@example.com", smtp_server.host, smtp_server.port
    )
    settings.put(db, "undo_send_seconds", 0)
    db.commit()
    return db.get(MailAccount, account.id)

import pytest

from crm import settings
from crm.accounts import manage
from crm.models import MailAccount, User


@pytest.fixture
def rep(db, make_user):
    user_id = make_user("rep", ["rep@example.com"], teams=["Sales"], name="Rita Rep")
    return db.get(User, user_id)


@pytest.fixture
def smtp_account(db, services, rep, smtp_server):
    """rep's personal SMTP-only account on the loopback test server; mail leaves at once."""
    account = manage.create_account(
        db,
        services.secret_box,
        user_id=rep.id,
        email="rep@example.com",
        host="",
        port=993,
        security="ssl",
        login="",
        password="",
        smtp={
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "smtp_security": "none",
            "smtp_auth": False,
        },
    )
    settings.put(db, "undo_send_seconds", 0)
    db.commit()
    return db.get(MailAccount, account.id)

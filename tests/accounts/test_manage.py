"""Creating and editing mail accounts."""

from sqlalchemy import select

from crm.accounts.manage import AccountError, create_account
from crm.models import MailAccount, Notification


def _account(db, services, user_id, **kw):
    account = create_account(
        db,
        services.secret_box,
        user_id=user_id,
        email="a@example.com",
        host="127.0.0.1",
        port=143,
        security="none",
        login="a",
        password="pw",
        **kw,
    )
    db.flush()
    return account


def _notes(db):
    return list(db.scalars(select(Notification).where(Notification.kind == "account_error")))


def test_admin_cap_on_personal_accounts(db, services, make_user):
    import pytest

    from crm import settings

    user = make_user("rep")
    settings.put(db, "max_personal_accounts", 1)
    _account(db, services, user)
    with pytest.raises(AccountError, match="at most 1"):
        _account(db, services, user)
    assert db.scalar(select(MailAccount.id).where(MailAccount.is_group.is_(True))) is None

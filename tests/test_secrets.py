import pytest

from crm.accounts.manage import imap_password, set_imap_password
from crm.models import MailAccount
from crm.secrets import SecretBox, SecretError, new_key


def test_seal_and_open_round_trip():
    box = SecretBox(new_key())
    assert box.open(box.seal("pässword", "t:1:f"), "t:1:f") == "pässword"


def test_ciphertext_is_bound_to_its_row_and_field():
    box = SecretBox(new_key())
    sealed = box.seal("secret", "mail_accounts:a:imap_password")
    with pytest.raises(SecretError):
        box.open(sealed, "mail_accounts:b:imap_password")


def test_other_key_cannot_open():
    sealed = SecretBox(new_key()).seal("secret", "x")
    with pytest.raises(SecretError):
        SecretBox(new_key()).open(sealed, "x")


def test_account_password_is_not_stored_in_clear(services, db):
    account = MailAccount(email_address="a@example.com")
    set_imap_password(account, services.secret_box, "hunter2-password")
    assert b"hunter2" not in account.imap_password_enc
    assert imap_password(account, services.secret_box) == "hunter2-password"
    other = MailAccount(email_address="b@example.com", imap_password_enc=account.imap_password_enc)
    with pytest.raises(SecretError):
        imap_password(other, services.secret_box)


def test_key_lives_outside_the_database_in_a_private_file(services, config):
    services.secret_box  # noqa: B018 - creates the key file
    key_file = config.instance_dir / "secrets.key"
    assert key_file.stat().st_mode & 0o777 == 0o600

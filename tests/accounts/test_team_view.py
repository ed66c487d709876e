"""Team members see their group account's status read-only; others still get 404."""

from sqlalchemy import select

from crm.models import MailAccount, User
from tests.support import records


def _group(db, make_user):
    member = make_user("member", ["member@example.com"], teams=["Support"])
    stranger = make_user("stranger", ["stranger@example.com"], teams=["Sales"])
    team = db.get(User, member).teams[0]
    account = records.group_account(db)
    account.imap_host, account.teams = "imap.example.com", [team]
    account.last_error = "authentication failed"
    db.commit()
    return account.id, member, stranger


def test_a_team_member_reads_the_status_but_cannot_act(client, db, make_user):
    account_id, _member, _stranger = _group(db, make_user)
    client.login("member")
    listing = client.get("/accounts/").get_data(as_text=True)
    assert "My teams' group accounts" in listing and f"/accounts/{account_id}" in listing
    assert f"/accounts/{account_id}/edit" not in listing
    page = client.get(f"/accounts/{account_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "support@example.com" in text and "read-only" in text
    assert "Fetch now" not in text and "Delete" not in text and ">Reset<" not in text
    status = client.get(f"/accounts/{account_id}/status", headers={"HX-Request": "true"})
    assert status.status_code in (200, 286) and "Fetch now" not in status.get_data(as_text=True)
    # Acting stays refused.
    assert client.get(f"/accounts/{account_id}/edit").status_code == 404
    assert client.post(f"/accounts/{account_id}/fetch").status_code == 404
    assert db.scalar(select(MailAccount.id).where(MailAccount.id == account_id)) == account_id


def test_someone_outside_the_team_still_gets_404(client, db, make_user):
    account_id, _member, _stranger = _group(db, make_user)
    client.login("stranger")
    assert client.get(f"/accounts/{account_id}").status_code == 404
    assert f"/accounts/{account_id}" not in client.get("/accounts/").get_data(as_text=True)

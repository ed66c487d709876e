"""The import pipeline against a real Dovecot: exactly once, incremental, never altering the server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from crm.inbound.sync import Budget, sync_account
from crm.models import Email, EmailLocation, EmailUserState, FolderCursor, MailAccount, Notification
from tests.support.mailboxes import fetch, make_account, raw_message


def _count(db, model, **where):
    stmt = select(func.count()).select_from(model)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    db.rollback()  # end the read transaction: SQLite would keep showing its snapshot
    return db.scalar(stmt)


def _identities(db):
    db.rollback()
    return sorted(db.scalars(select(Email.message_id)))


def test_first_sync_imports_every_message_once(services, db, make_user, imap_server):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    for i in range(7):
        imap_server.append(box, raw_message(subject=f"m{i}", message_id=f"<m{i}@test.example>"))
    account = make_account(services, uid, imap_server, box)
    summary = fetch(services, account, batch_size=3)
    assert (summary.imported, summary.failed, summary.error) == (7, 0, None)
    assert _identities(db) == sorted(f"m{i}@test.example" for i in range(7))
    assert _count(db, EmailUserState, user_id=uid) == 7
    assert _count(db, EmailLocation) == 7


def test_second_sync_fetches_only_new_mail(services, db, make_user, imap_server):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw_message(message_id="<a@test.example>"))
    account = make_account(services, uid, imap_server, box)
    fetch(services, account)
    again = fetch(services, account)
    assert (again.seen, again.imported) == (0, 0)
    imap_server.append(box, raw_message(message_id="<b@test.example>"))
    third = fetch(services, account)
    assert (third.seen, third.imported) == (1, 1)
    assert _identities(db) == ["a@test.example", "b@test.example"]


def test_fetching_never_changes_flags_on_the_server(services, make_user, imap_server):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw_message(message_id="<unseen@test.example>"))
    imap_server.append(box, raw_message(message_id="<seen@test.example>"), flags="\\Seen")
    before = imap_server.flags(box)
    fetch(services, make_account(services, uid, imap_server, box))
    after = imap_server.flags(box)
    strip = lambda flags: {k: v.replace("\\Recent", "").strip() for k, v in flags.items()}
    assert strip(after) == strip(before)
    assert imap_server.uids(box) == [1, 2]


def test_seen_flag_on_server_imports_as_read(services, db, make_user, imap_server):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw_message(message_id="<unseen@test.example>"))
    imap_server.append(box, raw_message(message_id="<seen@test.example>"), flags="\\Seen")
    fetch(services, make_account(services, uid, imap_server, box))
    read = dict(
        db.execute(
            select(Email.message_id, EmailUserState.is_read).join(
                EmailUserState, EmailUserState.email_id == Email.id
            )
        ).all()
    )
    assert read == {"unseen@test.example": False, "seen@test.example": True}


def test_fetch_since_limits_the_first_sync(services, db, make_user, imap_server):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    old = (datetime.now(UTC) - timedelta(days=400)).timestamp()
    imap_server.append(box, raw_message(message_id="<old@test.example>"), date=old)
    imap_server.append(box, raw_message(message_id="<new@test.example>"))
    account = make_account(services, uid, imap_server, box, since=date.today() - timedelta(days=30))
    fetch(services, account)
    assert _identities(db) == ["new@test.example"]


def test_mail_from_own_address_in_sent_folder_shows_as_sent(services, db, make_user, imap_server):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(
        box,
        raw_message(
            from_="Rep <REP@example.com>", to="c@customer.example", message_id="<out@test.example>"
        ),
        folder="Sent",
    )
    imap_server.append(box, raw_message(message_id="<in@test.example>"))
    account = make_account(services, uid, imap_server, box, folders=("INBOX", "Sent"))
    fetch(services, account)
    states = dict(
        db.execute(
            select(Email.message_id, EmailUserState.is_outgoing).join(
                EmailUserState, EmailUserState.email_id == Email.id
            )
        ).all()
    )
    assert states == {"out@test.example": True, "in@test.example": False}
    assert (
        db.scalar(select(Email.status).where(Email.message_id == "out@test.example")) == "Archived"
    )


def test_two_accounts_sharing_a_message_store_one_email(services, db, make_user, imap_server):
    ann = make_user("ann", ["ann@example.com"])
    bob = make_user("bob", ["bob@example.com"])
    raw = raw_message(to="ann@example.com, bob@example.com", message_id="<shared@test.example>")
    box_a, box_b = imap_server.new_user(), imap_server.new_user()
    imap_server.append(box_a, raw)
    imap_server.append(box_b, raw)
    fetch(services, make_account(services, ann, imap_server, box_a))
    fetch(services, make_account(services, bob, imap_server, box_b))
    assert _count(db, Email) == 1
    assert _count(db, EmailUserState) == 2
    assert _count(db, EmailLocation) == 2


def test_mail_to_a_colleague_reaches_their_inbox_too(services, db, make_user, imap_server):
    ann = make_user("ann", ["ann@example.com"])
    bob = make_user("bob", ["Bob@Example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw_message(to="ann@example.com", cc="bob@example.com"))
    fetch(services, make_account(services, ann, imap_server, box))
    users = set(db.scalars(select(EmailUserState.user_id)))
    assert users == {ann, bob}


def test_same_message_in_two_folders_is_one_email_two_locations(
    services, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    raw = raw_message(message_id="<twice@test.example>")
    imap_server.append(box, raw)
    imap_server.append(box, raw, folder="Archive")
    fetch(services, make_account(services, uid, imap_server, box, folders=("INBOX", "Archive")))
    assert _count(db, Email) == 1
    assert _count(db, EmailLocation) == 2
    assert _count(db, EmailUserState) == 1


def test_message_without_message_id_is_deduplicated_by_header_hash(
    services, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    raw = raw_message(message_id=False, subject="no id")
    imap_server.append(box, raw)
    imap_server.append(box, raw, folder="Archive")
    fetch(services, make_account(services, uid, imap_server, box, folders=("INBOX", "Archive")))
    identities = list(db.scalars(select(Email.identity)))
    assert len(identities) == 1 and identities[0].startswith("hash:")


def test_uidvalidity_change_relists_without_duplicates_and_keeps_links(
    services, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    for i in range(3):
        imap_server.append(box, raw_message(message_id=f"<v{i}@test.example>"), folder="Projects")
    account = make_account(services, uid, imap_server, box, folders=("Projects",))
    fetch(services, account)
    email = db.scalars(select(Email).where(Email.message_id == "v0@test.example")).one()
    email.parent_type, email.parent_id, email.link_rule = "Account", 42, "manual"
    db.commit()
    # Recreate the folder: same messages, new UIDVALIDITY, plus one new message.
    conn = imap_server.connect(box)
    conn.delete('"Projects"')
    conn.logout()
    for i in range(4):
        imap_server.append(box, raw_message(message_id=f"<v{i}@test.example>"), folder="Projects")
    summary = fetch(services, account)
    assert summary.imported == 1
    assert _identities(db) == [f"v{i}@test.example" for i in range(4)]
    kept = db.scalars(select(Email).where(Email.message_id == "v0@test.example")).one()
    assert (kept.parent_type, kept.parent_id) == ("Account", 42)
    cursor = db.scalars(select(FolderCursor)).one()
    assert {loc.uidvalidity for loc in db.scalars(select(EmailLocation))} == {cursor.uidvalidity}
    assert _count(db, EmailLocation) == 4


def test_bounded_job_stops_and_the_next_one_resumes_newest_first(
    services, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    base = datetime.now(UTC) - timedelta(days=10)
    imap_server.append_many(
        box,
        [
            raw_message(message_id=f"<b{i}@test.example>", date=base + timedelta(hours=i))
            for i in range(10)
        ],
    )
    account = make_account(services, uid, imap_server, box)
    first = sync_account(services, account, Budget(batch_size=3, max_batches=1))
    assert (first.imported, first.done) == (3, False)
    assert first.remaining > 0
    assert _identities(db) == ["b7@test.example", "b8@test.example", "b9@test.example"]
    rest = fetch(services, account, batch_size=3)
    assert rest.imported == 7 and len(_identities(db)) == 10


def test_account_is_never_synced_twice_at_once(services, db, make_user, imap_server):
    from crm.inbound.claims import claim

    uid = make_user("rep", ["rep@example.com"])
    account = make_account(services, uid, imap_server, imap_server.new_user())
    with services.session() as s:
        assert claim(s, account)
    assert sync_account(services, account).busy


def test_a_sync_that_lost_its_claim_commits_no_more_and_leaves_the_new_claim_alone(
    services, db, make_user, imap_server
):
    """A sync stalled past its lease while another took the account over (issue 14): its next
    batch is rolled back, not stored beside the other sync's, and the other keeps its claim."""
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append_many(box, [raw_message(message_id=f"<l{i}@test.example>") for i in range(9)])
    account = make_account(services, uid, imap_server, box)
    taken_at = datetime(2030, 1, 1)

    def taken_over(_summary):  # after the first batch's commit, another worker claims it
        with services.session() as s:
            s.get(MailAccount, account).sync_claimed_at = taken_at

    summary = sync_account(services, account, Budget(batch_size=3), progress=taken_over)
    assert summary.busy and not summary.done and summary.error is None
    assert len(_identities(db)) == 3
    held = db.get(MailAccount, account)
    assert (held.sync_state, held.sync_claimed_at) == ("running", taken_at)


def test_wrong_password_is_recorded_in_plain_words(services, db, make_user, imap_server):
    from crm.accounts.manage import set_imap_password

    uid = make_user("rep", ["rep@example.com"])
    account_id = make_account(services, uid, imap_server, imap_server.new_user())
    with services.session() as s:
        set_imap_password(s.get(MailAccount, account_id), services.secret_box, "wrong")
    summary = sync_account(services, account_id)
    assert summary.error == "authentication failed"
    db.rollback()
    account = db.get(MailAccount, account_id)
    assert account.last_error == "authentication failed" and account.sync_state == "idle"


def test_unreachable_host_is_recorded(services, db, make_user, imap_server):
    from tests.support.dovecot import free_port

    uid = make_user("rep", ["rep@example.com"])
    account_id = make_account(services, uid, imap_server, "nobody", imap_port=free_port())
    assert sync_account(services, account_id).error == "host unreachable"


def test_historical_mail_never_notifies_and_new_mail_notifies_once_grouped(
    services, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    old = datetime.now(UTC) - timedelta(days=30)
    imap_server.append(box, raw_message(message_id="<old@test.example>", date=old))
    imap_server.append(box, raw_message(message_id="<new1@test.example>"))
    imap_server.append(box, raw_message(message_id="<new2@test.example>"))
    account = make_account(services, uid, imap_server, box)
    fetch(services, account)
    notes = list(db.scalars(select(Notification).where(Notification.kind == "new_mail")))
    assert len(notes) == 1 and notes[0].data["count"] == 2
    assert "email_id" not in notes[0].data  # several mails: the notification opens the Inbox
    imap_server.append(box, raw_message(message_id="<new3@test.example>"))
    fetch(services, account)
    db.rollback()
    latest = db.scalars(select(Notification).order_by(Notification.id.desc())).first()
    new3 = db.scalar(select(Email.id).where(Email.message_id == "new3@test.example"))
    assert (latest.text, latest.data["email_id"]) == ("1 new mail", new3)


def test_oversized_message_is_imported_header_only_with_a_note(
    services, db, make_user, imap_server
):
    from crm import settings

    uid = make_user("rep", ["rep@example.com"])
    with services.session() as s:
        settings.put(s, "max_message_bytes", 2000)
    box = imap_server.new_user()
    imap_server.append(
        box, raw_message(subject="big", body="x" * 5000 + "\n", message_id="<big@test.example>")
    )
    fetch(services, make_account(services, uid, imap_server, box))
    email = db.scalars(select(Email)).one()
    assert email.subject == "big" and email.body_text == ""
    assert any("only its headers" in p for p in email.problems)
    assert services.blobs.exists(email.raw_sha256)


def test_malformed_messages_are_stored_with_problems_and_never_stop_the_batch(
    services, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    bad = [
        b"this is not a mail at all\r\n",
        b"Subject: =?x-unknown?B?AAAA?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe\x00bad\r\n",
        b"Subject: nul\x00byte\r\nMessage-ID: <nul@test.example>\r\n\r\nbody\x00with nul\r\n",
        b"Subject: deep\r\nMessage-ID: <deep@test.example>\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
        + b"".join(
            f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n".encode()
            for i in range(60)
        )
        + b"--b60\r\nContent-Type: text/plain\r\n\r\ndeepest\r\n",
    ]
    for raw in bad:
        imap_server.append(box, raw)
    imap_server.append(box, raw_message(message_id="<fine@test.example>"))
    summary = fetch(services, make_account(services, uid, imap_server, box))
    assert (summary.imported, summary.failed) == (5, 0)
    nul = db.scalars(select(Email).where(Email.message_id == "nul@test.example")).one()
    assert "\x00" not in nul.subject and "\x00" not in nul.body_text


def test_mail_ignored_by_a_body_filter_leaves_no_blob_behind(services, db, make_user, imap_server):
    import hashlib

    from crm.models import EmailFilter

    uid = make_user("rep", ["rep@example.com"])
    db.add(EmailFilter(scope="global", action="ignore", body_any=["unsubscribe now"]))
    db.commit()
    box = imap_server.new_user()
    spam = raw_message(body="Great offer. Unsubscribe now.\n", message_id="<spam@test.example>")
    imap_server.append_many(
        box, [spam] + [raw_message(message_id=f"<k{i}@test.example>") for i in range(4)]
    )
    summary = fetch(services, make_account(services, uid, imap_server, box), batch_size=2)
    assert (summary.imported, summary.skipped) == (4, 1)
    stored = imap_server.connect(box)
    stored.select("INBOX", readonly=True)
    _typ, data = stored.uid("FETCH", "1", "(BODY.PEEK[])")
    stored.logout()
    assert not services.blobs.exists(hashlib.sha256(data[0][1]).hexdigest())
    assert "spam@test.example" not in _identities(db)


def test_tls_modes_check_the_certificate(services, db, make_user, imap_server, config):
    """SSL and STARTTLS verify the server certificate; an admin-provided CA makes it trusted."""
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw_message(message_id="<tls@test.example>"))
    ssl_account = make_account(
        services, uid, imap_server, box, imap_security="ssl", imap_port=imap_server.ssl_port
    )
    assert sync_account(services, ssl_account).error.startswith("secure connection failed")
    config.mail_ca_file = str(imap_server.dir / "ssl" / "cert.pem")
    assert fetch(services, ssl_account).imported == 1
    starttls = make_account(services, uid, imap_server, box, imap_security="starttls")
    summary = fetch(services, starttls)
    # The same message through a second account: already stored, so one more location only.
    assert (summary.error, summary.seen, summary.imported, summary.duplicates) == (None, 1, 0, 1)


def test_two_accounts_importing_the_same_mail_at_once_store_it_once(
    services, db, make_user, imap_server
):
    """Races on the same Message-ID between two syncs end in one Email and two states."""
    import threading

    ann = make_user("ann", ["ann@example.com"])
    bob = make_user("bob", ["bob@example.com"])
    raws = [
        raw_message(to="ann@example.com, bob@example.com", message_id=f"<race{i}@test.example>")
        for i in range(40)
    ]
    accounts = []
    for owner in (ann, bob):
        box = imap_server.new_user()
        imap_server.append_many(box, raws)
        accounts.append(make_account(services, owner, imap_server, box))
    results = {}
    threads = [
        threading.Thread(target=lambda a=a: results.update({a: fetch(services, a, batch_size=5)}))
        for a in accounts
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r.error is None and r.failed == 0 for r in results.values())
    assert _count(db, Email) == 40
    assert _count(db, EmailUserState) == 80
    assert _count(db, EmailLocation) == 80

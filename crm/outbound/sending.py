"""Delivery: take due outbox rows, send them over one SMTP connection per account, record it.

One commit per message: the outcome of one mail and the "data" phase of the next go to the
database together (as prebuilt statements: see _Delivered), and the phase is committed before the server sees the message (see
crm.outbound.outbox for why). A connection that breaks is opened again for the next mail.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, load_only, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from crm.accounts import manage
from crm.db import utcnow
from crm.mail.compose import Mailbox, OutgoingMessage, to_bytes
from crm.mail.errors import MailError
from crm.mail.smtp import (
    Delivery,
    SmtpConnection,
    SmtpPermanent,
    SmtpTemporary,
    SmtpUnknown,
)
from crm.mailbox.notifications import notify
from crm.models import Email, EmailAddress, EmailAddressLink, EmailUserState, MailAccount
from crm.models.mail import STATUS_SENT
from crm.models.outbox import SENT, OutboxEntry, OutboxRecipient
from crm.outbound import outbox
from crm.outbound.message import random_message_id

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    entry_id: int
    email_id: int
    state: str
    reply: str
    refused: list[tuple[str, int, str]] = field(default_factory=list)


def deliver_all_due(services, ssl_context=None, limit: int = 100) -> list[Outcome]:
    """Send everything that is due, batch after batch, over connections kept open from one
    batch to the next (a job and `crm outbox run` drain the outbox this way)."""
    outcomes: list[Outcome] = []
    connections: dict[int, SmtpConnection] = {}
    try:
        while batch := deliver_due(
            services, limit=limit, ssl_context=ssl_context, connections=connections
        ):
            outcomes += batch
    finally:
        for conn in connections.values():
            _close(conn)
    return outcomes


def deliver_due(
    services, ids=None, limit: int = 100, ssl_context=None, connections: dict | None = None
) -> list[Outcome]:
    """Send what is due now (or only `ids` of it); returns each mail's outcome. Connections
    are opened and closed here, or taken from and left in `connections` (account id ->
    open connection) for the caller to reuse and close."""
    claim = uuid.uuid4().hex
    with services.session() as session:
        taken = outbox.take_due(session, utcnow(), limit=limit, ids=ids, claim=claim)
        accounts = dict(
            session.execute(
                select(OutboxEntry.id, OutboxEntry.mail_account_id).where(OutboxEntry.id.in_(taken))
            ).all()
        )
    groups: dict[int | None, list[int]] = defaultdict(list)
    for entry_id in taken:
        groups[accounts.get(entry_id)].append(entry_id)
    outcomes: list[Outcome] = []
    for account_id, entry_ids in groups.items():
        outcomes += _deliver_group(services, account_id, entry_ids, ssl_context, claim, connections)
    return outcomes


def _deliver_group(
    services, account_id, entry_ids, ssl_context, claim, connections=None
) -> list[Outcome]:
    outcomes = []
    session: Session = services.Session()
    delivered = _Delivered()
    conn = connections.pop(account_id, None) if connections is not None else None
    copies: list[int] = []

    def commit() -> None:  # the outcomes of mail already sent go with every commit
        delivered.write(session)
        session.commit()

    try:
        account = session.get(MailAccount, account_id) if account_id else None
        # The batch's rows, their recipients and the few mail columns sending needs, loaded
        # once: per mail there is then the phase commit, the send and the outcome.
        entries = _entries(session, entry_ids)
        emails = _emails(session, [e.email_id for e in entries.values()])
        users = _user_addresses(session)
        for entry_id in entry_ids:
            entry = entries[entry_id]
            if account is None or not account.smtp_host:
                outbox.mark_failed(
                    session, entry, None, "The account that sends this mail is gone."
                )
                outcomes.append(_outcome(entry))
                commit()
                continue
            if conn is None:
                commit()  # nothing held while connecting (an OAuth2 refresh writes the account)
                try:
                    conn = _open(services, session, account, ssl_context)
                except MailError as exc:
                    outcomes.append(_failed_before_data(session, entry, exc))
                    commit()
                    continue
            if not outbox.mark_data_phase(session, entry, claim):
                commit()
                continue  # swept back after its lease ran out: another worker's now
            commit()
            outcome, broken = _send_one(services, session, conn, entry, emails, users, delivered)
            outcomes.append(outcome)
            if outcome.state == SENT and account.store_sent and account.imap_host:
                copies.append(entry.email_id)
            if broken:
                _close(conn)
                conn = None
        commit()
    finally:
        if conn is not None and connections is not None:
            connections[account_id] = conn  # the caller's to reuse and close
        elif conn is not None:
            _close(conn)
        session.close()
    if copies:
        store_sent_copies(services, account_id, copies)
    return outcomes


def store_sent_copies(services, account_id: int, email_ids: list[int]) -> None:
    """APPEND what was sent to the account's Sent folder. The mail is sent whatever happens
    here; a copy that could not be stored is a problem note on the mail, not a failure."""
    with services.session() as session:
        account = session.get(MailAccount, account_id)
        emails = [session.get(Email, i) for i in email_ids]
        try:
            allowlist = manage.host_allowlist(session, services.config.mail_host_allowlist)
            with manage.connect(
                account, services.secret_box, allowlist, ca_file=services.config.mail_ca_file
            ) as imap:
                for email in emails:
                    imap.append(account.sent_folder or "Sent", services.blobs.get(email.raw_sha256))
        except MailError as exc:
            note = f"Sent, but no copy could be stored in {account.sent_folder}: {_words(exc)}"
            for email in emails:
                email.problems = [*(email.problems or []), note]


def _open(services, session: Session, account: MailAccount, ssl_context):
    settings_ = manage.smtp_settings(
        session, account, services.secret_box, services.config.mail_host_allowlist
    )
    context = ssl_context
    if context is None and account.smtp_security != "none":  # building one costs 40-170 ms
        context = manage.tls_context_for(services.config.mail_ca_file)
    conn = SmtpConnection(settings_, ssl_context=context)
    conn.__enter__()
    return conn


def _close(conn) -> None:
    try:
        conn.__exit__(None, None, None)
    except Exception:
        log.debug("closing an SMTP connection failed", exc_info=True)


def _entries(session: Session, ids: list[int]) -> dict[int, OutboxEntry]:
    stmt = (
        select(OutboxEntry)
        .where(OutboxEntry.id.in_(ids))
        .options(selectinload(OutboxEntry.recipients))
    )
    return {e.id: e for e in session.scalars(stmt)}


def _emails(session: Session, ids: list[int]) -> dict[int, Email]:
    columns = (Email.id, Email.raw_sha256, Email.subject, Email.status, Email.date_sent)
    stmt = select(Email).where(Email.id.in_(ids)).options(load_only(*columns))
    return {e.id: e for e in session.scalars(stmt)}


def _user_addresses(session: Session) -> dict[str, int]:
    """Every CRM user's address (lower-cased) -> user id: who gets sent mail in their Inbox."""
    stmt = (
        select(EmailAddress.lower, EmailAddressLink.entity_id)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddressLink.entity_type == "User")
    )
    return dict(session.execute(stmt).all())


def _send_one(
    services, session: Session, conn, entry: OutboxEntry, emails: dict, users: dict, delivered
) -> tuple[Outcome, bool]:
    """Send one mail on an open connection; (outcome, whether the connection is unusable)."""
    email = emails[entry.email_id]
    raw = services.blobs.get(email.raw_sha256)
    recipients = [r.address for r in entry.recipients]
    try:
        delivery = conn.send(raw, entry.from_address, recipients)
    except SmtpUnknown as exc:
        outbox.mark_unknown(session, entry, _unknown_text(exc))
        _notify_owner(session, entry, email, "Delivery unknown")
        return _outcome(entry), True
    except SmtpTemporary as exc:
        if not outbox.retry_later(session, entry, exc.code, _words(exc)):
            _notify_owner(session, entry, email, "Not sent")
        _record_refusals(entry, getattr(exc, "refused", ()))
        return _outcome(entry), True
    except SmtpPermanent as exc:
        outbox.mark_failed(session, entry, exc.code, _words(exc))
        _record_refusals(entry, getattr(exc, "refused", ()))
        _notify_owner(session, entry, email, "Not sent")
        return _outcome(entry), False
    except MailError as exc:  # anything else the transport raises: safe to retry
        outbox.retry_later(session, entry, None, _words(exc))
        return _outcome(entry), True
    if not delivery.refused and not _receivers(entry, delivery, users):
        delivered.add(entry, email, delivery)  # the common case: written with the next commit
        return Outcome(entry.id, entry.email_id, SENT, delivery.reply), False
    record_sent(session, entry, email, delivery, users)
    return _outcome(entry), False


def _failed_before_data(session: Session, entry: OutboxEntry, exc: MailError) -> Outcome:
    if isinstance(exc, SmtpPermanent):
        outbox.mark_failed(session, entry, exc.code, _words(exc))
        _notify_owner(session, entry, session.get(Email, entry.email_id), "Not sent")
    else:
        outbox.retry_later(session, entry, getattr(exc, "code", None), _words(exc))
    return _outcome(entry)


# A delivered mail's outcome, as prebuilt statements run for many mails at once (building an
# UPDATE per mail cost more than the SMTP conversation).
_outbox_rows, _recipient_rows, _email_rows = (
    OutboxEntry.__table__,
    OutboxRecipient.__table__,
    Email.__table__,
)
_SENT_ENTRY = (
    update(_outbox_rows)
    .where(_outbox_rows.c.id == bindparam("b_id"))
    .values(
        state=SENT,
        lease_until=None,
        finished_at=bindparam("b_at"),
        last_code=bindparam("b_code"),
        last_reply=bindparam("b_reply"),
    )
)
_SENT_RECIPIENTS = (
    update(_recipient_rows)
    .where(_recipient_rows.c.entry_id == bindparam("b_id"))
    .values(state="accepted", reply="")
)
_SENT_EMAIL = (
    update(_email_rows)
    .where(_email_rows.c.id == bindparam("b_email"))
    .values(status=STATUS_SENT, date_sent=bindparam("b_at"))
)


class _Delivered:
    """Mail the server accepted for every recipient, whose outcome is not written yet.

    It is written with the next mail's data phase, in the same commit, so a batch costs one
    commit per mail. A worker that dies before that commit leaves the mail in phase "data":
    the sweeper marks it unknown, never sends it again.
    """

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, entry: OutboxEntry, email: Email, delivery: Delivery) -> None:
        self.rows.append({"b_id": entry.id, "b_email": email.id, "b_at": utcnow(),
                          "b_code": _code(delivery.reply), "b_reply": delivery.reply})  # fmt: skip

    def write(self, session: Session) -> None:
        if not self.rows:
            return
        conn = session.connection()
        for statement in (_SENT_ENTRY, _SENT_RECIPIENTS, _SENT_EMAIL):
            conn.execute(statement, self.rows)
        self.rows = []


def _receivers(entry: OutboxEntry, delivery: Delivery, users: dict) -> bool:
    """Whether a CRM user other than the sender is among the accepted recipients."""
    return any(users.get(a.lower()) not in (None, entry.user_id) for a in delivery.accepted)


def record_sent(
    session: Session, entry: OutboxEntry, email: Email, delivery: Delivery, users: dict
) -> None:
    """The outcome of a delivered mail. Written as three plain UPDATEs (the ORM's unit of
    work cost more than the SMTP conversation per mail), then mirrored on the loaded rows."""
    now = utcnow()
    accepted = {a.lower() for a in delivery.accepted}
    sent = {"state": SENT, "lease_until": None, "finished_at": now,
            "last_code": _code(delivery.reply), "last_reply": delivery.reply}  # fmt: skip
    session.execute(_plain(update(OutboxEntry).where(OutboxEntry.id == entry.id).values(sent)))
    session.execute(
        _plain(
            update(OutboxRecipient)
            .where(OutboxRecipient.entry_id == entry.id)
            .values(state="accepted", reply="")
        )
    )
    session.execute(
        _plain(update(Email).where(Email.id == email.id).values(status=STATUS_SENT, date_sent=now))
    )
    for name, value in sent.items():
        set_committed_value(entry, name, value)
    for r in entry.recipients:
        set_committed_value(r, "state", "accepted")
        set_committed_value(r, "reply", "")
    set_committed_value(email, "status", STATUS_SENT)
    set_committed_value(email, "date_sent", now)
    _record_refusals(entry, delivery.refused)  # rare: through the ORM
    _deliver_to_users(session, email, entry, accepted, users)
    if delivery.refused:
        names = ", ".join(f.address for f in delivery.refused)
        _notify_owner(session, entry, email, f"Not delivered to {names}")


def _plain(statement):
    return statement.execution_options(synchronize_session=False)


def _record_refusals(entry: OutboxEntry, refused) -> None:
    by_address = {f.address.lower(): f for f in refused or ()}
    for r in entry.recipients:
        f = by_address.get(r.address.lower())
        if f is not None:
            r.state, r.code, r.reply = "refused", f.code, f.reply


def _deliver_to_users(
    session: Session, email: Email, entry: OutboxEntry, accepted, users: dict
) -> None:
    """Recipients who are CRM users get the mail in their Inbox now (their own fetch of it
    later finds it by Message-ID and adds nothing)."""
    receivers = {users[a] for a in accepted if a in users} - {entry.user_id}
    if not receivers:
        return
    have = set(
        session.scalars(select(EmailUserState.user_id).where(EmailUserState.email_id == email.id))
    )
    for user_id in receivers - have:
        session.add(EmailUserState(email_id=email.id, user_id=user_id, sort_date=email.date_sent))
        notify(
            session,
            user_id,
            "new_mail",
            "1 new mail",
            email_ids=[email.id],
            count=1,
            email_id=email.id,
        )


def _notify_owner(session: Session, entry: OutboxEntry, email: Email | None, what: str) -> None:
    if entry.user_id is None or email is None:
        return
    subject = email.subject or "(no subject)"
    notify(session, entry.user_id, "send_problem", f"{what}: {subject}", email_id=email.id)


def _outcome(entry: OutboxEntry) -> Outcome:
    refused = [(r.address, r.code or 0, r.reply) for r in entry.recipients if r.state == "refused"]
    return Outcome(entry.id, entry.email_id, entry.state, entry.last_reply, refused)


def _words(exc: MailError) -> str:
    reply = getattr(exc, "reply", None)
    return str(reply or exc)


def _unknown_text(exc: MailError) -> str:
    return (
        "The connection was lost after the message was handed to the server, before it "
        f"answered; it may have been delivered. ({_words(exc)})"
    )


def _code(reply: str) -> int | None:
    head = (reply or "")[:3]
    return int(head) if head.isdigit() else None


def send_test_mail(services, session, account: MailAccount, to: str) -> str:
    """One plain test mail, straight over SMTP (not through the outbox: it tests the account)."""
    settings_ = manage.smtp_settings(
        session, account, services.secret_box, services.config.mail_host_allowlist
    )
    domain = account.email_address.rpartition("@")[2]
    message = OutgoingMessage(
        sender=Mailbox(account.name, account.email_address),
        to=(Mailbox("", to),),
        subject="Test e-mail from Mail CRM",
        text=f"This test mail was sent through {account.smtp_host}:{account.smtp_port}.",
        message_id=random_message_id(domain),
    )
    context = manage.tls_context_for(services.config.mail_ca_file)
    with SmtpConnection(settings_, ssl_context=context) as conn:
        delivery = conn.send(to_bytes(message), account.email_address, [to])
    return delivery.reply

"""Who gets an imported mail, and where: one state row per user, grouped notifications.

The account's own users get every mail; a colleague whose address is among the recipients gets
it too (a shared CRM); mail from a user's own address shows in their Sent view. Our own mail is
sent mail too: mail fetched from the account's Sent folder for the account's users, whatever
alias it came from, and mail From one of our mail accounts' addresses (a group's, the system
SMTP account's) for the users of that account. Inbox filters decide folder, trash and read state
of received mail; historical mail (older than 2 days, or read again after a reset) never notifies.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import bulk
from crm.mail.filters import NO_FILTER
from crm.mail.parse import ParsedMail
from crm.mailbox import folders
from crm.mailbox.notifications import notify
from crm.models import EmailUserState, Folder

HISTORICAL_AFTER = timedelta(days=2)


def deliver(
    session: Session,
    ctx,
    folder: str,
    candidates,
    new_emails: dict,
    *,
    sent: bool = False,
    quiet: bool = False,
) -> None:
    """State rows for every user who has the batch's mail; one notification per user.

    `sent`: the batch comes from one of the account's Sent folders. `quiet`: it is old mail
    (a folder read again after a reset) and notifies nobody."""
    have = _existing_states(session, {c.email_id for c in candidates})
    rows, fresh = [], defaultdict(list)
    for cand in candidates:
        mail = cand.mail or cand.headers_only
        email = new_emails.get(cand.email_id)
        extra = getattr(email, "_extra_receivers", set()) if email is not None else set()
        # New mail filed in a "skip notifications" group folder notifies nobody.
        silent = quiet or (
            email is not None and cand.group_folder_id in ctx.filters.skipping_folders()
        )
        for user_id, outgoing in recipients(ctx, mail, extra, sent).items():
            if (cand.email_id, user_id) in have:
                continue
            have.add((cand.email_id, user_id))
            row, skip = _state_row(ctx, folder, cand, mail, user_id, outgoing)
            rows.append(row)
            if not (skip or silent) and _notifies(ctx, mail, row, outgoing):
                fresh[user_id].append(cand.email_id)
    bulk.insert_rows(session.connection(), EmailUserState.__table__, rows)
    for user_id, ids in fresh.items():
        text = "1 new mail" if len(ids) == 1 else f"{len(ids)} new mails"
        # One mail: the notification opens it; several: the list (the Inbox) does.
        single = {"email_id": ids[0]} if len(ids) == 1 else {}
        notify(session, user_id, "new_mail", text, email_ids=ids[:50], count=len(ids), **single)


def recipients(ctx, mail: ParsedMail, extra: set[int], sent: bool = False) -> dict[int, bool]:
    """user id -> whether the mail is outgoing for them: sent from one of their addresses, or
    the sent mail of an account whose mail they get (fetched from this account's Sent folder,
    `sent`, or From the address of one of our mail accounts)."""
    address = mail.from_[1].strip().lower() if mail.from_ else ""
    sender = ctx.user_by_address.get(address)
    account_users = ctx.receivers | extra
    users = dict.fromkeys(account_users, sent)
    for _name, addr in (*mail.to, *mail.cc, *mail.bcc):
        user_id = ctx.user_by_address.get(addr.lower())
        if user_id is not None:
            users.setdefault(user_id, False)
    owners = ctx.account_addresses.get(address)
    if owners is not None:
        # This account's own address: its users (and a case's assignee) have it as sent mail.
        if address == (ctx.account.email_address or "").strip().lower():
            owners = owners | account_users
        for user_id in owners:
            users[user_id] = True
    if sender is not None:
        users[sender] = True
    return users


def file_in_group_folders(session: Session, ctx, new) -> None:
    """A group account's "Move to group folder" filters share the mail with the folder's teams."""
    by_folder: dict[int, set[int]] = defaultdict(set)
    for cand in new:
        if cand.group_folder_id:
            by_folder[cand.group_folder_id].add(cand.email_id)
    for folder_id, email_ids in by_folder.items():
        folder = session.get(Folder, folder_id)
        if folder is not None:
            folders.file_in_group_folder(session, folder, email_ids)


def is_historical(ctx, mail: ParsedMail) -> bool:
    return mail.date is not None and mail.date < ctx.now - HISTORICAL_AFTER


def _state_row(ctx, folder, cand, mail, user_id, outgoing) -> tuple[dict, bool]:
    folder_id = None
    if user_id in ctx.receivers and not outgoing:
        folder_id = (ctx.account.folder_map or {}).get(folder) or ctx.account.target_folder_id
    placement = ctx.filters.inbox_placement(user_id, mail) if not outgoing else NO_FILTER
    read = (
        outgoing or "\\Seen" in cand.header.flags or placement.mark_read or is_historical(ctx, mail)
    )
    row = {
        "email_id": cand.email_id,
        "user_id": user_id,
        "folder_id": placement.folder_id or folder_id,
        "in_trash": placement.in_trash,
        "is_read": read,
        "is_important": False,
        "is_outgoing": outgoing,
        "sort_date": mail.date or ctx.now,
        "created_at": ctx.now,
    }
    return row, placement.skip_notification


def _notifies(ctx, mail, row: dict, outgoing: bool) -> bool:
    return not (
        outgoing
        or row["in_trash"]
        or row["is_read"]
        or is_historical(ctx, mail)
        or row["folder_id"] in ctx.filters.skipping_folders()
    )


def _existing_states(session: Session, email_ids) -> set[tuple[int, int]]:
    if not email_ids:
        return set()
    stmt = select(EmailUserState.email_id, EmailUserState.user_id).where(
        EmailUserState.email_id.in_(email_ids)
    )
    return set(session.execute(stmt).all())

"""Email-to-case for group accounts.

Called by the import pipeline for each new Email fetched by a group account with `create_case`
on, after `linking.find_parent` ran (the email's parent may already be set). A mail that replies
to an existing case (parent chain or `[#number]`) is attached to that case; any other mail opens
a new Case, except machine mail (auto-replies, bounces) and our own mail, which would otherwise
open cases in loops or for our own answers: mail From a user's address or the address of one of
our mail accounts (a group account's own address, the system SMTP account's), and mail the
importer knows is ours (fetched from a Sent folder).

Distribution (MailAccount.case_distribution): "direct" to the account's user; "round-robin"
over the active members of `case_team_id`, the last pick kept on the account
(`case_last_assignee_id`) so it survives restarts; "least-busy": the member with the
fewest open cases (ties: lowest user id).
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from crm.models import Attachment, Case, Contact, Email, Lead, MailAccount, Team
from crm.records import addressbook, linking
from crm.records.records import next_case_number

OPEN_STATUSES = ("New", "Assigned", "Pending")


def route_to_case(
    session: Session, email: Email, mail=None, account=None, ours: bool = False
) -> list[int]:
    """Create a Case or attach the mail to an existing one; return user ids who must receive it.

    Our own mail (`ours`, or From one of our addresses) joins an existing case, never opens one.
    """
    found = existing_case(session, email, account)
    if found is not None:
        case, rule = found
        if (email.parent_type, email.parent_id) != ("Case", case.id):
            linking.set_parent(session, email, "Case", case.id, rule)
        return [case.assigned_user_id] if case.assigned_user_id else []
    if ours or email.is_auto_reply or email.is_bounce or _sent_by_us(session, email):
        return []
    case = create_case_for(session, email, account)
    return [case.assigned_user_id] if case.assigned_user_id else []


def existing_case(session: Session, email: Email, account) -> tuple[Case, str] | None:
    """The case this mail belongs to and the rule that says so: its parent (set by the chain
    rules), `[#number]`, or the case a reply of its thread opened before it was stored."""
    if email.parent_type == "Case" and email.parent_id:
        case = session.get(Case, email.parent_id)
        if case is not None:
            return case, email.link_rule
    if case := linking.case_from_subject(session, email.subject, account):
        return case, "case-number"
    if case := _case_of_its_thread(session, email):
        return case, "case-thread"
    return None


def _case_of_its_thread(session: Session, email: Email) -> Case | None:
    """The case of mail already stored that answers this one or shares its thread root.

    A folder is read newest first, so a reply usually arrives before the mail it answers and
    opens the case; the original must join that case, not open a second one.
    """
    names = {email.identity, email.thread_root} - {None}
    stmt = (
        select(Case)
        .join(Email, (Email.parent_type == "Case") & (Email.parent_id == Case.id))
        .where(
            Email.id != email.id,
            or_(Email.in_reply_to == email.identity, Email.thread_root.in_(names)),
        )
        .order_by(Case.id)
        .limit(1)
    )
    return session.scalars(stmt).first()


def create_case_for(session: Session, email: Email, account) -> Case:
    """A new Case from an incoming mail, assigned by the account's distribution mode."""
    case = new_case(session, email)
    case.inbound_account_id = account.id
    case.team_id = account.case_team_id
    case.assigned_user_id = pick_assignee(session, account)
    case.status = "Assigned" if case.assigned_user_id else "New"
    contact_id, lead_id = sender_person(session, email)
    case.contact_id, case.lead_id = contact_id, lead_id
    # The account comes from the contact; else from what the address rule linked the mail to.
    case.account_id = (
        session.get(Contact, contact_id).account_id if contact_id else email.account_id
    )
    session.flush()
    copy_attachments(session, email, "Case", case.id)
    linking.set_parent(session, email, "Case", case.id, "case-created")
    # Replies of the same batch, linked through this mail before it had a case, join the case.
    linking.propagate_to_orphan_replies_of(session, [email])
    return case


def new_case(session: Session, email: Email) -> Case:
    """A Case named from the subject, described by the plain body (flushed)."""
    name = (email.subject or "").strip() or "(no subject)"
    case = Case(
        number=next_case_number(session), name=name[:255], description=email.body_text or ""
    )
    session.add(case)
    session.flush()
    return case


def copy_attachments(session: Session, email: Email, parent_type: str, parent_id: int) -> None:
    """Attach the mail's files to a record: new rows pointing at the same blobs."""
    for att in email.attachments:
        if att.parent_type is not None:
            continue
        session.add(
            Attachment(
                email_id=None,
                position=att.position,
                filename=att.filename,
                content_type=att.content_type,
                size=att.size,
                sha256=att.sha256,
                content_id=att.content_id,
                is_inline=att.is_inline,
                parent_type=parent_type,
                parent_id=parent_id,
            )
        )
    session.flush()


def pick_assignee(session: Session, account) -> int | None:
    """The user a new case goes to under the account's distribution mode."""
    mode = account.case_distribution or "direct"
    if mode == "direct":
        return account.user_id
    members = _team_members(session, account.case_team_id)
    if not members:
        return account.user_id
    if mode == "round-robin":
        return _next_in_turn(session, account, members)
    if mode == "least-busy":
        return _least_busy(session, members)
    return account.user_id


def _team_members(session: Session, team_id: int | None) -> list[int]:
    if team_id is None:
        return []
    team = session.get(Team, team_id)
    return sorted(u.id for u in team.members if u.is_active) if team else []


def _next_in_turn(session: Session, account, members: list[int]) -> int:
    last = account.case_last_assignee_id
    later = [m for m in members if last is not None and m > last]
    chosen = later[0] if later else members[0]
    account.case_last_assignee_id = chosen
    session.flush()
    return chosen


def _least_busy(session: Session, members: list[int]) -> int:
    stmt = (
        select(Case.assigned_user_id, func.count())
        .where(Case.assigned_user_id.in_(members), Case.status.in_(OPEN_STATUSES))
        .group_by(Case.assigned_user_id)
    )
    load = dict(session.execute(stmt).all())
    return min(members, key=lambda m: (load.get(m, 0), m))


def _sender_address(session: Session, email: Email) -> str | None:
    return next((lower for role, lower in linking.address_roles(email) if role == "from"), None)


def _sent_by_us(session: Session, email: Email) -> bool:
    """From a user's address, or from the address of one of our mail accounts."""
    lower = _sender_address(session, email)
    if not lower:
        return False
    if any(t == "User" for _, t, _ in addressbook.holders(session, [lower])):
        return True
    stmt = select(MailAccount.id).where(func.lower(MailAccount.email_address) == lower).limit(1)
    return session.scalar(stmt) is not None


def sender_person(session: Session, email: Email) -> tuple[int | None, int | None]:
    """(contact id, lead id) of the sender: a Contact, else a Lead (a converted one's Contact)."""
    lower = _sender_address(session, email)
    held = addressbook.holders(session, [lower]) if lower else []
    contacts = sorted(i for _, t, i in held if t == "Contact")
    if contacts:
        return contacts[0], None
    for lead_id in sorted(i for _, t, i in held if t == "Lead"):
        lead = session.get(Lead, lead_id)
        if lead is not None and lead.is_converted and lead.converted_contact_id:
            return lead.converted_contact_id, None
        if lead is not None and not lead.is_converted:
            return None, lead.id
    return None, None

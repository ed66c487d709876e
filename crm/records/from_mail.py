"""Records made from a mail: Contact, Lead, Task and Case, each linked back to the mail.

A Contact or Lead created from a mail without a parent becomes its parent (a Contact with an
Account in B2B mode gives the Account, as the address rule would have). The caller checks that
the user may read the mail and commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from crm import settings
from crm.db import utcnow
from crm.mail.address import normalise_address
from crm.models import (
    Account,
    Case,
    Contact,
    Email,
    EmailAddress,
    EmailAddressLink,
    EmailUserState,
    Lead,
    Task,
    User,
)
from crm.records import addressbook, cases, linking
from crm.records.access import visible
from crm.records.people import people_on_mail

# Domains anyone can get an address at: sharing one says nothing about a person's company.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com",
        "seznam.cz", "email.cz", "post.cz", "centrum.cz", "atlas.cz", "volny.cz",
        "centrum.sk", "azet.sk", "zoznam.sk", "web.de", "gmx.de", "gmx.net", "gmx.at",
        "t-online.de", "freenet.de", "wp.pl", "o2.pl", "onet.pl", "interia.pl",
        "mail.ru", "yandex.ru",
    }
)  # fmt: skip


class DraftError(ValueError):
    """A name or address that cannot make a person; the message is shown to the user."""


@dataclass(frozen=True)
class PersonDraft:
    first_name: str
    last_name: str
    address: str


def prefill(session: Session, email: Email, address: str | None) -> PersonDraft:
    """Name and address for a new Contact/Lead, from the header that carries the address."""
    wanted = (normalise_address(address) or "").lower()
    people = people_on_mail(session, email, roles=("from", "reply_to", "to", "cc"))
    person = next((p for p in people if p.address.lower() == wanted), None)
    if person is None:
        person = next((p for p in people if p.role == "from"), None)
    if person is None:
        return PersonDraft("", "", address or "")
    first, last = person.first_last
    return PersonDraft(first, last, person.address)


def suggest_account(session: Session, viewer: User, email: Email, address: str) -> Account | None:
    """The Account a new Contact with this address likely belongs to, for the form to offer.

    An Account that has, or whose contacts have, an address at the same domain (free-mail
    domains excepted); else the Account the mail is already linked to. Only Accounts the viewer
    may read.
    """
    domain = (normalise_address(address) or "").rpartition("@")[2].lower()
    if domain and domain not in FREE_MAIL_DOMAINS:
        found = session.scalars(
            visible(select(Account).where(_has_address_at(domain)), Account, viewer)
            .order_by(Account.name, Account.id)
            .limit(1)
        ).first()
        if found is not None:
            return found
    if email.account_id is None:
        return None
    return session.scalars(
        visible(select(Account).where(Account.id == email.account_id), Account, viewer)
    ).first()


def _has_address_at(domain: str):
    pattern = "%@" + domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    at_domain = EmailAddress.lower.like(pattern, escape="\\")

    def holders(entity_type: str):
        return (
            select(EmailAddressLink.entity_id)
            .join(EmailAddress, EmailAddress.id == EmailAddressLink.address_id)
            .where(EmailAddressLink.entity_type == entity_type, at_domain)
        )

    contacts = select(Contact.account_id).where(
        and_(Contact.account_id.is_not(None), Contact.id.in_(holders("Contact")))
    )
    return or_(Account.id.in_(holders("Account")), Account.id.in_(contacts))


def account_choices(session: Session, viewer: User, limit: int = 200) -> list[Account]:
    """Accounts the viewer may pick for a new Contact, by name."""
    stmt = visible(select(Account), Account, viewer).order_by(Account.name, Account.id)
    return list(session.scalars(stmt.limit(limit)))


def create_contact(
    session: Session, email: Email, user: User, draft: PersonDraft, account_id: int | None = None
) -> Contact:
    """A Contact from a mail; it (or its Account in B2B) becomes the parent of an orphan mail."""
    contact = Contact(
        first_name=draft.first_name.strip(), last_name=_last_name(draft), account_id=account_id
    )
    _own(contact, user)
    session.add(contact)
    session.flush()
    _add_address(session, "Contact", contact.id, draft.address)
    if email.parent_type is None:
        b2b_account = account_id and not settings.get(session, "b2c_mode")
        target = ("Account", account_id) if b2b_account else ("Contact", contact.id)
        linking.set_parent(session, email, *target, rule="created-from-mail")
    return contact


def create_lead(
    session: Session, email: Email, user: User, draft: PersonDraft, account_name: str = ""
) -> Lead:
    """A Lead from a mail; it becomes the parent of an orphan mail."""
    lead = Lead(
        first_name=draft.first_name.strip(),
        last_name=_last_name(draft),
        account_name=account_name.strip(),
    )
    _own(lead, user)
    session.add(lead)
    session.flush()
    _add_address(session, "Lead", lead.id, draft.address)
    if email.parent_type is None:
        linking.set_parent(session, email, "Lead", lead.id, rule="created-from-mail")
    return lead


def create_task(
    session: Session,
    email: Email,
    user: User,
    name: str,
    assignee_id: int | None = None,
    due_at: datetime | None = None,
) -> Task:
    """A Task about the mail: same parent, a link back, and the mail in the assignee's inbox."""
    task = Task(
        name=(name.strip() or email.subject or "Follow up")[:255],
        parent_type=email.parent_type,
        parent_id=email.parent_id,
        email_id=email.id,
        due_at=due_at,
        description=email.body_text or "",
    )
    _own(task, user)
    task.assigned_user_id = assignee_id or user.id
    session.add(task)
    session.flush()
    deliver(session, email, task.assigned_user_id)
    return task


def tasks_from(session: Session, email: Email, viewer: User) -> list[Task]:
    """The tasks made from the mail that the viewer may see, oldest first."""
    stmt = visible(select(Task).where(Task.email_id == email.id), Task, viewer)
    return list(session.scalars(stmt.order_by(Task.id)))


def deliver(session: Session, email: Email, user_id: int) -> None:
    """Put the mail in a user's Inbox unless they already have it."""
    exists = session.query(EmailUserState).filter_by(email_id=email.id, user_id=user_id).first()
    if exists is None:
        session.add(
            EmailUserState(
                email_id=email.id,
                user_id=user_id,
                folder_id=None,
                sort_date=email.date_sent or utcnow(),
            )
        )
        session.flush()


def create_case(session: Session, email: Email, user: User, name: str = "") -> Case:
    """A Case from a mail; the mail and its direct replies get the Case as parent."""
    case = cases.new_case(session, email)
    if name.strip():
        case.name = name.strip()[:255]
    _own(case, user)
    case.status = "Assigned"
    case.contact_id, case.lead_id, case.account_id = _people_of(session, email)
    session.flush()
    cases.copy_attachments(session, email, "Case", case.id)
    for mail in [email, *linking.replies_of(session, email, direct_only=True)]:
        linking.set_parent(session, mail, "Case", case.id, rule="case-created")
    return case


def _people_of(session: Session, email: Email) -> tuple[int | None, int | None, int | None]:
    """(contact, lead, account) from the mail's links: its parent, else its sender."""
    if email.parent_type == "Lead":
        return None, email.parent_id, None
    if email.parent_type == "Contact":
        contact_id, lead_id = email.parent_id, None
    else:
        contact_id, lead_id = cases.sender_person(session, email)
    contact = session.get(Contact, contact_id) if contact_id else None
    account_id = email.account_id or (contact.account_id if contact else None)
    return contact_id, lead_id, account_id


def _own(record, user: User) -> None:
    record.assigned_user_id = user.id
    record.created_by_id = user.id
    record.team_id = next(iter(sorted(user.team_ids)), None)


def _last_name(draft: PersonDraft) -> str:
    """The last name, after checking the draft can make a record (before anything is added)."""
    if not draft.last_name.strip() and not draft.first_name.strip():
        raise DraftError("A name is required.")
    if draft.address.strip() and normalise_address(draft.address) is None:
        raise DraftError(f"{draft.address!r} is not an e-mail address.")
    return draft.last_name.strip()


def _add_address(session: Session, entity_type: str, entity_id: int, address: str) -> None:
    if address.strip():
        addressbook.add_addresses(session, entity_type, entity_id, [address])

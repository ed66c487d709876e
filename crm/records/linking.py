"""Parent finder: which CRM record a mail belongs to, by the first rule that finds one.

Rules, in order (each Link records its rule so a wrong link can be explained and fixed):
1. "thread-token": a signed token of ours anywhere in In-Reply-To / References (crm.mail.threadtoken).
2. "replied-mail": a mail of that chain already in the system, that has a parent.
3. "case-number": `[#1234]` in the subject, for a group account that creates cases, scoped to
   the cases that account created.
4. "sender-address", "reply-to-address", "recipient-address": From, the first Reply-To, the
   first To, matched against record addresses (see `_record_for_address`); our users' own
   addresses are skipped.

Who calls what: the import calls `find_parents` for a batch (same rules, lookups once per
batch), sets the columns (`apply_link_columns`), then `propagate_to_orphan_replies_of`: mail that
arrived before an ancestor of its chain is linked again by rule 2, so the outcome does not depend
on the order of arrival (tests/mail/test_linking_agreement.py). One mail at a time:
`find_parent`, then `apply_link`. By hand: `set_parent`, whose parent goes to replies that have
none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from crm import settings
from crm.mail import threadtoken
from crm.models import RECORD_TYPES, Account, Case, Contact, Email, EmailAddress, Lead
from crm.records import addressbook

RULE_LABELS = {
    "thread-token": "linked by our reference in the reply",
    "replied-mail": "linked by the mail it replies to",
    "case-number": "linked by the case number in the subject",
    "sender-address": "linked by sender address",
    "reply-to-address": "linked by reply-to address",
    "recipient-address": "linked by recipient address",
    "manual": "linked by hand",
    "created-from-mail": "linked when the record was created from this mail",
    "case-created": "linked to the case created from this mail",
    "case-thread": "linked to the case a reply in its conversation opened",
}
CASE_NUMBER_RE = re.compile(r"\[#(\d{1,9})\]")
_ADDRESS_RULES = (
    ("from", "sender-address"),
    ("reply_to", "reply-to-address"),
    ("to", "recipient-address"),
)


@dataclass(frozen=True)
class Link:
    parent_type: str
    parent_id: int
    account_id: int | None
    rule: str  # one of RULE_LABELS


def find_parent(
    session: Session, email: Email, mail=None, account=None, key: str | None = None
) -> Link | None:
    """The record an incoming mail belongs to, by the first rule that finds one.

    `key` is the app secret; by default the one Services put in the session's info ("" turns
    the thread-token rule off). `mail` (the ParsedMail) is not needed: the stored Email is read.
    """
    chain = reference_chain(email)
    if chain and key is None:
        key = session_key(session)
    return (
        _by_thread_token(session, chain, key)
        or _by_replied_mail(session, email, chain)
        or _by_case_number(session, email, account)
        or _by_addresses(session, email)
    )


def session_key(session: Session) -> str:
    """The app secret that crm.services.Services attaches to every session it makes."""
    getter = session.info.get("secret_key")
    return (getter() if callable(getter) else getter) or ""


def reference_chain(email: Email) -> list[str]:
    """Ids this mail replies to, nearest first: In-Reply-To, then References newest first."""
    chain: list[str] = []
    for ref in [email.in_reply_to, *reversed(email.references or [])]:
        if ref and ref not in chain and ref != email.identity:
            chain.append(ref)
    return chain


def make_link(session: Session, parent_type: str, parent_id: int, rule: str) -> Link | None:
    """A Link to an existing record, with its derived account; None when the record is gone."""
    record = session.get(RECORD_TYPES[parent_type], parent_id)
    if record is None:
        return None
    return Link(parent_type, parent_id, account_of(session, record), rule)


def account_of(session: Session, record) -> int | None:
    """The Account a record's mail also shows under."""
    if isinstance(record, Account):
        return record.id
    if record.entity_type == "Task":
        parent_model = RECORD_TYPES.get(record.parent_type or "")
        parent = session.get(parent_model, record.parent_id) if parent_model else None
        return (
            account_of(session, parent)
            if parent is not None and parent.entity_type != "Task"
            else None
        )
    if isinstance(record, Lead):
        return record.converted_account_id
    return getattr(record, "account_id", None)


def _by_thread_token(session: Session, chain: list[str], key: str | None) -> Link | None:
    for ref in chain:
        found = threadtoken.parse_token(key or "", ref)
        if found and (link := make_link(session, *found, "thread-token")):
            return link
    return None


def _by_replied_mail(session: Session, email: Email, chain: list[str]) -> Link | None:
    if not chain:
        return None
    stmt = select(Email).where(
        Email.identity.in_(chain), Email.parent_type.is_not(None), Email.id != email.id
    )
    replied = {m.identity: m for m in session.scalars(stmt)}
    for ref in chain:
        if ref in replied and (
            link := make_link(
                session, replied[ref].parent_type, replied[ref].parent_id, "replied-mail"
            )
        ):
            return link
    return None


def _by_case_number(session: Session, email: Email, account) -> Link | None:
    case = case_from_subject(session, email.subject, account)
    return Link("Case", case.id, case.account_id, "case-number") if case else None


def case_from_subject(session: Session, subject: str | None, account) -> Case | None:
    """The case named by `[#number]` in the subject, among the cases this group account made."""
    if account is None or not (account.is_group and account.create_case):
        return None
    for number in CASE_NUMBER_RE.findall(subject or ""):
        case = session.scalars(
            select(Case).where(Case.number == int(number), Case.inbound_account_id == account.id)
        ).first()
        if case is not None:
            return case
    return None


def _by_addresses(session: Session, email: Email) -> Link | None:
    candidates = _first_address_per_role(email)
    found = _holders_by_address(session, [lower for _, lower in candidates])
    b2c = None  # read only when a Contact or converted Lead makes it matter
    for rule, lower in candidates:
        held = found.get(lower, {})
        if "User" in held or not held:
            continue
        if b2c is None:
            b2c = bool(settings.get(session, "b2c_mode"))
        target = _record_for_address(session, held, b2c)
        if target and (link := make_link(session, *target, rule)):
            return link
    return None


def _first_address_per_role(email: Email) -> list[tuple[str, str]]:
    """[(rule, lower address)] for From, the first Reply-To and the first To."""
    by_role: dict[str, str] = {}
    for role, lower in address_roles(email):
        by_role.setdefault(role, lower)
    return [(rule, by_role[role]) for role, rule in _ADDRESS_RULES if role in by_role]


def address_roles(email: Email) -> list[tuple[str, str]]:
    """[(role, lower address)] of the mail's people in their order. The importer hands them
    over with the new mail (`_address_roles`: the rows it has just inserted), sparing a query
    and an object per recipient; other mail reads its recipient rows."""
    roles = getattr(email, "_address_roles", None)
    if roles is not None:
        return roles
    # Many-to-one by primary key: address rows already in the session come from its identity map.
    return [(r.role, r.address.lower) for r in sorted(email.recipients, key=lambda r: r.position)]


def _holders_by_address(session: Session, lowers: list[str]) -> dict[str, dict[str, list[int]]]:
    """{address: {entity type: [ids, lowest first]}} in one query."""
    found: dict[str, dict[str, list[int]]] = {}
    for lower, entity_type, entity_id in addressbook.holders(session, lowers):
        found.setdefault(lower, {}).setdefault(entity_type, []).append(entity_id)
    for by_type in found.values():
        for ids in by_type.values():
            ids.sort()
    return found


def _record_for_address(
    session: Session, held: dict[str, list[int]], b2c: bool
) -> tuple[str, int] | None:
    """Contact (its Account in B2B), else Account, else a Lead (a converted one: what it became)."""
    for contact_id in held.get("Contact", []):
        contact = session.get(Contact, contact_id)
        if contact is not None:
            return (
                ("Account", contact.account_id)
                if contact.account_id and not b2c
                else ("Contact", contact.id)
            )
    for account_id in held.get("Account", []):
        return "Account", account_id
    for lead_id in held.get("Lead", []):
        lead = session.get(Lead, lead_id)
        if lead is None:
            continue
        if not lead.is_converted:
            return "Lead", lead.id
        if b2c and lead.converted_contact_id:
            return "Contact", lead.converted_contact_id
        if lead.converted_account_id:
            return "Account", lead.converted_account_id
        if lead.converted_contact_id:
            return "Contact", lead.converted_contact_id
    return None


def apply_link(session: Session, email: Email, link: Link | None) -> None:
    """Store a found Link on the mail and hand its parent to replies that came before it."""
    if link is None:
        return
    email.parent_type, email.parent_id = link.parent_type, link.parent_id
    email.account_id, email.link_rule = link.account_id, link.rule
    session.flush()
    propagate_to_orphan_replies(session, email)


def set_parent(
    session: Session,
    email: Email,
    parent_type: str | None,
    parent_id: int | None,
    rule: str = "manual",
) -> Link | None:
    """Set (or clear, with None) a mail's parent; replies without a parent get it too."""
    if parent_type is None:
        email.parent_type = email.parent_id = email.account_id = email.link_rule = None
        return None
    link = make_link(session, parent_type, parent_id, rule)
    if link is None:
        raise LookupError(f"{parent_type} {parent_id} does not exist")
    email.parent_type, email.parent_id = link.parent_type, link.parent_id
    email.account_id, email.link_rule = link.account_id, link.rule
    session.flush()
    # By hand, once: also follow References, so a reply whose direct parent is missing is found.
    propagate_to_orphan_replies(session, email, via_references=True)
    return link


def propagate_to_orphan_replies(
    session: Session, email: Email, via_references: bool = False
) -> int:
    """Give the mail's parent to its descendants that have none (a reply may arrive first).

    Descendants are followed through In-Reply-To, which is indexed: a References scan per
    imported mail would make a large import quadratic. `via_references` adds that scan, for
    one-off changes made by hand.
    """
    if email.parent_type is None:
        return 0
    changed, queue, seen = 0, [email], {email.id}
    while queue:
        current = queue.pop()
        for reply in replies_of(session, current, direct_only=not via_references):
            if reply.id in seen or reply.parent_type is not None:
                continue
            seen.add(reply.id)
            reply.parent_type, reply.parent_id = email.parent_type, email.parent_id
            reply.account_id, reply.link_rule = email.account_id, "replied-mail"
            queue.append(reply)
            changed += 1
    session.flush()
    return changed


def replies_of(session: Session, email: Email, direct_only: bool = False) -> list[Email]:
    """Mail naming this one in In-Reply-To (direct) or anywhere in References."""
    ident = email.identity
    conditions = [Email.in_reply_to == ident]
    if not direct_only:
        # References is a JSON list; a LIKE on its text narrows, membership is checked below.
        needle = json.dumps(ident).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(cast(Email.references, Text).like(f"%{needle}%", escape="\\"))
    stmt = select(Email).where(or_(*conditions), Email.id != email.id).order_by(Email.id)
    return [
        m
        for m in session.scalars(stmt)
        if m.in_reply_to == ident or (not direct_only and ident in (m.references or []))
    ]


def find_parents(
    session: Session, emails: list[Email], account=None, key: str | None = None
) -> dict[int, Link | None]:
    """`find_parent` for a batch of new mail (the import): same rules, lookups once per batch.

    Mail of the batch is linked ancestors first (then oldest first), and each link is set on
    the mail at once, so a reply in the same batch finds its parent whatever the Date headers
    say. A group account that creates cases goes through `find_parent` one by one (its rule
    3 reads cases, which email-to-case adds as it goes).
    """
    key = session_key(session) if key is None else key
    chains = {e.id: reference_chain(e) for e in emails}
    ordered = _ancestors_first(emails, chains)
    links: dict[int, Link | None] = {}
    if account is not None and account.is_group and account.create_case:
        for email in ordered:
            links[email.id] = find_parent(session, email, None, account, key)
            if links[email.id] is not None:
                apply_link_columns(email, links[email.id])
        return links
    replied = _mail_by_identity(session, {ref for chain in chains.values() for ref in chain})
    roles = {e.id: _first_address_per_role_in_memory(session, e) for e in emails}
    holders = _holders_by_address(session, list({lower for r in roles.values() for _, lower in r}))
    _load_people(session, holders)
    b2c = bool(settings.get(session, "b2c_mode"))
    for email in ordered:
        link = (
            _by_thread_token(session, chains[email.id], key)
            or _from_replied(session, chains[email.id], replied)
            or _from_addresses(session, roles[email.id], holders, b2c)
        )
        links[email.id] = link
        if link is not None:
            apply_link_columns(email, link)
            replied[email.identity] = email
    return links


def _ancestors_first(emails: list[Email], chains: dict[int, list[str]]) -> list[Email]:
    """The batch oldest first, except that a mail named in another's chain comes before it."""
    by_identity = {e.identity: e for e in emails}
    ordered: list[Email] = []
    placed: set[int] = set()

    def place(email: Email, path: set[int]) -> None:
        if email.id in placed or email.id in path:  # a chain loop must not recurse forever
            return
        for ref in reversed(chains[email.id]):  # farthest ancestor first
            if ref in by_identity:
                place(by_identity[ref], path | {email.id})
        placed.add(email.id)
        ordered.append(email)

    for email in sorted(emails, key=lambda e: (e.date_sent is None, e.date_sent, e.id)):
        place(email, set())
    return ordered


def apply_link_columns(email: Email, link: Link) -> None:
    email.parent_type, email.parent_id = link.parent_type, link.parent_id
    email.account_id, email.link_rule = link.account_id, link.rule


def _mail_by_identity(session: Session, identities: set[str]) -> dict[str, Email]:
    if not identities:
        return {}
    stmt = select(Email).where(Email.identity.in_(identities), Email.parent_type.is_not(None))
    return {m.identity: m for m in session.scalars(stmt)}


def _from_replied(session: Session, chain: list[str], replied: dict[str, Email]) -> Link | None:
    for ref in chain:
        mail = replied.get(ref)
        if (
            mail is not None
            and mail.parent_type
            and (link := make_link(session, mail.parent_type, mail.parent_id, "replied-mail"))
        ):
            return link
    return None


def _first_address_per_role_in_memory(session: Session, email: Email) -> list[tuple[str, str]]:
    """As `_first_address_per_role`, reading address rows from the session (no query)."""
    if getattr(email, "_address_roles", None) is not None:
        return _first_address_per_role(email)
    by_role: dict[str, int] = {}
    for recipient in sorted(email.recipients, key=lambda r: r.position):
        by_role.setdefault(recipient.role, recipient.address_id)
    out = []
    for role, rule in _ADDRESS_RULES:
        if role in by_role:
            row = session.get(EmailAddress, by_role[role])
            if row is not None:
                out.append((rule, row.lower))
    return out


def _load_people(session: Session, holders: dict[str, dict[str, list[int]]]) -> None:
    """Load the batch's Contacts and Leads in two queries, so `session.get` finds them."""
    for model, name in ((Contact, "Contact"), (Lead, "Lead")):
        ids = {i for by_type in holders.values() for i in by_type.get(name, [])}
        if ids:
            list(session.scalars(select(model).where(model.id.in_(ids))))


def _from_addresses(
    session: Session,
    roles: list[tuple[str, str]],
    holders: dict[str, dict[str, list[int]]],
    b2c: bool,
) -> Link | None:
    for rule, lower in roles:
        held = holders.get(lower, {})
        if "User" in held:
            continue
        target = _record_for_address(session, held, b2c)
        if target and (link := make_link(session, *target, rule)):
            return link
    return None


# Links the import may revise when an ancestor arrives late: rule 2 outranks them.
_REVISABLE = ("replied-mail", "sender-address", "reply-to-address", "recipient-address")


def propagate_to_orphan_replies_of(session: Session, emails: list[Email]) -> int:
    """After a batch is linked: mail that came before its ancestors is linked again by rule 2.

    A reply often arrives first (the first import walks a folder newest first) and was linked by
    an address rule, or not at all. Once a mail of its chain has a parent, `find_parent` would
    take that parent ("replied-mail"), so the reply gets it, and so on down the thread. Links by
    thread token, case, or by hand stay. Descendants are found through the indexed In-Reply-To
    and thread root, so a reply naming its ancestor only in References is found too.
    """
    changed, linked = 0, [e for e in emails if e.parent_type]
    for _ in range(100):  # each round goes one generation down; a loop of ids must end
        if not linked:
            break
        linked = _relink_descendants(session, linked)
        changed += len(linked)
    return changed


def _relink_descendants(session: Session, linked: list[Email]) -> list[Email]:
    """Mail whose chain names one of `linked`, linked again by rule 2; the ones that changed."""
    identities = {e.identity for e in linked}
    roots = identities | {e.thread_root for e in linked if e.thread_root}
    stmt = select(Email).where(
        or_(Email.in_reply_to.in_(identities), Email.thread_root.in_(roots)),
        or_(Email.parent_type.is_(None), Email.link_rule.in_(_REVISABLE)),
    )
    linked_ids = {e.id for e in linked}
    candidates = [
        m
        for m in session.scalars(stmt)
        if m.id not in linked_ids and identities & set(reference_chain(m))
    ]
    chains = {m.id: reference_chain(m) for m in candidates}
    replied = _mail_by_identity(session, {ref for chain in chains.values() for ref in chain})
    changed = []
    for mail in candidates:
        link = _from_replied(session, chains[mail.id], replied)
        if link is not None and link != _current_link(mail):
            apply_link_columns(mail, link)
            changed.append(mail)
    return changed


def _current_link(email: Email) -> Link | None:
    if email.parent_type is None:
        return None
    return Link(email.parent_type, email.parent_id, email.account_id, email.link_rule)

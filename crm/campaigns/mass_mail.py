"""Mass mail: a template sent to target lists (minus excluded lists) from an allowed account.

Its life: a draft is edited; starting it fixes the template's text and writes one recipient
row per address (the lists resolved in one INSERT ... SELECT, never loaded into memory); a
running mass mail is then queued a batch at a time (crm.campaigns.batches) at its per-hour
rate, and is complete once every recipient is queued or skipped, while the last batch may
still be in the outbox. Pause stops queuing and holds what waits in the outbox, resume
continues, cancel ends it and cancels what waits (crm.campaigns.outbox_rows); a complete
mass mail can still be paused or cancelled while some of its mail waits. The caller commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from crm.campaigns import opt_out, outbox_rows, senders, target_lists
from crm.db import utcnow
from crm.models import (
    AddressConfirmation,
    EmailAddressLink,
    EmailTemplate,
    MassMail,
    MassMailList,
    MassMailRecipient,
    TargetList,
    TargetListMember,
    User,
)
from crm.models.campaigns import (
    CANCELLED,
    COMPLETE,
    DRAFT,
    PAUSED,
    PENDING,
    PURPOSE_MASS_MAIL,
    PURPOSE_OPT_IN,
    RUNNING,
)
from crm.templating import handlebars, rendering

MAX_PER_HOUR = 100_000
DEFAULT_PER_HOUR = 1000


class MassMailError(ValueError):
    """Something a mass mail cannot do or take; the message is for the user."""


def visible_mass_mails(session: Session, user: User, limit: int = 200) -> list[MassMail]:
    stmt = select(MassMail).order_by(MassMail.id.desc()).limit(limit)
    if not user.is_admin:
        stmt = stmt.where(MassMail.created_by_id == user.id)
    return list(session.scalars(stmt))


def find(session: Session, mass_mail_id: int, user: User) -> MassMail | None:
    found = session.get(MassMail, mass_mail_id)
    if found is None or not (user.is_admin or found.created_by_id == user.id):
        return None
    return found


def usable_templates(session: Session, user: User) -> list[EmailTemplate]:
    """Active templates the user may use: own, shared by an admin, or shared with a team."""
    stmt = select(EmailTemplate).where(EmailTemplate.is_active.is_(True))
    found = session.scalars(stmt.order_by(EmailTemplate.name, EmailTemplate.id))
    return [t for t in found if _may_use(t, user)]


def _may_use(template: EmailTemplate, user: User) -> bool:
    if user.is_admin or template.is_shared or template.owner_id == user.id:
        return True
    return bool(set(user.team_ids) & {t.id for t in template.teams})


def save(session: Session, user: User, values: dict, found: MassMail | None = None) -> MassMail:
    """Create a draft or change one; `values` as crm.campaigns.forms would give them."""
    if found is not None and found.status != DRAFT:
        raise MassMailError("A mass mail that has started cannot be changed.")
    name = (values.get("name") or "").strip()
    if not name or len(name) > 255:
        raise MassMailError("Give the mass mail a name (at most 255 characters).")
    template = _template(session, values.get("template_id"), user)
    account = senders.allowed_account(session, values.get("mail_account_id"))
    if account is None:
        raise MassMailError("Choose an account that the administrator allows for mass mail.")
    per_hour = values.get("per_hour") or DEFAULT_PER_HOUR
    if not 1 <= per_hour <= MAX_PER_HOUR:
        raise MassMailError(f"The rate must be 1 to {MAX_PER_HOUR} mails per hour.")
    included, excluded = _lists(session, user, values)
    if found is None:
        found = MassMail(created_by_id=user.id, status=DRAFT)
        session.add(found)
    found.name, found.template_id, found.mail_account_id = name, template.id, account.id
    found.purpose = values.get("purpose") or PURPOSE_MASS_MAIL
    found.per_hour, found.start_at = per_hour, values.get("start_at")
    found.from_name = (values.get("from_name") or "").strip()[:320] or account.name
    found.lists = [MassMailList(list_id=i, excluded=False) for i in included] + [
        MassMailList(list_id=i, excluded=True) for i in excluded
    ]
    session.flush()
    return found


def _template(session: Session, template_id, user: User) -> EmailTemplate:
    template = session.get(EmailTemplate, template_id) if template_id else None
    if template is None or not template.is_active or not _may_use(template, user):
        raise MassMailError("Choose an active template you may use.")
    return template


def _lists(session: Session, user: User, values: dict) -> tuple[list[int], list[int]]:
    readable = {t.id for t in target_lists.visible_lists(session, user)}
    included = [i for i in dict.fromkeys(values.get("list_ids") or []) if i in readable]
    excluded = [i for i in dict.fromkeys(values.get("excluded_ids") or []) if i in readable]
    if not included:
        raise MassMailError("Choose at least one target list to send to.")
    if set(included) & set(excluded):
        raise MassMailError("A list cannot be both a target and excluded.")
    return included, excluded


def start(session: Session, found: MassMail, user: User, now: datetime | None = None) -> int:
    """Fix the text, write the recipients, and run from the start time; returns how many."""
    now = now or utcnow()
    if found.status != DRAFT:
        raise MassMailError("Only a draft can be started.")
    if not opt_out.site_url(session):
        raise MassMailError(
            "The site's public address is not set, so opt-out links cannot be made: an "
            "administrator sets it under Campaigns → Settings."
        )
    if senders.allowed_account(session, found.mail_account_id) is None:
        raise MassMailError("The account is no longer allowed for mass mail; choose another.")
    template = _template(session, found.template_id, user)
    text = rendering.text_of(template)
    try:
        rendering.check(text)
    except handlebars.TemplateError as exc:
        raise MassMailError(f"The template cannot be used: {exc}") from exc
    found.subject, found.body, found.is_html = text.subject, text.body, text.is_html
    count = _write_recipients(session, found)
    if not count:
        raise MassMailError("The target lists hold nobody with an address to send to.")
    found.status, found.started_at, found.last_error = RUNNING, now, ""
    found.next_batch_at = max(found.start_at or now, now)
    return count


def _write_recipients(session: Session, found: MassMail) -> int:
    """One row per primary address of the lists' members, in one INSERT ... SELECT."""
    columns = ["mass_mail_id", "address_id", "entity_type", "entity_id", "status", "reason"]
    session.execute(insert(MassMailRecipient).from_select(columns, _recipient_rows(found)))
    return session.scalar(select(func.count()).where(MassMailRecipient.mass_mail_id == found.id))


def expected_recipients(session: Session, found: MassMail) -> int:
    """How many recipients starting now would write (a draft's lists change until then)."""
    if not any(not x.excluded for x in found.lists):
        return 0
    return session.scalar(select(func.count()).select_from(_recipient_rows(found).subquery()))


def _recipient_rows(found: MassMail):
    """The recipient rows' values: each address once, with the first list member holding it."""
    included = [x.list_id for x in found.lists if not x.excluded]
    excluded = [x.list_id for x in found.lists if x.excluded]
    member, link = TargetListMember, EmailAddressLink
    confirmed = select(AddressConfirmation.address_id)
    firsts = (
        select(link.address_id, func.min(member.id).label("member_id"))
        .join(link, and_(link.entity_type == member.entity_type,
                         link.entity_id == member.entity_id, link.is_primary.is_(True)))
        .join(TargetList, TargetList.id == member.list_id)
        .where(member.list_id.in_(included))
        .group_by(link.address_id)
    )  # fmt: skip
    if found.purpose == PURPOSE_OPT_IN:
        firsts = firsts.where(link.address_id.not_in(confirmed))
    else:
        firsts = firsts.where(
            or_(TargetList.requires_opt_in.is_(False), link.address_id.in_(confirmed))
        )
    if excluded:
        firsts = firsts.where(link.address_id.not_in(_addresses_of_lists(excluded)))
    firsts = firsts.subquery()
    return select(
        literal(found.id), firsts.c.address_id, member.entity_type, member.entity_id,
        literal(PENDING), literal(""),
    ).join(member, member.id == firsts.c.member_id)  # fmt: skip


def _addresses_of_lists(list_ids: list[int]):
    """Every address (not only the primary) of the records in these lists."""
    member, link = TargetListMember, EmailAddressLink
    return (
        select(link.address_id)
        .join(member, and_(link.entity_type == member.entity_type,
                           link.entity_id == member.entity_id))
        .where(member.list_id.in_(list_ids))
    )  # fmt: skip


def still_sending(session: Session, found: MassMail) -> outbox_rows.Unfinished:
    return outbox_rows.unfinished(session, [found.id]).get(found.id, outbox_rows.Unfinished())


def pause(session: Session, found: MassMail, reason: str = "") -> int:
    """Stop queuing and hold what waits in the outbox; answers how many mails were held."""
    if not (found.status == RUNNING or _complete_but_queued(session, found)):
        raise MassMailError("Only a running mass mail (or one still sending) can be paused.")
    found.status, found.last_error = PAUSED, reason
    return outbox_rows.hold(session, found)


def _complete_but_queued(session: Session, found: MassMail) -> bool:
    return found.status == COMPLETE and still_sending(session, found).queued > 0


def resume(session: Session, found: MassMail, now: datetime | None = None) -> None:
    if found.status != PAUSED:
        raise MassMailError("Only a paused mass mail can be resumed.")
    now = now or utcnow()
    found.status, found.last_error = RUNNING, ""
    found.next_batch_at = max(found.next_batch_at or now, now)
    outbox_rows.release(session, found, now)


def cancel(session: Session, found: MassMail, now: datetime | None = None) -> int:
    """Stop for good: recipients not yet queued are never mailed, and mail still waiting in
    the outbox is cancelled (what a worker is sending goes on). Answers how many were."""
    ended = found.status not in (RUNNING, PAUSED, DRAFT)
    if ended and not _complete_but_queued(session, found):
        raise MassMailError("This mass mail has already ended.")
    now = now or utcnow()
    found.status, found.finished_at, found.next_batch_at = CANCELLED, now, None
    return outbox_rows.cancel(session, found, now)


def complete(found: MassMail, now: datetime) -> None:
    found.status, found.finished_at, found.next_batch_at = COMPLETE, now, None


def lists_of(session: Session, found: MassMail) -> tuple[list[TargetList], list[TargetList]]:
    ids = {x.list_id: x.excluded for x in found.lists}
    rows = session.scalars(select(TargetList).where(TargetList.id.in_(list(ids)))).all()
    return [t for t in rows if not ids[t.id]], [t for t in rows if ids[t.id]]

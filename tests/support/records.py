"""Build CRM records with addresses for linking, history and people tests."""

from __future__ import annotations

from crm.models import Account, Case, Contact, Lead, MailAccount, Opportunity, Team, User
from crm.records import addressbook


def _save(session, record, addresses=()):
    session.add(record)
    session.flush()
    if addresses:
        addressbook.set_addresses(session, record.entity_type, record.id, list(addresses))
    return record


def account(session, name="Acme", addresses=(), **kw) -> Account:
    return _save(session, Account(name=name, **kw), addresses)


def contact(session, first="Ann", last="Buyer", addresses=(), account=None, **kw) -> Contact:
    record = Contact(
        first_name=first, last_name=last, account_id=account.id if account else None, **kw
    )
    return _save(session, record, addresses)


def lead(session, first="Lee", last="Prospect", addresses=(), **kw) -> Lead:
    return _save(session, Lead(first_name=first, last_name=last, **kw), addresses)


def opportunity(session, name="Big deal", account=None, **kw) -> Opportunity:
    return _save(session, Opportunity(name=name, account_id=account.id if account else None, **kw))


def case(session, number, name="Broken", account=None, inbound=None, **kw) -> Case:
    record = Case(
        number=number,
        name=name,
        account_id=account.id if account else None,
        inbound_account_id=inbound.id if inbound else None,
        **kw,
    )
    return _save(session, record)


def group_account(
    session,
    address="support@example.com",
    user_id=None,
    distribution="direct",
    team=None,
    create_case=True,
) -> MailAccount:
    row = MailAccount(
        is_group=True,
        user_id=user_id,
        name="Support",
        email_address=address,
        create_case=create_case,
        case_distribution=distribution,
        case_team_id=team.id if team else None,
    )
    session.add(row)
    session.flush()
    return row


def team_of(session, name, user_ids) -> Team:
    team = Team(name=name)
    team.members = [session.get(User, uid) for uid in user_ids]
    session.add(team)
    session.flush()
    return team

"""The six kinds of CRM record: their form fields, list columns, search columns and order."""

from __future__ import annotations

from dataclasses import dataclass

from crm.models import Account, Case, Contact, Lead, Opportunity, Task
from crm.records.forms import Field

PRIORITIES = ("Low", "Normal", "High", "Urgent")


@dataclass(frozen=True)
class Kind:
    slug: str
    model: type
    label: str
    plural: str
    fields: tuple[Field, ...]
    columns: tuple[tuple[str, str], ...]  # (heading, cell key) on the list page
    search: tuple[str, ...]  # text columns the list search looks in
    order: tuple[str, ...]

    @property
    def entity_type(self) -> str:
        return self.model.entity_type

    @property
    def has_addresses(self) -> bool:
        return any(f.type == "emails" for f in self.fields)


EMAILS = Field("emails", "E-mail addresses", "emails")
DESCRIPTION = Field("description", "Description", "textarea", max_length=20000)
PHONE = Field("phone", "Phone", max_length=64)
PERSON = (
    Field("first_name", "First name", max_length=100),
    Field("last_name", "Last name", max_length=100),
)

KINDS: dict[str, Kind] = {
    k.slug: k
    for k in (
        Kind(
            "accounts",
            Account,
            "Account",
            "Accounts",
            (
                Field("name", "Name", required=True),
                EMAILS,
                Field("website", "Website"),
                PHONE,
                DESCRIPTION,
            ),
            (("Name", "name"), ("E-mail", "email"), ("Phone", "phone"), ("Website", "website")),
            ("name", "website", "phone"),
            ("name",),
        ),
        Kind(
            "contacts",
            Contact,
            "Contact",
            "Contacts",
            (
                *PERSON,
                Field("title", "Title", max_length=100),
                Field("account_id", "Account", "account"),
                EMAILS,
                PHONE,
                DESCRIPTION,
            ),
            (("Name", "name"), ("Account", "account"), ("E-mail", "email"), ("Phone", "phone")),
            ("first_name", "last_name", "phone"),
            ("last_name", "first_name"),
        ),
        Kind(
            "leads",
            Lead,
            "Lead",
            "Leads",
            (
                *PERSON,
                Field("account_name", "Company"),
                Field("status", "Status", "choice", choices=Lead.STATUSES),
                EMAILS,
                PHONE,
                DESCRIPTION,
            ),
            (
                ("Name", "name"),
                ("Company", "account_name"),
                ("Status", "status"),
                ("E-mail", "email"),
            ),
            ("first_name", "last_name", "account_name", "phone"),
            ("last_name", "first_name"),
        ),
        Kind(
            "opportunities",
            Opportunity,
            "Opportunity",
            "Opportunities",
            (
                Field("name", "Name", required=True),
                Field("account_id", "Account", "account"),
                Field("contact_ids", "Contacts", "contacts"),
                Field("stage", "Stage", "choice", choices=Opportunity.STAGES),
                Field("amount", "Amount", "money"),
                Field("close_date", "Close date", "date"),
                DESCRIPTION,
            ),
            (
                ("Name", "name"),
                ("Account", "account"),
                ("Stage", "stage"),
                ("Amount", "amount"),
                ("Close date", "close_date"),
            ),
            ("name",),
            ("name",),
        ),
        Kind(
            "cases",
            Case,
            "Case",
            "Cases",
            (
                Field("name", "Subject", required=True),
                Field("status", "Status", "choice", choices=Case.STATUSES),
                Field("priority", "Priority", "choice", choices=PRIORITIES),
                Field("account_id", "Account", "account"),
                Field("contact_id", "Contact", "contact"),
                DESCRIPTION,
            ),
            (
                ("Number", "number"),
                ("Subject", "name"),
                ("Status", "status"),
                ("Account", "account"),
            ),
            ("name",),
            ("-number",),
        ),
        Kind(
            "tasks",
            Task,
            "Task",
            "Tasks",
            (
                Field("name", "Name", required=True),
                Field("status", "Status", "choice", choices=Task.STATUSES),
                Field("due_at", "Due", "datetime"),
                Field("parent", "Related to", "parent"),
                DESCRIPTION,
            ),
            (("Name", "name"), ("Status", "status"), ("Due", "due_at"), ("Related to", "parent")),
            ("name",),
            ("due_at", "id"),
        ),
    )
}
KIND_OF_TYPE = {k.entity_type: k for k in KINDS.values()}

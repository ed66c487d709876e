"""CLI commands, one module per area; each module exposes `register(group)`."""

from crm.commands import campaigns, csv_import, mail_accounts, sending, templates, users

AREAS = (users, csv_import, mail_accounts, sending, campaigns, templates)


def register_commands(group) -> None:
    for module in AREAS:
        module.register(group)

"""One blueprint per area; URL prefix = module name = template folder."""

from flask import Flask

from crm.blueprints import (
    accounts,
    admin,
    auth,
    campaigns,
    compose,
    filters,
    folders,
    home,
    imports,
    inbox,
    linking,
    mail,
    notifications,
    preferences,
    records,
    templates,
)

AREAS = (
    auth, home, admin, preferences, records, imports, accounts, inbox, mail, linking, folders,
    filters, notifications, compose, campaigns, templates,
)  # fmt: skip


def register_blueprints(app: Flask) -> None:
    for module in AREAS:
        app.register_blueprint(module.bp)

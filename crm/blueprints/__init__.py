"""One blueprint per area; URL prefix = module name = template folder."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from crm.blueprints import admin, auth, home, preferences

    for module in (auth, home, admin, preferences):
        app.register_blueprint(module.bp)
    _register_optional(app)


def _register_optional(app: Flask) -> None:
    """Areas added by later work register themselves here, in a fixed order."""
    import importlib

    for name in (
        "records",
        "imports",
        "accounts",
        "inbox",
        "mail",
        "linking",
        "folders",
        "filters",
        "notifications",
    ):
        try:
            module = importlib.import_module(f"crm.blueprints.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"crm.blueprints.{name}":
                raise
            continue
        app.register_blueprint(module.bp)

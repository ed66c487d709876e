"""CLI commands, one module per area; each module exposes `register(group)`."""

import importlib

MODULES = ("users", "csv_import", "mail_accounts")


def register_commands(group) -> None:
    for name in MODULES:
        try:
            module = importlib.import_module(f"crm.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"crm.commands.{name}":
                raise
            continue
        module.register(group)

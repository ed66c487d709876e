"""Entry point: `gunicorn app:app`, `flask --app app ...`."""

import sys

from crm import create_app
from crm.config import StartupError

try:
    app = create_app()
except StartupError as exc:
    # One line that says why, instead of a traceback or Flask's "No such command 'db'".
    sys.exit(f"Mail CRM cannot start: {exc}")

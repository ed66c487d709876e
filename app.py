"""Entry point: `gunicorn app:app`, `flask --app app ...`."""

from crm import create_app

app = create_app()

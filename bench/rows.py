"""Rows for the benchmarks' bulk INSERTs: a stored mail and one user's state of it.

Only the columns a row must have get defaults; a benchmark passes what it varies.
"""

from __future__ import annotations

from datetime import datetime


def email_row(email_id: int, subject: str, body: str, when: datetime, **columns) -> dict:
    return {
        "id": email_id,
        "identity": f"bench-{email_id}@bench.example",
        "message_id": f"bench-{email_id}@bench.example",
        "references": [],
        "subject": subject,
        "date_sent": when,
        "body_text": body,
        "body_html": "",
        "snippet": body[:200],
        "address_text": "",
        "status": "Archived",
        "has_attachments": False,
        "is_auto_reply": False,
        "is_bounce": False,
        "size": 2000,
        "problems": [],
        "created_at": when,
        **columns,
    }


def state_row(email_id: int, user_id: int, when: datetime, **columns) -> dict:
    return {
        "email_id": email_id,
        "user_id": user_id,
        "folder_id": None,
        "is_read": False,
        "is_important": False,
        "in_trash": False,
        "is_outgoing": False,
        "sort_date": when,
        "created_at": when,
        **columns,
    }

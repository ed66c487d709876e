"""Email-to-case for group accounts (contract; the linking work fills it in).

Called by the import pipeline for each new Email fetched by a group account with
`create_case` on, after `linking.find_parent` ran (the email's parent may already be set).
"""

from __future__ import annotations

from sqlalchemy.orm import Session


def route_to_case(session: Session, email, mail, account) -> list[int]:
    """Create a Case or attach the mail to an existing one; return user ids who must receive it."""
    return []

"""Auto-replies of a group account to mail that opens a case, through Dovecot and SMTP."""

from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from crm.mail.parse import parse
from crm.models import Case
from crm.outbound.autoreply import reason_not_to_answer
from crm.outbound.sending import deliver_due
from tests.support.mailboxes import fetch, make_account, raw_message


@pytest.fixture
def support(imap_server, services, make_user, smtp_server):
    """A group account with email-to-case and an auto-reply: (imap user, account id)."""
    agent = make_user("agent", ["agent@example.com"])
    user = imap_server.new_user()
    account_id = make_account(
        services, agent, imap_server, user, is_group=True, email="support@example.com",
        name="ACME Support", create_case=True, case_distribution="direct", auto_reply=True,
        auto_reply_text="Case [#{number}] is open.", smtp_host=smtp_server.host,
        smtp_port=smtp_server.port, smtp_security="none", smtp_auth=False,
    )  # fmt: skip
    return user, account_id


def _arrive(services, imap_server, support, **message):
    imap_server.append(support[0], raw_message(to="support@example.com", **message))
    assert fetch(services, support[1]).error is None
    return deliver_due(services)


def test_a_new_case_is_answered_once_per_sender(services, imap_server, support, smtp_server):
    [outcome] = _arrive(services, imap_server, support, subject="Printer broken",
                        message_id="<ask@customer.example>")  # fmt: skip
    assert outcome.state == "sent"
    [reply] = smtp_server.messages
    assert reply["rcpt_tos"] == ["sam@customer.example"]
    parsed = message_from_bytes(reply["data"], policy=policy.default)
    with services.session() as session:
        case = session.scalars(select(Case)).one()
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["In-Reply-To"] == "<ask@customer.example>"
    assert f"[#{case.number}]" in parsed["Subject"]
    assert f"Case [#{case.number}] is open." in parsed.get_body(("plain",)).get_content()
    # The same sender opens another case at once: no second auto-reply (one per day).
    assert _arrive(services, imap_server, support, subject="Also the scanner") == []
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize(
    "headers, sender",
    [
        ({"Auto-Submitted": "auto-replied"}, "Bot <bot@customer.example>"),
        ({"List-Id": "<news.customer.example>"}, "News <news@customer.example>"),
        ({"Precedence": "bulk"}, "Shop <shop@customer.example>"),
        ({}, "Agent <agent@example.com>"),  # our own user
        ({}, "Support <support@example.com>"),  # the group account itself
    ],
)
def test_machine_list_and_own_mail_get_no_auto_reply(
    services, imap_server, support, smtp_server, headers, sender
):
    assert _arrive(services, imap_server, support, from_=sender, headers=headers) == []
    assert smtp_server.messages == []


def test_the_rules_as_a_pure_function():
    ours = {"support@example.com"}
    bounce = parse(
        b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--b--\r\n"
    )
    assert reason_not_to_answer(bounce, ours) == "bounce"
    human = parse(b"From: ann@customer.example\r\nSubject: Hi\r\n\r\nHello\r\n")
    assert reason_not_to_answer(human, ours) is None

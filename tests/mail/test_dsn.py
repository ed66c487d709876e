"""crm.mail.dsn: delivery reports read from real-world-shaped bounces, delay warnings and the
plain-text bounces of older MTAs; ordinary mail is no report; hostile input never raises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crm.mail.dsn import DeliveryReport, might_be_report, read_report
from crm.mail.parse import parse

CORPUS = Path(__file__).parent.parent / "corpus"


def _crlf(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", "\r\n").encode()


# Postfix's delay warning: a standard report with Action: delayed.
POSTFIX_DELAY = _crlf("""
Return-Path: <>
Message-ID: <20240329110000.DEF34@mx.crm.example>
Date: Fri, 29 Mar 2024 14:00:00 +0100 (CET)
From: MAILER-DAEMON@mx.crm.example (Mail Delivery System)
To: sales@crm.example
Subject: Delayed Mail (still being retried)
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="DEF34.1711717200/mx.crm.example"

--DEF34.1711717200/mx.crm.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.crm.example.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

<slow@greylist.example>: host mx.greylist.example said: 451 4.7.1 Try again later

--DEF34.1711717200/mx.crm.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.crm.example
X-Postfix-Queue-ID: DEF34
Arrival-Date: Fri, 29 Mar 2024 10:00:00 +0100 (CET)

Final-Recipient: rfc822; slow@greylist.example
Original-Recipient: rfc822;slow@greylist.example
Action: delayed
Status: 4.7.1
Remote-MTA: dns; mx.greylist.example
Diagnostic-Code: smtp; 451 4.7.1 Try again
    later
Will-Retry-Until: Fri, 3 Apr 2024 10:00:00 +0100 (CET)

--DEF34.1711717200/mx.crm.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Message-ID: <offer-7@crm.example>
Date: Fri, 29 Mar 2024 09:59:50 +0100
From: Sales <sales@crm.example>
To: slow@greylist.example
Subject: =?utf-8?q?Ponuka_=C4=8D=2E_7?=

--DEF34.1711717200/mx.crm.example--
""")

# One report, two recipients: one failed for good, one delayed; the copy as message/rfc822.
MIXED = _crlf("""
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: sales@crm.example
Subject: Delivery Status Notification (Failure)
Message-ID: <report-1@mx.google.example>
Date: Fri, 29 Mar 2024 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Address not found.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com

Final-Recipient: rfc822; <Gone@Example.ORG>
Action: failed
Status: 5.1.1 (bad destination mailbox address)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist.

Final-Recipient: rfc822; later@example.org
Action: delayed
Status: 4.4.1
--B
Content-Type: message/rfc822

Message-ID: <Mass-1@CRM.Example>
From: sales@crm.example
To: Gone@Example.ORG, later@example.org
Subject: Newsletter

Hello.
--B--
""")

QMAIL = _crlf("""
Return-Path: <>
From: MAILER-DAEMON@mail.example.net
To: sales@crm.example
Subject: failure notice
Date: 29 Mar 2024 10:00:00 -0000
Message-ID: <qmail-1@mail.example.net>

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.org>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown
Giving up on 192.0.2.1.

--- Below this line is a copy of the message.

Return-Path: <sales@crm.example>
Message-ID: <quote-5@crm.example>
From: sales@crm.example
To: nobody@example.org
Subject: Quote 5

Here is quote 5.
""")

EXIM = _crlf("""
Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: sales@crm.example
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1exim-0001@mx.example.net>
X-Failed-Recipients: nobody@example.org
Auto-Submitted: auto-replied
Date: Fri, 29 Mar 2024 10:00:00 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  nobody@example.org
    SMTP error from remote mail server after RCPT TO:<nobody@example.org>:
    host mx.example.org [192.0.2.1]: 550 5.1.1 User unknown
  other@example.org
    all relevant MX records point to non-existent hosts

------ This is a copy of the message, including all the headers. ------

Return-path: <sales@crm.example>
Message-ID: <quote-6@crm.example>
From: sales@crm.example
To: nobody@example.org, other@example.org
Subject: Quote 6

Here is quote 6.
""")

EXIM_DELAY = _crlf("""
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: sales@crm.example
Subject: Warning: message 1exim-0002 delayed 24 hours
Message-Id: <E1exim-0002@mx.example.net>
Auto-Submitted: auto-replied
Date: Sat, 30 Mar 2024 10:00:00 +0000

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mx.example.net.

The message identifier is:     1exim-0002
The subject of the message is: Quote 8

The address to which the message has not yet been delivered is:

  slow@example.org
    Delay reason: SMTP error from remote mail server after RCPT TO:<slow@example.org>:
    host mx.example.org [192.0.2.1]: 451 4.7.1 Greylisted

No action is required on your part. Delivery attempts will continue for
some time, and this warning may be repeated at intervals if the message
remains undelivered.
""")

# Non-standard: the RFC 3464 fields written into the text, the failed mail's headers attached.
FIELDS_IN_TEXT = _crlf("""
From: "Mail Delivery" <postmaster@legacy.example>
To: sales@crm.example
Subject: Undeliverable: Quote 9
Message-ID: <legacy-1@legacy.example>
Date: Fri, 29 Mar 2024 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="L"

--L
Content-Type: text/plain

Your message could not be delivered.

Final-Recipient: rfc822;closed@legacy.example
Action: failed
Status: 5.2.1
Diagnostic-Code: smtp;550 5.2.1 Mailbox disabled
--L
Content-Type: text/rfc822-headers

Message-ID: <quote-9@crm.example>
From: sales@crm.example
To: closed@legacy.example
Subject: Quote 9
--L--
""")

# Exchange-ish: prose only, the failed mail attached; the recipient is the one it names.
PROSE_WITH_COPY = _crlf("""
From: postmaster@corp.example
To: sales@crm.example
Subject: Undeliverable: Quote 10
Message-ID: <ndr-1@corp.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="X"

--X
Content-Type: text/plain

Your message did not reach some or all of the intended recipients.

      Subject:  Quote 10
      Sent:     29.3.2024 10:00

The following recipient(s) cannot be reached:

      Jan Novak on 29.3.2024 10:01
            The e-mail account does not exist at the organization this message was sent to.
            <mail.corp.example #5.1.1 smtp;550 5.1.1 <jan.novak@corp.example>... User unknown>
--X
Content-Type: message/rfc822

Message-ID: <quote-10@crm.example>
From: sales@crm.example
To: Jan Novak <jan.novak@corp.example>, boss@corp.example
Subject: Quote 10

Hi.
--X--
""")

READ_RECEIPT = _crlf("""
From: jan@corp.example
To: sales@crm.example
Subject: Read: Quote 10
Message-ID: <mdn-1@corp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="R"

--R
Content-Type: text/plain

Your message was read.
--R
Content-Type: message/disposition-notification

Final-Recipient: rfc822; jan@corp.example
Original-Message-ID: <quote-10@crm.example>
Disposition: manual-action/MDN-sent-manually; displayed
--R--
""")

FORWARD_FROM_A_PERSON = _crlf("""
From: Jana <jana@customer.example>
To: sales@crm.example
Subject: Fwd: undeliverable?
Message-ID: <fwd-1@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="F"

--F
Content-Type: text/plain

My mail to bob@customer.example could not be delivered, see attached.
--F
Content-Type: message/rfc822

Message-ID: <x-1@customer.example>
From: jana@customer.example
To: bob@customer.example
Subject: Hi

Hi.
--F--
""")

POSTMASTER_NEWS = _crlf("""
From: postmaster@example.org
To: sales@crm.example
Subject: Planned maintenance on Saturday
Message-ID: <news-1@example.org>

The mail server will be down on Saturday from 8 to 10.
""")


def test_postfix_bounce_from_the_corpus():
    report = read_report((CORPUS / "bounce_postfix.eml").read_bytes())
    assert report.kind == "bounce" and report.standard
    assert report.original_message_id == "quote-99@crm.example"
    assert report.original_subject == "Your quote"
    assert report.reporting_mta == "mx.crm.example"
    (r,) = report.recipients
    assert (r.address, r.action, r.status) == ("nobody@nowhere.example", "failed", "5.1.1")
    assert r.diagnostic == "550 5.1.1 User unknown"
    assert r.is_hard and not r.is_delay


def test_a_report_without_the_failed_mail_names_no_original():
    report = read_report((CORPUS / "bounce_mailer_daemon_mixed.eml").read_bytes())
    assert report.original_message_id is None
    (r,) = report.recipients
    assert (r.address, r.action, r.status) == ("gone@customer.example", "failed", "5.0.0")


def test_message_id_quoted_in_the_text_when_the_copy_has_none():
    # python_msg_16: the copy is attached too; the text quotes the same header
    report = read_report((CORPUS / "python_msg_16.eml").read_bytes())
    assert report.original_message_id == "002001c144a6$8752e060$56104586@oxy.edu"
    assert [(r.address, r.status) for r in report.recipients] == [
        ("jangel1@cougar.noc.ucla.edu", "5.0.0")
    ]


def test_many_recipients_in_one_report():
    report = read_report((CORPUS / "python_msg_43.eml").read_bytes())
    assert len(report.recipients) == 11
    assert {r.status for r in report.recipients} == {"5.7.1"}
    assert report.recipients[0].diagnostic.startswith("550 5.7.1 Message content rejected")


def test_delay_warning_is_a_delay_not_a_bounce():
    report = read_report(POSTFIX_DELAY)
    assert report.kind == "delay"
    (r,) = report.recipients
    assert (r.address, r.action, r.status) == ("slow@greylist.example", "delayed", "4.7.1")
    assert r.is_delay and not r.is_hard
    assert r.diagnostic == "451 4.7.1 Try again later"  # folded line unfolded, type dropped
    assert r.remote_mta == "mx.greylist.example"
    assert r.original == ""  # the same as Final-Recipient
    # the failed mail's headers (text/rfc822-headers), its subject decoded
    assert report.original_message_id == "offer-7@crm.example"
    assert report.original_subject == "Ponuka č. 7"


def test_failed_and_delayed_recipients_in_one_report():
    report = read_report(MIXED)
    assert report.kind == "bounce"
    assert report.original_message_id == "Mass-1@crm.example"  # normalised: domain lower-cased
    gone, later = report.recipients
    assert (gone.address, gone.status, gone.is_hard) == ("Gone@example.org", "5.1.1", True)
    assert (later.action, later.status, later.is_hard) == ("delayed", "4.4.1", False)


def test_qmail_bounce():
    report = read_report(QMAIL)
    assert report.kind == "bounce" and not report.standard
    assert report.original_message_id == "quote-5@crm.example"
    assert report.original_subject == "Quote 5"
    (r,) = report.recipients
    assert (r.address, r.action, r.status) == ("nobody@example.org", "failed", "5.1.1")
    assert "Recipient address rejected" in r.diagnostic


def test_exim_bounce():
    report = read_report(EXIM)
    assert report.original_message_id == "quote-6@crm.example"
    nobody, other = report.recipients
    assert (nobody.address, nobody.status) == ("nobody@example.org", "5.1.1")
    assert nobody.is_hard
    assert nobody.diagnostic.startswith("SMTP error from remote mail server")
    # no code at all: failed (the report says so) but not known to be permanent
    assert (other.address, other.action, other.status) == ("other@example.org", "failed", "")
    assert not other.is_hard


def test_exim_delay_warning():
    report = read_report(EXIM_DELAY)
    assert report.kind == "delay"
    (r,) = report.recipients
    assert (r.address, r.action, r.status) == ("slow@example.org", "delayed", "4.7.1")


def test_fields_in_the_text_and_attached_headers():
    report = read_report(FIELDS_IN_TEXT)
    assert not report.standard
    assert report.original_message_id == "quote-9@crm.example"
    (r,) = report.recipients
    assert (r.address, r.action, r.status) == ("closed@legacy.example", "failed", "5.2.1")
    assert r.diagnostic == "550 5.2.1 Mailbox disabled"


def test_prose_bounce_names_the_returned_mails_recipient():
    report = read_report(PROSE_WITH_COPY)
    assert report.original_message_id == "quote-10@crm.example"
    (r,) = report.recipients  # boss@corp.example was on the mail, but the text does not name it
    assert (r.address, r.action, r.status) == ("jan.novak@corp.example", "failed", "5.1.1")


def test_x_failed_recipients_alone():
    raw = _crlf("""
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: sales@crm.example
Subject: Mail delivery failed
X-Failed-Recipients: a@example.org, b@example.org
In-Reply-To: <quote-11@crm.example>
Message-ID: <E1-3@mx.example.net>

Something went wrong: 550 5.1.1 no such user.
""")
    report = read_report(raw)
    assert [r.address for r in report.recipients] == ["a@example.org", "b@example.org"]
    assert {r.action for r in report.recipients} == {"failed"}
    assert report.original_message_id == "quote-11@crm.example"  # the report's In-Reply-To


@pytest.mark.parametrize(
    "raw",
    [READ_RECEIPT, FORWARD_FROM_A_PERSON, POSTMASTER_NEWS],
    ids=["read receipt", "forward from a person", "postmaster news"],
)
def test_not_a_report(raw):
    assert read_report(raw) is None


def test_no_other_corpus_mail_is_a_report():
    reports = {
        p.name for p in sorted(CORPUS.glob("*.eml")) if read_report(p.read_bytes()) is not None
    }
    assert reports == {
        "bounce_postfix.eml",
        "bounce_mailer_daemon_mixed.eml",
        "python_msg_16.eml",
        "python_msg_43.eml",
    }


def test_every_corpus_bounce_is_a_report():
    for path in sorted(CORPUS.glob("*.eml")):
        raw = path.read_bytes()
        if parse(raw).is_bounce:
            assert isinstance(read_report(raw), DeliveryReport), path.name


def test_might_be_report_is_true_for_every_report():
    for raw in (MIXED, POSTFIX_DELAY, QMAIL, EXIM, EXIM_DELAY, FIELDS_IN_TEXT, PROSE_WITH_COPY):
        assert might_be_report(parse(raw))
    assert not might_be_report(parse(FORWARD_FROM_A_PERSON))


@pytest.mark.parametrize("seed", range(20))
def test_hostile_input_never_raises(seed):
    rng = random.Random(seed)
    base = bytearray(MIXED if seed % 2 else EXIM)
    for _ in range(rng.randint(1, 40)):  # flip, cut and splice bytes
        at = rng.randrange(len(base))
        choice = rng.random()
        if choice < 0.4:
            base[at] = rng.randrange(256)
        elif choice < 0.7:
            del base[at : at + rng.randint(1, 50)]
        else:
            base[at:at] = rng.randbytes(rng.randint(1, 30))
    result = read_report(bytes(base))
    assert result is None or isinstance(result, DeliveryReport)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x",
        b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;\r\nStatus: x",
        b"From: MAILER-DAEMON@x\r\nSubject: Undelivered\r\n\r\n" + b"<a@b>:\n" * 5000,
    ],
)
def test_degenerate_input(raw):
    result = read_report(raw)
    assert result is None or isinstance(result, DeliveryReport)

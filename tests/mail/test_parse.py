"""The parse seam: a corpus of real-world-shaped .eml files with expected values, read by both the
fast and the careful reader, plus generated hostile messages. Parsing must never raise."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, text

from crm.mail import mime
from crm.mail.parse import (
    ParsedMail,
    header_block,
    html_to_text,
    identity_for,
    normalise_message_id,
    parse,
    parse_headers,
    snippet,
)

CORPUS = Path(__file__).parent.parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
FILES = sorted(p.name for p in CORPUS.glob("*.eml"))


@pytest.fixture(params=["auto", "careful"])
def reader(request, monkeypatch):
    """Run a test through the normal path, and again with the careful (compat32) reader only."""
    if request.param == "careful":

        def refuse(raw, notes):
            raise mime.Suspicious("forced")

        monkeypatch.setattr(mime, "fast_parts", refuse)
    return request.param


def read(name: str) -> ParsedMail:
    return parse((CORPUS / name).read_bytes())


def text_fields(mail: ParsedMail) -> list[str]:
    names = [n for a in (mail.to, mail.cc, mail.bcc, mail.reply_to) for n, _ in a]
    return [
        mail.subject,
        mail.text,
        mail.html,
        *(mail.from_ or ()),
        *names,
        *(a.filename for a in mail.attachments),
        *(v for _, v in mail.headers),
        *mail.problems,
    ]


def test_every_corpus_file_has_expectations():
    assert len(FILES) >= 30
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_message_parses_to_expected_values(name, reader):
    mail = read(name)
    want = EXPECTED[name]
    if "subject" in want:
        assert mail.subject == want["subject"]
    if "from" in want:
        assert mail.from_ == (tuple(want["from"]) if want["from"] else None)
    if "message_id" in want:
        assert mail.message_id == want["message_id"]
    if "identity_prefix" in want:
        assert mail.identity.startswith(want["identity_prefix"])
    for role in ("to", "cc", "bcc", "reply_to"):
        if f"{role}_count" in want:
            assert len(getattr(mail, role)) == want[f"{role}_count"]
    if "date" in want:
        assert mail.date == (datetime.fromisoformat(want["date"]) if want["date"] else None)
    for key in ("text", "html", "in_reply_to", "is_auto_reply", "is_bounce"):
        if key in want:
            assert getattr(mail, key) == want[key], key
    if "references" in want:
        assert list(mail.references) == want["references"]
    for fragment in want.get("text_contains", []):
        assert fragment in mail.text
    for fragment in want.get("text_lacks", []):
        assert fragment not in mail.text
    for fragment in want.get("html_contains", []):
        assert fragment in mail.html
    if "attachments" in want:
        assert [a.filename for a in mail.attachments] == want["attachments"]
    if "attachment_count" in want:
        assert len(mail.attachments) == want["attachment_count"]
    if "inline" in want:
        assert [a.content_id for a in mail.attachments if a.is_inline] == want["inline"]
    for filename, start in want.get("payload_starts", {}).items():
        payload = next(a.payload for a in mail.attachments if a.filename == filename)
        assert payload.startswith(start.encode())
    if "problems" in want:
        assert bool(mail.problems) == want["problems"], mail.problems


@pytest.mark.parametrize("name", FILES)
def test_corpus_text_is_storable_text(name, reader):
    mail = read(name)
    assert mail.identity and len(mail.identity) <= 500
    assert mail.size == (CORPUS / name).stat().st_size
    for value in text_fields(mail):
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogates


def test_corpus_text_round_trips_through_the_database(db):
    values = [v for name in FILES for v in text_fields(read(name)) if v]
    echo = text("SELECT CAST(:v AS TEXT)").bindparams(bindparam("v"))
    for value in values:
        assert db.execute(echo, {"v": value}).scalar_one() == value


# --- recognising machine mail ------------------------------------------------------------


def headers(*lines: str, body: str = "Hello.\n") -> bytes:
    return ("\n".join(["From: a@example.com", "Subject: s", *lines]) + "\n\n" + body).encode()


@pytest.mark.parametrize(
    "line, expected",
    [
        ("Auto-Submitted: auto-replied", True),
        ("Auto-Submitted: auto-generated; owner-email=x@y", True),
        ("Auto-Submitted: no", False),
        ("Auto-Submitted: No ", False),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: Out of office", True),
        ("Precedence: bulk", True),
        ("Precedence: junk", True),
        ("Precedence: list", True),
        ("Precedence: first-class", False),
        ("X-Mailer: Outlook", False),
    ],
)
def test_auto_replies_are_recognised_by_their_headers(line, expected):
    assert parse(headers(line)).is_auto_reply is expected
    assert parse_headers(header_block(headers(line))).is_auto_reply is expected


def dsn_mixed(sender: str, return_path: str) -> bytes:
    return (
        f"From: {sender}\nReturn-Path: {return_path}\nSubject: failure\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\n'
        "It failed.\n--B\nContent-Type: message/delivery-status\n\nAction: failed\n--B--\n"
    ).encode()


@pytest.mark.parametrize(
    "sender, return_path, expected",
    [
        ("MAILER-DAEMON@mx.example", "<x@y.example>", True),
        ("Postmaster <postmaster@mx.example>", "<x@y.example>", True),
        ("someone@example.com", "<>", True),
        ("someone@example.com", "<someone@example.com>", False),
    ],
)
def test_bounces_need_a_delivery_status_part_and_a_machine_sender(sender, return_path, expected):
    assert parse(dsn_mixed(sender, return_path)).is_bounce is expected


def test_mailer_daemon_without_delivery_status_is_not_a_bounce():
    assert not parse(headers("Return-Path: <>", "From: MAILER-DAEMON@mx.example")).is_bounce


def test_a_delivery_report_is_a_bounce_from_its_headers_alone():
    raw = (CORPUS / "bounce_postfix.eml").read_bytes()
    assert parse_headers(header_block(raw)).is_bounce


# --- headers only ------------------------------------------------------------------------


def test_parse_headers_reads_the_same_header_fields_without_a_body():
    raw = (CORPUS / "outlook_style.eml").read_bytes()
    full, head = parse(raw), parse_headers(header_block(raw))
    assert head.header_only and not full.header_only
    for field in ("identity", "message_id", "subject", "from_", "to", "date", "in_reply_to"):
        assert getattr(head, field) == getattr(full, field)
    assert head.text == "" and head.attachments == ()
    assert head.header("thread-topic") == "Angebot 2024"


def test_headers_keep_their_order_and_are_decoded():
    mail = read("plain_ascii.eml")
    names = [k for k, _ in mail.headers]
    assert names[:3] == ["Return-Path", "Received", "Message-ID"]
    assert "\tby mail.crm.example" in mail.header("Received")
    assert read("encoded_word_space.eml").header("Subject") == "Re: Продление договора"


def test_a_message_over_the_size_cap_keeps_only_its_headers():
    raw = headers("Message-ID: <big@x.example>", body="x" * 2048)
    mail = parse(raw, max_bytes=1024 * 1024 + 1)
    assert not mail.header_only and mail.text
    mail = parse(raw + b"y" * (1024 * 1024), max_bytes=1024 * 1024)
    assert mail.header_only and mail.text == "" and mail.message_id == "big@x.example"
    assert mail.problems == ("Message is larger than 1 MB: only its headers were imported",)


def test_default_size_cap_is_25_mb():
    raw = headers(body="a" * (25 * 1024 * 1024))
    mail = parse(raw)
    assert mail.header_only
    assert mail.problems == ("Message is larger than 25 MB: only its headers were imported",)


# --- hostile structure (generated) -------------------------------------------------------


def nested(levels: int) -> bytes:
    head = "From: a@example.com\nSubject: deep\n"
    body = "Content-Type: text/plain\n\ninnermost text\n"
    for level in reversed(range(levels)):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\n\n'
            f"--b{level}\nContent-Type: text/plain\n\nlevel {level}\n"
            f"--b{level}\n{body}--b{level}--\n"
        )
    return (head + body).encode()


@pytest.mark.parametrize("levels", [30, 300])
def test_deep_nesting_is_cut_with_a_note_and_keeps_outer_text(levels, reader):
    mail = parse(nested(levels))
    assert mail.subject == "deep"
    assert mail.text.startswith("level 0")
    assert "innermost text" not in mail.text
    assert any("nested deeper" in p or "could not be parsed" in p for p in mail.problems)


def test_nesting_within_the_bound_is_read_completely(reader):
    mail = parse(nested(15))
    assert "innermost text" in mail.text and "level 14" in mail.text
    assert mail.problems == ()


def test_a_thousand_parts_are_cut_at_the_part_limit(reader):
    parts = "".join(
        f'--P\nContent-Type: application/octet-stream; name="f{i}.bin"\n\n{i}\n'
        for i in range(1000)
    )
    raw = f'From: a@example.com\nContent-Type: multipart/mixed; boundary="P"\n\n{parts}--P--\n'
    mail = parse(raw.encode())
    assert len(mail.attachments) == mime.MAX_PARTS - 1  # the container counts as a part
    assert mail.attachments[0].filename == "f0.bin"
    assert any("More than 500 MIME parts" in p for p in mail.problems)


def test_decoded_size_beyond_the_budget_is_dropped_with_a_note(monkeypatch, reader):
    monkeypatch.setattr(mime, "MAX_DECODED", 1000)
    parts = "".join(
        f'--P\nContent-Type: application/octet-stream; name="f{i}.bin"\n\n{"x" * 600}\n'
        for i in range(3)
    )
    raw = f'From: a@example.com\nContent-Type: multipart/mixed; boundary="P"\n\n{parts}--P--\n'
    mail = parse(raw.encode())
    assert [len(a.payload) > 0 for a in mail.attachments] == [True, False, False]
    assert any("were not kept" in p for p in mail.problems)


def test_a_huge_subject_is_shortened_with_a_note():
    raw = headers("Message-ID: <huge@x.example>", f"X-Subject-Copy: {'w' * 10}").replace(
        b"Subject: s", b"Subject: " + b"word " * 40_000
    )
    mail = parse(raw)
    assert len(mail.subject) == 998 and mail.subject.startswith("word word")
    assert mail.message_id == "huge@x.example" and mail.text == "Hello.\n"
    assert any("subject" in p for p in mail.problems)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 100,
        b"\xff\xfe" * 1000,
        b":\n:\n: :",
        b"Content-Type: multipart/mixed\n\n--\n--\n",
        b'Content-Type: multipart/mixed; boundary=""\n\n--\n',
        b"Content-Type: text/plain; charset=base64\n\nhello \xff",
        b"Content-Type: text/plain; charset=zlib\n\nx\x9c\x00",
        b"Subject: =?utf-8?B?====?= =?x?q?=ZZ?= =?utf-8?Q??=\n\nx",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\n\n",
        b'From: <<<@@@>>>, "unterminated\n\n',
        b"Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n!!!\nend\n",
        b"Content-Type: message/rfc822\n\n",
    ],
)
def test_garbage_never_raises(raw, reader):
    mail = parse(raw)
    assert mail.identity
    for value in text_fields(mail):
        assert "\x00" not in value
        value.encode("utf-8")


# --- the contract's helpers --------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("<Abc.123@Example.COM>", "Abc.123@example.com"),
        ("  <x@y>  ", "x@y"),
        ("bare@Host.Example", "bare@host.example"),
        ("<a b@c>", None),
        ("", None),
        (None, None),
    ],
)
def test_message_ids_are_normalised(value, expected):
    assert normalise_message_id(value) == expected


def test_header_block_ends_at_the_first_empty_line_for_both_line_endings():
    lf = b"From: a@b.c\nSubject: x\n\nbody one"
    crlf = b"From: a@b.c\r\nSubject: x\r\n\r\nbody two"
    assert header_block(lf) == b"From: a@b.c\nSubject: x"
    assert header_block(crlf) == b"From: a@b.c\r\nSubject: x"


def test_identity_without_message_id_hashes_the_whole_message():
    """Only byte-identical copies share an identity (issue 14): same headers, other body, other
    mail."""
    lf = b"From: a@b.c\nSubject: x\n\nbody one"
    assert identity_for(None, lf) != identity_for(None, lf + b"more body")
    assert identity_for(None, lf) == identity_for(None, bytes(lf))
    assert identity_for(None, lf) == "hash:" + hashlib.sha256(lf).hexdigest()
    assert parse(lf).identity == identity_for(None, lf)
    assert identity_for("id@x", lf) == "id@x"


def test_in_reply_to_takes_the_first_id_and_references_keep_order_without_duplicates():
    raw = headers(
        "In-Reply-To: <b@x> <c@x>",
        "References: <a@X> <b@x>\n <a@x>\t<b@X>",
    )
    mail = parse(raw)
    assert mail.in_reply_to == "b@x"
    assert mail.references == ("a@x", "b@x")


def test_dates_become_naive_utc():
    assert parse(headers("Date: Tue, 05 Mar 2024 09:14:01 +0100")).date == datetime(
        2024, 3, 5, 8, 14, 1
    )
    assert parse(headers("Date: Tue, 05 Mar 2024 09:14:01 -0000")).date == datetime(
        2024, 3, 5, 9, 14, 1
    )


def test_snippet_collapses_whitespace():
    assert snippet("a\n\n  b\tc", 4) == "a b "


def test_html_to_text_drops_comments_scripts_and_styles():
    html = (
        "<html><head><title>T</title><style>p{}</style><!--[if mso]><xml><o:x>96</o:x></xml>"
        "<![endif]--></head><body><p>Hi &amp; bye</p><script>x</script><div>Two</div></body></html>"
    )
    assert html_to_text(html) == "Hi & bye\nTwo"


@pytest.mark.parametrize("chunk", ["<style>", "<!--", "<script><script>", "<a "])
def test_html_to_text_stays_linear_on_unclosed_tags(chunk):
    started = time.perf_counter()
    html_to_text(chunk * 200_000)
    assert time.perf_counter() - started < 2


def test_a_text_attachment_keeps_its_declared_charset_and_its_bytes():
    """Forwarding or downloading the file later labels it right (Czech ISO-8859-2 and
    Windows-1250 often read alike, so detection alone could not tell them apart)."""
    note = "Poznámky: příliš žluťoučký kůň".encode("iso-8859-2")
    raw = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n--b\r\n"
        b'Content-Type: text/plain; charset="ISO-8859-2"; name="pozn.txt"\r\n'
        b'Content-Disposition: attachment; filename="pozn.txt"\r\n'
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + note + b"\r\n--b\r\n"
        b'Content-Type: application/pdf; name="f.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    text_file, pdf = parse(raw).attachments
    assert (text_file.content_type, text_file.charset) == ("text/plain", "iso-8859-2")
    assert text_file.payload.rstrip(b"\r\n") == note
    assert pdf.charset is None

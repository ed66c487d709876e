"""Outgoing messages to bytes: the MIME tree, exact round trips, and no header injection."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crm.mail.compose import (
    HeaderInjection,
    InvalidAddress,
    Mailbox,
    OutgoingAttachment,
    OutgoingMessage,
    bracketed_id,
    check_headers,
    envelope_recipients,
    html_to_text,
    to_bytes,
)
from crm.mail.parse import parse

SENDER = Mailbox("Ján Novák", "jan@example.sk")
TO = (Mailbox("Jürgen Groß", "juergen@example.de"),)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4

SUBJECTS = [
    "Žltý kôň",
    "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "Grüße aus München",
    "Zażółć gęślą jaźń",
    "Re: Faktúra č. 2024/001 – Žltý kôň, s.r.o.",
    "Plain ASCII subject",
    "Spaces  kept   inside  and  Žltý  kôň  too",
    ("Příliš žluťoučký kůň úpěl ďábelské ódy, " * 6).strip(),
    "A long ASCII subject " * 8 + "that has to be folded somewhere",
    "=?utf-8?q?not_an_encoded_word?= typed by a user",
    "回复: 会议 Termín schůzky",
    "Tabs\tand punctuation: (a) [b] <c> \"d\" 'e' ? = _ %",
    "x" * 950,
]
NAMES = [
    "Ján Novák",
    "Příliš Žluťoučký",
    "Jürgen Groß",
    "Zażółć Gęślą",
    "Novák, Jan",
    'Anna "Ani" Nowak',
    "O'Brien",
    "back\\slash",
    "Žltý kôň, s.r.o. – obchodné oddelenie s veľmi dlhým názvom, ktorý sa musí zalomiť",
    "=?utf-8?q?looks_encoded?=",
]
TEXTS = [
    "Dobrý deň,\n\nposielam faktúru.\nS pozdravom\nJán\n",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.\n",
    "Grüße,\nZażółć gęślą jaźń\n",
    "plain ascii\nwith lines\n",
    "trailing spaces stay   \n\tand tabs\n",
    "Žltý kôň " * 300 + "\n",  # one line far longer than 998 octets
    "From the start of a line\n.a dot line\n",
]
FILENAMES = [
    "faktura.pdf",
    "Faktúra č. 1.pdf",
    "Příliš žluťoučký kůň.pdf",
    "Grüße.pdf",
    "Zażółć gęślą jaźń – bardzo długa nazwa pliku, która musi zostać podzielona.pdf",
    'quote " and space.pdf',
]


def message(**changes) -> OutgoingMessage:
    fields = {"sender": SENDER, "to": TO, "subject": "Test", "text": "Hello\n"}
    fields.update(changes)
    return OutgoingMessage(**fields)


def stdlib(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def content(part) -> str:
    """A text part's content with its canonical CRLF line breaks read as LF (RFC 2046 4.1.1)."""
    return part.get_content().replace("\r\n", "\n")


def only_attachment(parsed):
    (attachment,) = parsed.iter_attachments()
    return attachment


def shape(part) -> object:
    """The MIME tree as nested (type, [children]) / type."""
    if part.is_multipart():
        return (part.get_content_type(), [shape(p) for p in part.iter_parts()])
    return part.get_content_type()


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


# --- tree shapes ---------------------------------------------------------------------------------


def test_text_only_message_is_one_text_plain_part():
    parsed = stdlib(to_bytes(message(text="Žltý kôň\n")))
    assert shape(parsed) == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    assert content(parsed) == "Žltý kôň\n"


def test_html_message_is_alternative_with_plain_text_made_from_the_html():
    raw = to_bytes(message(text="", html="<p>Grüße</p><p>Zażółć <b>gęślą</b> jaźń</p>"))
    parsed = stdlib(raw)
    assert shape(parsed) == ("multipart/alternative", ["text/plain", "text/html"])
    text, html = parsed.iter_parts()
    assert content(text) == "Grüße\n\nZażółć gęślą jaźń\n"
    assert content(html) == "<p>Grüße</p><p>Zażółć <b>gęślą</b> jaźń</p>\n"


def test_html_message_keeps_the_plain_text_it_was_given():
    parsed = stdlib(to_bytes(message(text="Own text\n", html="<p>Other</p>")))
    assert content(next(parsed.iter_parts())) == "Own text\n"


def test_inline_image_puts_the_html_in_related_inside_alternative():
    logo = OutgoingAttachment(
        "logo.png", "image/png", PNG, content_id="logo@example.sk", inline=True
    )
    raw = to_bytes(message(html='<p>Hi</p><img src="cid:logo@example.sk">', attachments=(logo,)))
    parsed = stdlib(raw)
    assert shape(parsed) == (
        "multipart/alternative",
        ["text/plain", ("multipart/related", ["text/html", "image/png"])],
    )
    image = list(parsed.walk())[-1]
    assert image["Content-ID"] == "<logo@example.sk>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG
    ours = parse(raw).attachments
    assert [(a.filename, a.content_id, a.is_inline, a.payload) for a in ours] == [
        ("logo.png", "logo@example.sk", True, PNG)
    ]


def test_attachments_put_everything_in_mixed():
    logo = OutgoingAttachment("logo.png", "image/png", PNG, content_id="<logo@x>", inline=True)
    pdf = OutgoingAttachment("faktura.pdf", "application/pdf", PDF)
    raw = to_bytes(message(html='<img src="cid:logo@x">', attachments=(logo, pdf)))
    assert shape(stdlib(raw)) == (
        "multipart/mixed",
        [
            (
                "multipart/alternative",
                ["text/plain", ("multipart/related", ["text/html", "image/png"])],
            ),
            "application/pdf",
        ],
    )


def test_text_message_with_an_attachment_is_mixed_text_and_file():
    pdf = OutgoingAttachment("faktura.pdf", "application/pdf", PDF)
    parsed = stdlib(to_bytes(message(attachments=(pdf,))))
    assert shape(parsed) == ("multipart/mixed", ["text/plain", "application/pdf"])
    attachment = only_attachment(parsed)
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_content() == PDF


def test_an_inline_attachment_without_html_or_content_id_is_an_ordinary_attachment():
    no_html = OutgoingAttachment("a.png", "image/png", PNG, content_id="a@x", inline=True)
    no_cid = OutgoingAttachment("b.png", "image/png", PNG, inline=True)
    text_only = stdlib(to_bytes(message(attachments=(no_html,))))
    assert shape(text_only) == ("multipart/mixed", ["text/plain", "image/png"])
    html = stdlib(to_bytes(message(html="<p>x</p>", attachments=(no_cid,))))
    assert shape(html) == (
        "multipart/mixed",
        [("multipart/alternative", ["text/plain", "text/html"]), "image/png"],
    )
    assert only_attachment(html).get_content_disposition() == "attachment"


NOTE_CS = "Poznámky k objednávce: příliš žluťoučký kůň úpěl ďábelské ódy.\n"


@pytest.mark.parametrize(
    ("content_type", "data", "charset"),
    [
        # Unlabelled 8-bit text is detected (ISO-8859-2 and Windows-1250 Czech often read
        # alike, so the import keeps the label a file came with: the last case).
        ("text/plain", NOTE_CS.encode("cp1250"), "windows-1250"),
        ("text/plain", NOTE_CS.encode("utf-8"), "utf-8"),  # an upload from the browser
        ("text/csv", b"id;name\n1;Acme\n", "us-ascii"),
        ("text/plain; charset=ISO-8859-2", NOTE_CS.encode("iso-8859-2"), "iso-8859-2"),
    ],
)
def test_a_text_attachment_goes_as_its_bytes_labelled_with_their_charset(
    content_type, data, charset
):
    note = OutgoingAttachment("poznámky.txt", content_type, data)
    attachment = only_attachment(stdlib(to_bytes(message(attachments=(note,)))))
    assert attachment.get_content_charset() == charset
    assert attachment.get_payload(decode=True) == data  # the file itself is not re-encoded
    if charset != "us-ascii":
        assert attachment.get_content() == data.decode(charset)


def test_an_unusable_content_type_is_sent_as_octet_stream():
    odd = OutgoingAttachment("x.bin", "not a type", b"data")
    multipart = OutgoingAttachment("y.bin", "multipart/mixed", b"data")
    parsed = stdlib(to_bytes(message(attachments=(odd, multipart))))
    types = [a.get_content_type() for a in parsed.iter_attachments()]
    assert types == ["application/octet-stream", "application/octet-stream"]


def test_an_attached_seven_bit_message_stays_message_rfc822_unencoded():
    inner = b"From: a@example.com\r\nSubject: inner\r\n\r\nbody\r\n"
    raw = to_bytes(message(attachments=(OutgoingAttachment("inner.eml", "message/rfc822", inner),)))
    parsed = stdlib(raw)
    attached = only_attachment(parsed)
    assert attached.get_content_type() == "message/rfc822"
    assert attached["Content-Transfer-Encoding"] == "7bit"
    assert attached.get_filename() == "inner.eml"
    assert b"\r\nSubject: inner\r\n\r\nbody\r\n" in raw


def test_an_attached_eight_bit_message_goes_as_an_opaque_file():
    inner = "From: a@example.com\r\nSubject: Žltý\r\n\r\nkôň\r\n".encode()
    raw = to_bytes(message(attachments=(OutgoingAttachment("inner.eml", "message/rfc822", inner),)))
    attached = only_attachment(stdlib(raw))
    assert attached.get_content_type() == "application/octet-stream"
    assert attached.get_filename() == "inner.eml"
    assert attached.get_content() == inner


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subjects_round_trip_through_both_parsers(subject):
    raw = to_bytes(message(subject=subject))
    assert stdlib(raw)["Subject"] == subject
    assert parse(raw).subject == subject.replace("\t", " ")  # our parser reads tabs as spaces


@pytest.mark.parametrize("name", NAMES)
def test_display_names_round_trip_through_both_parsers(name):
    raw = to_bytes(message(sender=Mailbox(name, "jan@example.sk"), to=(Mailbox(name, "a@x.sk"),)))
    assert stdlib(raw)["From"].addresses[0].display_name == name
    assert stdlib(raw)["To"].addresses[0].display_name == name
    ours = parse(raw)
    assert ours.from_ == (name, "jan@example.sk")
    assert ours.to == ((name, "a@x.sk"),)


def test_a_name_longer_than_one_encoded_word_round_trips_through_our_parser():
    # CPython's phrase parser keeps the space between two encoded words (RFC 2047 6.2 drops
    # it), so only our parser reads this one exactly; the words end at spaces for it.
    name = "Žluťoučký Ďábelský Úpějící Kůň Příšerně Žlutý Ďáblův Šíleně Úžasný Kůň"
    raw = to_bytes(message(to=(Mailbox(name, "a@x.sk"),)))
    assert raw.count(b"=?utf-8?") > 1
    assert parse(raw).to == ((name, "a@x.sk"),)
    assert " ".join(stdlib(raw)["To"].addresses[0].display_name.split()) == name


def test_several_recipients_round_trip_in_order():
    to = (
        Mailbox("Žltý kôň", "a@example.sk"),
        Mailbox("", "b@example.cz"),
        Mailbox("Groß", "c@x.de"),
    )
    cc = (Mailbox("Zażółć", "d@example.pl"), Mailbox("Novák, Jan", "e@example.cz"))
    raw = to_bytes(message(to=to, cc=cc))
    ours = parse(raw)
    assert ours.to == tuple((b.name, b.address) for b in to)
    assert ours.cc == tuple((b.name, b.address) for b in cc)
    assert [a.addr_spec for a in stdlib(raw)["Cc"].addresses] == ["d@example.pl", "e@example.cz"]


@pytest.mark.parametrize("text", TEXTS)
def test_plain_text_bodies_round_trip_through_both_parsers(text):
    raw = to_bytes(message(text=text))
    assert content(stdlib(raw)) == text
    assert parse(raw).text == text


def test_a_body_without_a_final_line_break_gets_one():
    assert parse(to_bytes(message(text="Žltý kôň"))).text == "Žltý kôň\n"


def test_text_and_html_bodies_round_trip_in_alternative():
    text = "Příliš žluťoučký kůň\núpěl ďábelské ódy\n"
    html = '<p style="color:red">Příliš žluťoučký kůň</p>' + "<p>Grüße</p>" * 200 + "\n"
    raw = to_bytes(message(text=text, html=html))
    ours = parse(raw)
    assert (ours.text, ours.html) == (text, html)
    plain, rich = stdlib(raw).iter_parts()
    assert (content(plain), content(rich)) == (text, html)


@pytest.mark.parametrize("filename", FILENAMES)
def test_filenames_round_trip_through_both_parsers(filename):
    pdf = OutgoingAttachment(filename, "application/pdf", PDF)
    raw = to_bytes(message(attachments=(pdf,)))
    attached = only_attachment(stdlib(raw))
    assert attached.get_filename() == filename
    assert [(a.filename, a.payload) for a in parse(raw).attachments] == [(filename, PDF)]


def test_non_ascii_filenames_use_rfc_2231():
    pdf = OutgoingAttachment("Faktúra.pdf", "application/pdf", PDF)
    assert b"filename*=utf-8''Fakt%C3%BAra.pdf" in to_bytes(message(attachments=(pdf,)))


# --- headers -------------------------------------------------------------------------------------


def test_the_required_headers_are_always_there():
    raw = to_bytes(message(cc=(Mailbox("", "cc@example.cz"),)))
    names = [line.split(b":", 1)[0] for line in header_lines(raw) if not line[:1].isspace()]
    for name in (b"Date", b"Message-ID", b"MIME-Version", b"From", b"To", b"Cc"):
        assert name in names
    assert stdlib(raw)["MIME-Version"] == "1.0"
    assert b"Reply-To" not in names and b"In-Reply-To" not in names and b"References" not in names


def test_bcc_recipients_never_appear_in_the_bytes():
    bcc = (Mailbox("Tajný Príjemca", "secret@example.sk"),)
    raw = to_bytes(message(bcc=bcc))
    assert b"bcc" not in raw.lower()
    assert b"secret" not in raw.lower()
    assert "secret@example.sk" in envelope_recipients(message(bcc=bcc))


def test_a_bcc_only_message_names_no_recipients():
    raw = to_bytes(message(to=(), bcc=(Mailbox("", "secret@example.sk"),)))
    assert b"\r\nTo: undisclosed-recipients:;\r\n" in raw
    assert b"secret" not in raw
    assert parse(raw).to == ()


def test_a_given_date_is_written_with_its_zone():
    bratislava = timezone(timedelta(hours=2))
    raw = to_bytes(message(date=datetime(2024, 6, 3, 14, 5, 9, tzinfo=bratislava)))
    assert b"\r\nDate: Mon, 03 Jun 2024 14:05:09 +0200\r\n" in b"\r\n" + raw
    assert stdlib(raw)["Date"].datetime == datetime(2024, 6, 3, 12, 5, 9, tzinfo=UTC)


def test_a_naive_date_is_read_as_utc():
    raw = to_bytes(message(date=datetime(2024, 1, 2, 3, 4, 5)))
    assert b"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n" in raw


def test_without_a_date_the_current_time_is_written():
    written = stdlib(to_bytes(message()))["Date"].datetime
    assert written.tzinfo is not None
    assert abs(written - datetime.now(UTC)) < timedelta(days=1)


def test_the_given_message_id_is_written():
    raw = to_bytes(message(message_id="<crm.c.12.abc@example.sk>"))
    assert stdlib(raw)["Message-ID"] == "<crm.c.12.abc@example.sk>"
    assert parse(raw).message_id == "crm.c.12.abc@example.sk"


def test_without_a_message_id_one_is_made_on_the_senders_domain():
    first, second = (stdlib(to_bytes(message()))["Message-ID"] for _ in range(2))
    assert re.fullmatch(r"<[^<>@\s]+@example\.sk>", first)
    assert first != second


def test_reply_headers_are_written_when_given():
    raw = to_bytes(
        message(
            reply_to=(Mailbox("Podpora", "podpora@example.sk"),),
            in_reply_to="<b@example.com>",
            references=("<a@example.com>", "b@example.com"),
        )
    )
    parsed = stdlib(raw)
    assert parsed["In-Reply-To"] == "<b@example.com>"
    assert parsed["References"] == "<a@example.com> <b@example.com>"
    assert parse(raw).reply_to == (("Podpora", "podpora@example.sk"),)
    assert parse(raw).references == ("a@example.com", "b@example.com")


def test_a_long_references_chain_is_folded_and_read_back_whole():
    refs = tuple(f"<id{i}.{'x' * 30}@example.com>" for i in range(40))
    raw = to_bytes(message(in_reply_to=refs[-1], references=refs))
    assert parse(raw).references == tuple(r.strip("<>") for r in refs)


def test_extra_headers_are_written():
    raw = to_bytes(message(extra_headers=(("Auto-Submitted", "auto-replied"), ("X-Tag", "Žltý"))))
    parsed = stdlib(raw)
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Tag"] == "Žltý"
    assert parse(raw).is_auto_reply


@pytest.mark.parametrize("name", ["Bcc", "bcc", "From", "Content-Type", "Message-ID"])
def test_extra_headers_may_not_replace_the_messages_own(name):
    with pytest.raises(HeaderInjection) as raised:
        to_bytes(message(extra_headers=((name, "evil@x.example"),)))
    assert raised.value.field == name


@pytest.mark.parametrize("name", ["X Bad", "X:Bad", "", "Ž-Header"])
def test_extra_header_names_must_be_field_names(name):
    with pytest.raises(HeaderInjection):
        check_headers(message(extra_headers=((name, "v"),)))


def test_an_international_domain_is_written_in_idna():
    raw = to_bytes(message(to=(Mailbox("", "info@bücher.example"),)))
    assert b"info@xn--bcher-kva.example" in raw
    assert envelope_recipients(message(to=(Mailbox("", "info@bücher.example"),))) == [
        "info@xn--bcher-kva.example"
    ]


# --- the bytes -----------------------------------------------------------------------------------


def test_the_bytes_are_seven_bit_with_crlf_lines_within_998():
    html = "<p>" + "Zażółć gęślą jaźń " * 200 + "</p>"
    pdf = OutgoingAttachment("Příliš žluťoučký kůň.pdf", "application/pdf", PDF * 10)
    raw = to_bytes(message(subject=SUBJECTS[7], text=TEXTS[5], html=html, attachments=(pdf,)))
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_header_lines_stay_within_78_characters():
    to = tuple(Mailbox(name, f"user{i}@example.sk") for i, name in enumerate(NAMES))
    raw = to_bytes(message(to=to, cc=to, subject=SUBJECTS[7] + " " + SUBJECTS[8]))
    assert max(len(line) for line in header_lines(raw)) <= 78


def test_every_folded_header_line_continues_its_header():
    to = tuple(Mailbox(name, f"user{i}@example.sk") for i, name in enumerate(NAMES))
    pdf = OutgoingAttachment(FILENAMES[4], "application/pdf", PDF)
    raw = to_bytes(message(to=to, cc=to, subject=SUBJECTS[7], attachments=(pdf,)))
    starts = {line.split(b":", 1)[0] for line in header_lines(raw) if not line[:1].isspace()}
    assert starts == {b"Date", b"From", b"To", b"Cc", b"Subject", b"Message-ID"} | {
        b"MIME-Version",
        b"Content-Type",
    }
    attached = only_attachment(stdlib(raw))
    assert list(attached.keys()) == [
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
    ]


# --- injection and addresses ---------------------------------------------------------------------

INJECTION = "Hi\r\nBcc: evil@x.example"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subject": INJECTION}, "Subject"),
        ({"subject": "Hi\nBcc: evil@x.example"}, "Subject"),
        ({"subject": "Hi\rBcc: evil@x.example"}, "Subject"),
        ({"subject": "Hi\x00there"}, "Subject"),
        ({"subject": "Hi\u2028Bcc: evil@x.example"}, "Subject"),
        ({"sender": Mailbox(INJECTION, "jan@example.sk")}, "From"),
        ({"to": (Mailbox(INJECTION, "a@example.sk"),)}, "To"),
        ({"cc": (Mailbox("Ján\x00", "a@example.sk"),)}, "Cc"),
        ({"bcc": (Mailbox("", "a@example.sk\r\nBcc: evil@x.example"),)}, "Bcc"),
        ({"reply_to": (Mailbox(INJECTION, "a@example.sk"),)}, "Reply-To"),
        ({"message_id": "<a@b>\r\nBcc: evil@x.example"}, "Message-ID"),
        ({"in_reply_to": "<a@b>\nBcc: evil@x.example"}, "In-Reply-To"),
        ({"references": ("<a@b>", "<c@d>\r\nBcc: evil@x.example")}, "References"),
        ({"extra_headers": (("X-Note", INJECTION),)}, "X-Note"),
        ({"extra_headers": (("X-Note\r\nBcc", "evil@x.example"),)}, "header name"),
        (
            {"attachments": (OutgoingAttachment("a.pdf\r\nBcc: evil@x.example", "x/y", b""),)},
            "attachment filename",
        ),
        ({"attachments": (OutgoingAttachment("a\x00.pdf", "application/pdf", b""),)}, None),
    ],
)
def test_line_breaks_and_nul_in_header_values_are_refused(changes, field):
    with pytest.raises(HeaderInjection) as raised:
        to_bytes(message(**changes))
    assert raised.value.field == (field or "attachment filename")
    assert raised.value.field in str(raised.value)


@pytest.mark.parametrize(
    "address",
    ["not an address", "", "a@b@c.example", "<>", "jan@", "@example.sk", "ján@example.sk"],
)
def test_addresses_that_are_not_addresses_are_refused(address):
    with pytest.raises(InvalidAddress) as raised:
        check_headers(message(to=(Mailbox("Name", address),)))
    assert raised.value.field == "To"
    assert isinstance(raised.value, HeaderInjection)


@pytest.mark.parametrize("value", ["a b@c", "<a@b", "<x<y>@z>", "Žltý@kôň"])
def test_message_ids_must_be_message_ids(value):
    with pytest.raises(HeaderInjection):
        check_headers(message(in_reply_to=value))


def test_content_ids_must_be_message_ids():
    logo = OutgoingAttachment("a.png", "image/png", PNG, content_id="logo id", inline=True)
    with pytest.raises(HeaderInjection) as raised:
        check_headers(message(html="<p>x</p>", attachments=(logo,)))
    assert raised.value.field == "attachment Content-ID"


def test_message_ids_are_accepted_with_or_without_brackets():
    assert bracketed_id("a@b") == "<a@b>"
    assert bracketed_id(" <a@b> ") == "<a@b>"
    assert bracketed_id("") is None
    assert bracketed_id(None) is None


def test_envelope_recipients_are_unique_case_insensitively_in_order():
    msg = message(
        to=(Mailbox("A", "a@example.sk"), Mailbox("B", "b@example.sk")),
        cc=(Mailbox("A again", "A@EXAMPLE.SK"), Mailbox("C", "c@example.sk")),
        bcc=(Mailbox("", "b@Example.sk"), Mailbox("", "d@example.sk")),
    )
    assert envelope_recipients(msg) == [
        "a@example.sk",
        "b@example.sk",
        "c@example.sk",
        "d@example.sk",
    ]


def test_envelope_recipients_refuse_bad_addresses():
    with pytest.raises(InvalidAddress):
        envelope_recipients(message(bcc=(Mailbox("", "nobody"),)))


# --- HTML to text --------------------------------------------------------------------------------


def test_html_to_text_keeps_paragraphs_and_line_breaks():
    assert html_to_text("<p>Dobrý deň,</p><p>riadok 1<br>riadok 2</p>") == (
        "Dobrý deň,\n\nriadok 1\nriadok 2"
    )


def test_html_to_text_collapses_white_space_like_a_browser():
    assert html_to_text("<div>  Žltý\n   kôň  <b>beží</b>\n</div><div>ďalej</div>") == (
        "Žltý kôň beží\nďalej"
    )


def test_html_to_text_writes_lists_with_dashes_and_numbers():
    html = "<p>Body:</p><ul><li>jeden</li><li>dva<ul><li>vnorený</li></ul></li></ul>"
    html += "<ol><li>prvý</li><li>druhý</li></ol>"
    assert html_to_text(html) == "Body:\n\n- jeden\n- dva\n  - vnorený\n\n1. prvý\n2. druhý"


def test_html_to_text_writes_links_with_their_address():
    html = (
        '<p><a href="https://example.sk/faktura">faktúra</a>, '
        '<a href="https://example.sk">https://example.sk</a>, '
        '<a href="mailto:jan@example.sk">jan@example.sk</a>, '
        '<a href="#top">hore</a></p>'
    )
    assert html_to_text(html) == (
        "faktúra (https://example.sk/faktura), https://example.sk, jan@example.sk, hore"
    )


def test_html_to_text_quotes_blockquotes():
    html = "<p>Odpoveď</p><blockquote><p>Pôvodná</p><p>správa</p>"
    html += "<blockquote>staršia</blockquote></blockquote><p>Koniec</p>"
    assert html_to_text(html) == ("Odpoveď\n\n> Pôvodná\n>\n> správa\n>\n>> staršia\n\nKoniec")


def test_html_to_text_drops_scripts_styles_and_the_head():
    html = "<html><head><title>T</title><style>p{color:red}</style></head>"
    html += "<body><script>alert(1)</script><p>Grüße</p><!-- note --></body></html>"
    assert html_to_text(html) == "Grüße"


def test_html_to_text_reads_entities_once():
    assert html_to_text("<p>&lt;b&gt; &amp;amp; &nbsp;x&eacute;</p>") == "<b> &amp; xé"


def test_html_to_text_keeps_preformatted_text():
    assert html_to_text("<pre>a  b\n  c</pre><p>d</p>") == "a  b\n  c\n\nd"


def test_html_to_text_of_nothing_is_nothing():
    assert html_to_text("") == ""
    assert html_to_text("<p> </p>") == ""

"""Reply and forward rules: subjects, recipients, thread headers, quoted bodies."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from crm.mail.compose import Mailbox, OutgoingMessage, to_bytes
from crm.mail.parse import parse
from crm.mail.replying import (
    FORWARD_PREFIXES,
    REPLY_PREFIXES,
    Original,
    forward_block_html,
    forward_block_text,
    forward_subject,
    quote_html,
    quote_text,
    reply_recipients,
    reply_references,
    reply_subject,
)

ME = Mailbox("Ján Novák", "jan@example.sk")
ALICE = Mailbox("Alica Malá", "alica@example.sk")
BOB = Mailbox("Bob Groß", "bob@example.de")
CAROL = Mailbox("", "carol@example.pl")
DAVE = Mailbox("Dávid", "dave@example.cz")
WHEN = "Mon, 3 Jun 2024 at 14:05"


def original(**changes) -> Original:
    fields = {
        "message_id": "<m3@example.sk>",
        "references": ("<m1@example.sk>", "<m2@example.sk>"),
        "in_reply_to": "<m2@example.sk>",
        "subject": "Faktúra č. 12",
        "sender": ALICE,
        "reply_to": (),
        "to": (ME, BOB),
        "cc": (CAROL,),
        "date": datetime(2024, 6, 3, 12, 5),
        "text": "Dobrý deň,\n\nposielam faktúru.\n",
        "html": "",
        "is_own": False,
    }
    fields.update(changes)
    return Original(**fields)


# --- subjects ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Faktúra", "Re: Faktúra"),
        ("", "Re: "),
        ("  Grüße  ", "Re: Grüße"),
        ("Fwd: Faktúra", "Re: Fwd: Faktúra"),
        ("Resumé attached", "Re: Resumé attached"),
        ("Regarding: the plan", "Re: Regarding: the plan"),
        ("Answer me", "Re: Answer me"),
    ],
)
def test_reply_subject_adds_re(subject, expected):
    assert reply_subject(subject) == expected


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Faktúra",
        "RE: Faktúra",
        "re: faktúra",
        "RE : Faktúra",
        "Re[2]: Faktúra",
        "Re(3): Faktúra",
        "Re^2: Faktúra",
        "AW: Grüße",
        "Aw: Grüße",
        "SV: Hej",
        "Sv: Hej",
        "VS: Terve",
        "Vs: Terve",
        "Odp: Zażółć gęślą jaźń",
        "ODP: Příliš žluťoučký",
        "Antw: Hallo",
        "Atb: Helo",
        "Ynt: Merhaba",
        "Odg: Pozdrav",
        "Res: Olá",
        "RIF: Ciao",
        "ΑΠ: Γεια",
        "回复: 会议",
        "答复：会议",
        "Re:Faktúra",
    ],
)
def test_reply_subject_keeps_an_existing_reply_prefix(subject):
    assert reply_subject(subject) == subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Faktúra", "Fwd: Faktúra"),
        ("Re: Faktúra", "Fwd: Re: Faktúra"),
        ("", "Fwd: "),
        ("Forward thinking", "Fwd: Forward thinking"),
    ],
)
def test_forward_subject_adds_fwd(subject, expected):
    assert forward_subject(subject) == expected


@pytest.mark.parametrize(
    "subject",
    [
        "Fwd: Faktúra",
        "FWD: Faktúra",
        "Fw: Faktúra",
        "FW: Faktúra",
        "WG: Grüße",
        "TR: Bonjour",
        "RV: Hola",
        "Doorst: Hallo",
        "VL: Terve",
        "Enc: Olá",
        "PD: Zażółć gęślą jaźń",
        "转发: 会议",
        "Fwd[2]: Faktúra",
    ],
)
def test_forward_subject_keeps_an_existing_forward_prefix(subject):
    assert forward_subject(subject) == subject


def test_the_prefix_lists_hold_the_common_forms():
    replies = {p.lower() for p in REPLY_PREFIXES}
    forwards = {p.lower() for p in FORWARD_PREFIXES}
    assert {"re", "aw", "sv", "vs", "odp", "antw", "atb", "ynt", "odg", "res", "rif"} <= replies
    assert {"回复", "答复"} <= replies
    assert {"fwd", "fw", "wg", "tr", "rv", "doorst", "vl", "enc", "pd"} <= forwards
    assert not replies & forwards


# --- recipients ----------------------------------------------------------------------------------


def test_reply_goes_to_the_sender():
    assert reply_recipients(original(), {"jan@example.sk"}, reply_all=False) == ((ALICE,), ())


def test_reply_goes_to_reply_to_when_there_is_one():
    list_address = Mailbox("Zoznam", "list@example.sk")
    found = reply_recipients(original(reply_to=(list_address,)), {"jan@example.sk"}, False)
    assert found == ((list_address,), ())


def test_reply_all_copies_to_and_cc_without_me():
    to, cc = reply_recipients(original(), {"jan@example.sk"}, reply_all=True)
    assert to == (ALICE,)
    assert cc == (BOB, CAROL)


def test_own_addresses_are_compared_case_insensitively():
    shouting = Mailbox("Ján", "JAN@Example.SK")
    to, cc = reply_recipients(original(to=(shouting, BOB)), {"Jan@EXAMPLE.sk"}, reply_all=True)
    assert (to, cc) == ((ALICE,), (BOB, CAROL))


def test_reply_all_names_nobody_twice_and_keeps_the_order():
    again = Mailbox("Alica again", "ALICA@example.sk")
    bob_again = Mailbox("Bob", "Bob@Example.de")
    to, cc = reply_recipients(
        original(to=(ME, BOB, again, DAVE), cc=(bob_again, CAROL, DAVE)),
        {"jan@example.sk"},
        reply_all=True,
    )
    assert to == (ALICE,)
    assert cc == (BOB, DAVE, CAROL)


def test_reply_all_leaves_out_whoever_reply_to_names():
    to, cc = reply_recipients(original(reply_to=(BOB,)), {"jan@example.sk"}, reply_all=True)
    assert to == (BOB,)
    assert cc == (CAROL,)


def test_reply_to_own_sent_mail_goes_to_its_recipients():
    mine = original(sender=ME, to=(ALICE, BOB), cc=(CAROL,), is_own=True)
    assert reply_recipients(mine, {"jan@example.sk"}, reply_all=False) == ((ALICE, BOB), ())
    assert reply_recipients(mine, {"jan@example.sk"}, reply_all=True) == ((ALICE, BOB), (CAROL,))


def test_reply_to_own_mail_to_oneself_still_has_a_recipient():
    note = original(sender=ME, to=(ME,), cc=(), is_own=True)
    assert reply_recipients(note, {"jan@example.sk"}, reply_all=True) == ((ME,), ())


def test_own_addresses_are_left_out_of_to_when_others_remain():
    mine = original(sender=ME, to=(ME, ALICE), cc=(), is_own=True)
    assert reply_recipients(mine, {"jan@example.sk"}, reply_all=False) == ((ALICE,), ())


def test_reply_with_several_own_addresses():
    alias = Mailbox("Ján", "obchod@example.sk")
    to, cc = reply_recipients(
        original(to=(ME, alias, BOB)), {"jan@example.sk", "obchod@example.sk"}, True
    )
    assert (to, cc) == ((ALICE,), (BOB, CAROL))


# --- references ----------------------------------------------------------------------------------


def test_reply_references_extend_the_chain_with_the_parent():
    assert reply_references(original()) == (
        "<m3@example.sk>",
        ("<m1@example.sk>", "<m2@example.sk>", "<m3@example.sk>"),
    )


def test_without_references_the_parents_in_reply_to_starts_the_chain():
    found = reply_references(original(references=(), in_reply_to="<m2@example.sk>"))
    assert found == ("<m3@example.sk>", ("<m2@example.sk>", "<m3@example.sk>"))


def test_a_first_message_starts_a_chain_of_one():
    found = reply_references(original(references=(), in_reply_to=None))
    assert found == ("<m3@example.sk>", ("<m3@example.sk>",))


def test_a_parent_without_message_id_gives_no_in_reply_to():
    found = reply_references(original(message_id=None))
    assert found == (None, ("<m1@example.sk>", "<m2@example.sk>"))
    assert reply_references(original(message_id=None, references=(), in_reply_to=None)) == (
        None,
        (),
    )


def test_ids_are_bracketed_and_named_once():
    found = reply_references(
        original(message_id="m3@example.sk", references=("m1@example.sk", "<m1@example.sk>"))
    )
    assert found == ("<m3@example.sk>", ("<m1@example.sk>", "<m3@example.sk>"))


def test_ids_that_are_not_ids_are_left_out():
    found = reply_references(original(references=("<m1@example.sk>", "not an id", "")))
    assert found[1] == ("<m1@example.sk>", "<m3@example.sk>")


def test_a_long_chain_keeps_its_first_and_latest_ids():
    chain = tuple(f"<m{i}@example.sk>" for i in range(1, 41))
    in_reply_to, refs = reply_references(original(message_id="<m41@example.sk>", references=chain))
    assert in_reply_to == "<m41@example.sk>"
    assert refs == ("<m1@example.sk>", *(f"<m{i}@example.sk>" for i in range(22, 42)))


def test_reply_headers_go_into_a_message_that_threads():
    in_reply_to, refs = reply_references(original())
    to, cc = reply_recipients(original(), {"jan@example.sk"}, reply_all=True)
    reply = OutgoingMessage(
        sender=ME,
        to=to,
        cc=cc,
        subject=reply_subject(original().subject),
        text="Ďakujem.\n\n" + quote_text(original(), WHEN) + "\n",
        in_reply_to=in_reply_to,
        references=refs,
    )
    parsed = parse(to_bytes(reply))
    assert parsed.subject == "Re: Faktúra č. 12"
    assert parsed.in_reply_to == "m3@example.sk"
    assert parsed.references == ("m1@example.sk", "m2@example.sk", "m3@example.sk")
    assert parsed.to == (("Alica Malá", "alica@example.sk"),)
    assert "> posielam faktúru." in parsed.text


# --- quoting -------------------------------------------------------------------------------------


def test_quote_text_introduces_and_quotes_each_line():
    assert quote_text(original(), WHEN) == (
        "On Mon, 3 Jun 2024 at 14:05, Alica Malá wrote:\n> Dobrý deň,\n>\n> posielam faktúru."
    )


def test_quote_text_names_the_address_when_there_is_no_name():
    quoted = quote_text(original(sender=CAROL, text="Zażółć"), WHEN)
    assert quoted == "On Mon, 3 Jun 2024 at 14:05, carol@example.pl wrote:\n> Zażółć"


def test_quote_text_stacks_existing_quotes():
    quoted = quote_text(original(text="Nové\r\n> staré\r\n>> staršie"), WHEN)
    assert quoted.split("\n")[1:] == ["> Nové", ">> staré", ">>> staršie"]


def test_quote_text_without_a_date_says_only_who_wrote():
    assert quote_text(original(text="x"), "") == "Alica Malá wrote:\n> x"


def test_quote_text_reads_html_when_there_is_no_text():
    quoted = quote_text(original(text="", html="<p>Grüße</p><p>aus <b>Wien</b></p>"), WHEN)
    assert quoted.split("\n")[1:] == ["> Grüße", ">", "> aus Wien"]


def test_quote_html_escapes_names_and_date_and_keeps_the_sanitised_html():
    sender = Mailbox("<b>Eve</b> & co", "eve@example.sk")
    quoted = quote_html(original(sender=sender, html="<p>Grüße</p>"), "<i>today</i>")
    assert quoted == (
        "<p>On &lt;i&gt;today&lt;/i&gt;, &lt;b&gt;Eve&lt;/b&gt; &amp; co "
        "&lt;eve@example.sk&gt; wrote:</p>"
        '<blockquote type="cite"><p>Grüße</p></blockquote>'
    )


def test_quote_html_turns_text_into_escaped_html_with_line_breaks():
    text = "Ahoj <script>alert(1)</script>\nviď https://example.sk/a?b=1&c=2"
    quoted = quote_html(original(text=text), WHEN)
    assert "<script>" not in quoted
    assert "Ahoj &lt;script&gt;alert(1)&lt;/script&gt;<br>\nviď " in quoted
    assert '<a href="https://example.sk/a?b=1&amp;c=2"' in quoted
    assert quoted.startswith(
        "<p>On Mon, 3 Jun 2024 at 14:05, Alica Malá &lt;alica@example.sk&gt; wrote:</p>"
    )


def test_quote_html_shows_only_the_address_without_a_name():
    assert quote_html(original(sender=CAROL), "").startswith("<p>carol@example.pl wrote:</p>")


# --- forwarding ----------------------------------------------------------------------------------


def test_forward_block_text_lists_the_original_headers_then_its_text():
    assert forward_block_text(original(), WHEN) == (
        "---------- Forwarded message ---------\n"
        "From: Alica Malá <alica@example.sk>\n"
        "Date: Mon, 3 Jun 2024 at 14:05\n"
        "Subject: Faktúra č. 12\n"
        "To: Ján Novák <jan@example.sk>, Bob Groß <bob@example.de>\n"
        "Cc: carol@example.pl\n"
        "\n"
        "Dobrý deň,\n\nposielam faktúru."
    )


def test_forward_block_text_leaves_out_empty_fields():
    block = forward_block_text(original(cc=(), to=()), "")
    assert block.split("\n")[:3] == [
        "---------- Forwarded message ---------",
        "From: Alica Malá <alica@example.sk>",
        "Subject: Faktúra č. 12",
    ]
    assert "Cc:" not in block and "To:" not in block and "Date:" not in block


def test_forward_block_html_escapes_the_fields_and_keeps_the_html():
    sender = Mailbox("Eve <script>", "eve@example.sk")
    block = forward_block_html(
        original(sender=sender, subject="<b>Zażółć</b>", html="<p>Grüße</p>"), WHEN
    )
    assert block == (
        "<div>---------- Forwarded message ---------<br>"
        "From: Eve &lt;script&gt; &lt;eve@example.sk&gt;<br>"
        "Date: Mon, 3 Jun 2024 at 14:05<br>"
        "Subject: &lt;b&gt;Zażółć&lt;/b&gt;<br>"
        "To: Ján Novák &lt;jan@example.sk&gt;, Bob Groß &lt;bob@example.de&gt;<br>"
        "Cc: carol@example.pl</div><br><p>Grüße</p>"
    )


def test_forward_block_html_from_text_only():
    block = forward_block_html(dataclasses.replace(original(), text="a & b\nc"), WHEN)
    assert block.endswith("</div><br>a &amp; b<br>\nc")

"""mailto: links as RFC 6068 writes them."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from crm.mail.mailto import mailto_url


@pytest.mark.parametrize(
    ("address", "url"),
    [  # RFC 6068 section 6.2
        ("gorby%kremvax@example.com", "mailto:gorby%25kremvax@example.com"),
        ("Mike&family@example.org", "mailto:Mike%26family@example.org"),
        ('"not@me"@example.org', "mailto:%22not%40me%22@example.org"),
        ('"oh\\\\no"@example.org', "mailto:%22oh%5C%5Cno%22@example.org"),
        (
            '"\\\\\\"it\'s\\ ugly\\\\\\""@example.org',
            "mailto:%22%5C%5C%5C%22it's%5C%20ugly%5C%5C%5C%22%22@example.org",
        ),
    ],
)
def test_addresses_are_percent_encoded_as_in_rfc_6068(address, url):
    assert mailto_url([address]) == url


def test_rfc_6068_simple_examples():
    # section 6.1
    assert mailto_url(["chris@example.com"]) == "mailto:chris@example.com"
    assert (
        mailto_url(["infobot@example.com"], subject="current-issue")
        == "mailto:infobot@example.com?subject=current-issue"
    )
    assert (
        mailto_url(["infobot@example.com"], body="send current-issue")
        == "mailto:infobot@example.com?body=send%20current-issue"
    )
    assert (
        mailto_url(["infobot@example.com"], body="send current-issue\nsend index")
        == "mailto:infobot@example.com?body=send%20current-issue%0D%0Asend%20index"
    )
    assert (
        mailto_url(["majordomo@example.com"], body="subscribe bamboo-l")
        == "mailto:majordomo@example.com?body=subscribe%20bamboo-l"
    )
    assert (
        mailto_url(["joe@example.com"], cc=["bob@example.com"], body="hello")
        == "mailto:joe@example.com?cc=bob@example.com&body=hello"
    )
    assert (
        mailto_url(["addr1@an.example", "addr2@an.example"])
        == "mailto:addr1@an.example,addr2@an.example"
    )


def test_rfc_6068_non_ascii_examples():
    # section 6.3
    assert (
        mailto_url(["user@example.org"], subject="café")
        == "mailto:user@example.org?subject=caf%C3%A9"
    )
    assert (
        mailto_url(["user@example.org"], subject="café", body="café")
        == "mailto:user@example.org?subject=caf%C3%A9&body=caf%C3%A9"
    )
    assert (
        mailto_url(["user@納豆.example.org"], subject="Test", body="NATTO")
        == "mailto:user@%E7%B4%8D%E8%B1%86.example.org?subject=Test&body=NATTO"
    )


@pytest.mark.parametrize(
    ("subject", "encoded"),
    [
        ("Žltý kôň", "%C5%BDlt%C3%BD%20k%C3%B4%C5%88"),
        ("Příliš žluťoučký", "P%C5%99%C3%ADli%C5%A1%20%C5%BElu%C5%A5ou%C4%8Dk%C3%BD"),
        ("Faktúra č. 12/2024", "Fakt%C3%BAra%20%C4%8D.%2012%2F2024"),
    ],
)
def test_slovak_and_czech_subjects_are_utf8_percent_encoded(subject, encoded):
    url = mailto_url(["jan@example.sk"], subject=subject)
    assert url == f"mailto:jan@example.sk?subject={encoded}"
    assert unquote(url.split("subject=", 1)[1]) == subject


def test_hfields_come_in_order_cc_bcc_subject_body():
    url = mailto_url(["a@x.sk"], cc=["b@x.sk"], bcc=["c@x.sk"], subject="s", body="b")
    assert url == "mailto:a@x.sk?cc=b@x.sk&bcc=c@x.sk&subject=s&body=b"


def test_empty_hfields_are_left_out():
    assert mailto_url(["a@x.sk"], cc=[], bcc=["", " "], subject="", body="") == "mailto:a@x.sk"
    assert mailto_url(["a@x.sk"], bcc=["c@x.sk"]) == "mailto:a@x.sk?bcc=c@x.sk"


def test_several_cc_addresses_are_comma_separated():
    assert mailto_url([], cc=["b@x.sk", "c@x.sk"]) == "mailto:?cc=b@x.sk,c@x.sk"


def test_without_recipients_the_path_is_empty():
    assert mailto_url([], subject="Ahoj") == "mailto:?subject=Ahoj"


@pytest.mark.parametrize("character", ["%", "?", "#", "&", "=", "+", "/", " "])
def test_delimiters_in_values_are_encoded(character):
    subject = f"a{character}b"
    url = mailto_url(["a@x.sk"], subject=subject)
    assert url == f"mailto:a@x.sk?subject=a%{ord(character):02X}b"


def test_values_survive_a_query_parser_intact():
    subject = "Re: 50% zľava & doprava = zadarmo? #akcia +1"
    body = "Dobrý deň,\r\nriadok 2\rriadok 3\nkoniec"
    url = mailto_url(["a@x.sk"], subject=subject, body=body)
    fields = dict(parse_qsl(urlsplit(url).query))
    assert fields == {
        "subject": subject,
        "body": "Dobrý deň,\r\nriadok 2\r\nriadok 3\r\nkoniec",
    }


def test_every_line_break_in_a_body_becomes_crlf():
    url = mailto_url(["a@x.sk"], body="1\n2\r3\r\n4")
    assert url.endswith("body=1%0D%0A2%0D%0A3%0D%0A4")


def test_the_url_is_plain_ascii_without_spaces():
    url = mailto_url(["ján@príklad.sk"], cc=["b@x.sk"], subject="Grüße", body="Zażółć\ngęślą")
    assert url.isascii()
    assert " " not in url
    assert "\n" not in url

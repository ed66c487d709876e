"""Addresses: header values split into (display name, address), normalised for comparison."""

from __future__ import annotations

import pytest

from crm.mail.address import (
    MAX_NAME,
    display_name,
    normalise_address,
    parse_address_list,
    split_name,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Anna.Berg@Nordhandel.EXAMPLE", "Anna.Berg@nordhandel.example"),
        ("  <sales@crm.example>  ", "sales@crm.example"),
        ("no-at-sign", None),
        ("two@at@signs.example", None),
        ("spaces in@x.example", None),
        ("", None),
        (None, None),
        ("a@" + "b" * 400 + ".example", None),
    ],
)
def test_addresses_normalise_to_a_lower_cased_domain(raw, expected):
    assert normalise_address(raw) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("bob@x.org", [("", "bob@x.org")]),
        ("Bob Builder <bob@x.org>", [("Bob Builder", "bob@x.org")]),
        ('"Müller, Jörg" <J.Mueller@Example.DE>', [("Müller, Jörg", "J.Mueller@example.de")]),
        (
            "Name <a@b.example>, Other Name <c@d.example>,",
            [("Name", "a@b.example"), ("Other Name", "c@d.example")],
        ),
        ('"a \\" b" <q@x.org>', [('a " b', "q@x.org")]),
        ("O'Brien <o@x.ie>", [("O'Brien", "o@x.ie")]),
        ("'Single Quoted' <s@x.org>", [("Single Quoted", "s@x.org")]),
        ("<only@bracket.org>", [("", "only@bracket.org")]),
        ("a@b.example (Comment Name)", [("Comment Name", "a@b.example")]),
        ("undisclosed-recipients:;", []),
        ("team: a@x.org, b@y.org;", [("", "a@x.org"), ("", "b@y.org")]),
        ("x@y.example, , w@v.example", [("", "x@y.example"), ("", "w@v.example")]),
        ("garbage <<<>>>", []),
        ("", []),
        (None, []),
    ],
)
def test_address_lists_are_split_into_name_and_address(value, expected):
    assert parse_address_list(value) == expected


def test_encoded_display_names_are_decoded_after_the_list_is_split():
    # The decoded name contains a comma: decoding first would split it into two entries.
    value = "=?utf-8?q?M=C3=BCller=2C_J=C3=B6rg?= <j@x.de>, =?koi8-r?B?7MXOwQ==?= <l@x.ru>"
    assert parse_address_list(value) == [("Müller, Jörg", "j@x.de"), ("Лена", "l@x.ru")]


def test_quoted_encoded_words_are_decoded_too():
    value = '"=?utf-8?B?0J/RgNC+0LTQu9C10L3QuNC1?=" <p@x.ru>'
    assert parse_address_list(value) == [("Продление", "p@x.ru")]


def test_display_names_lose_nul_bytes_and_folding_and_fit_the_column():
    assert display_name("Ann\x00a\r\n  Berg") == "Anna Berg"
    assert len(display_name("x" * 1000)) == MAX_NAME


def test_a_nul_byte_in_an_address_header_does_not_break_the_list():
    assert parse_address_list("Anna <an\x00na@x.example>") == [("Anna", "anna@x.example")]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Anna Berg", ("Anna", "Berg")),
        ("Berg, Anna", ("Anna", "Berg")),
        ('"Maria de la Cruz"', ("Maria de la", "Cruz")),
        ("Madonna", ("", "Madonna")),
        ("  ", ("", "")),
    ],
)
def test_display_names_split_into_first_and_last_name(name, expected):
    assert split_name(name) == expected

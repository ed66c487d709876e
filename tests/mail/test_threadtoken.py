from crm.mail.parse import normalise_message_id
from crm.mail.threadtoken import TYPE_CODES, make_message_id, parse_token

KEY = "app-secret"


def test_a_token_names_its_parent_record():
    mid = make_message_id(KEY, "Contact", 42, "Mail.Example.COM")
    assert mid.startswith("<crm.c.42.") and mid.endswith("@mail.example.com>")
    assert parse_token(KEY, mid) == ("Contact", 42)


def test_every_record_type_round_trips():
    for parent_type in TYPE_CODES:
        assert parse_token(KEY, make_message_id(KEY, parent_type, 7, "x.example")) == (
            parent_type,
            7,
        )


def test_the_normalised_form_stored_by_the_importer_still_parses():
    mid = make_message_id(KEY, "Case", 1234, "example.com")
    assert parse_token(KEY, normalise_message_id(mid)) == ("Case", 1234)


def test_each_message_id_is_unique():
    assert make_message_id(KEY, "Lead", 1, "e.x") != make_message_id(KEY, "Lead", 1, "e.x")


def test_a_token_signed_with_another_key_is_refused():
    assert parse_token(KEY, make_message_id("other-secret", "Account", 3, "e.x")) is None


def test_changing_the_record_id_breaks_the_signature():
    mid = make_message_id(KEY, "Account", 3, "e.x")
    forged = mid.replace("crm.a.3.", "crm.a.4.")
    assert parse_token(KEY, forged) is None


def test_changing_the_record_type_breaks_the_signature():
    forged = make_message_id(KEY, "Account", 3, "e.x").replace("crm.a.", "crm.c.")
    assert parse_token(KEY, forged) is None


def test_ordinary_and_malformed_ids_are_not_tokens():
    for value in (
        None,
        "",
        "abc@example.com",
        "<crm.a.1.xyz.abc@e.x>",
        "crm.z.1.0000000000000000.%s@e" % ("0" * 32),
    ):
        assert parse_token(KEY, value) is None


def test_an_empty_key_verifies_nothing():
    assert parse_token("", make_message_id("", "Account", 1, "e.x")) is None

"""crm.templating.handlebars: the grammar we allow, its blocks and helpers, escaping, the cache."""

from __future__ import annotations

import pickle
import sys
import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pybars
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.templating import handlebars
from crm.templating.handlebars import TemplateError, check, plain_data, render

OPPORTUNITY = {
    "name": "Účtovný softvér pre Kováč s.r.o.",
    "amount": "1234567.5",
    "closeDate": "2026-03-05",
    "createdAt": "2026-01-07T08:05:09+01:00",
    "stage": "Negotiation",
    "account": {"name": "Kováč & Syn s.r.o.", "city": "Žilina"},
    "contacts": [
        {"firstName": "Žofia", "lastName": "Nováková", "role": "decision"},
        {"firstName": "Jürgen", "lastName": "Größer", "role": "influencer"},
        {"firstName": "Łukasz", "lastName": "Wójcik", "role": ""},
    ],
    "tags": ["Priorita", "Zľava 10 %", "Dvořák <VIP>"],
    "assignedUser": {"name": "Jiří Dvořák"},
}


def text(source: str, context: dict | None = None) -> str:
    return render(source, OPPORTUNITY if context is None else context, html=False)


def html(source: str, context: dict | None = None) -> str:
    return render(source, OPPORTUNITY if context is None else context, html=True)


# -- values and paths --------------------------------------------------------------------------


def test_a_name_and_a_dotted_path_render_their_values():
    assert (
        text("{{name}} v meste {{account.city}}")
        == "Účtovný softvér pre Kováč s.r.o. v meste Žilina"
    )
    assert text("{{ assignedUser.name }}") == "Jiří Dvořák"


def test_missing_values_render_as_nothing():
    assert text("[{{nothing}}|{{account.nothing}}|{{nothing.deeper.still}}]") == "[||]"
    assert text("{{#if nothing}}yes{{else}}no{{/if}}") == "no"
    assert text("{{#each nothing}}x{{else}}none{{/each}}") == "none"


def test_numbers_booleans_and_none_render_as_text():
    context = {"count": 3, "share": 0.25, "whole": 2.0, "vip": True, "gone": False, "none": None}
    assert text("{{count}} {{share}} {{whole}} {{vip}} {{gone}} [{{none}}]", context) == (
        "3 0.25 2 true false []"
    )


def test_a_record_or_a_list_of_records_renders_no_python_repr():
    assert text("[{{account}}] [{{contacts}}]") == "[] []"
    assert text("{{tags}}") == "Priorita, Zľava 10 %, Dvořák <VIP>"


def test_the_length_of_a_list():
    assert text("{{contacts.length}} {{#if tags.length}}tagged{{/if}}") == "3 tagged"


def test_text_outside_tags_is_free():
    source = "${7*7} <%= 7*7 %> {single} }} { {x} } a}b"
    assert text(source) == source


# -- escaping --------------------------------------------------------------------------------


def test_html_escapes_values_but_not_the_template_text():
    out = html("<p title='x'>{{account.name}} – {{#each tags}}<i>{{this}}</i>{{/each}}</p>")
    assert out == (
        "<p title='x'>Kováč &amp; Syn s.r.o. – <i>Priorita</i><i>Zľava 10 %</i>"
        "<i>Dvořák &lt;VIP&gt;</i></p>"
    )


def test_plain_text_does_not_escape():
    assert text("{{account.name}} {{join tags}}") == (
        "Kováč & Syn s.r.o. Priorita, Zľava 10 %, Dvořák <VIP>"
    )


def test_helper_output_is_escaped_in_html():
    context = {"items": ["<b>", "'q'"], "when": "2026-03-05", "n": "1"}
    assert html('{{join items " & "}}', context) == "&lt;b&gt; &amp; &#x27;q&#x27;"
    assert html('{{dateFormat when "<DD>"}}', context) == "&lt;05&gt;"
    assert html('{{numberFormat n 0 "<" ">"}}', context) == "1"
    assert html('{{numberFormat n 1 "," "<"}}', context) == "1&lt;0"


def test_quotes_and_backticks_are_escaped_for_attributes():
    context = {"v": "\" onmouseover=`alert(1)` x='"}
    assert html('<a title="{{v}}">', context) == (
        '<a title="&quot; onmouseover=&#x60;alert(1)&#x60; x=&#x27;">'
    )


# -- blocks ----------------------------------------------------------------------------------


def test_if_with_else():
    assert text("{{#if account}}Firma: {{account.name}}{{else}}Súkromná osoba{{/if}}") == (
        "Firma: Kováč & Syn s.r.o."
    )
    assert text("{{#if account}}x{{else}}Súkromná osoba{{/if}}", {}) == "Súkromná osoba"


def test_if_treats_empty_values_as_false():
    for empty in ("", 0, [], None, False, {}):
        assert text("{{#if v}}yes{{else}}no{{/if}}", {"v": empty}) == "no"
    for value in ("0", 1, ["x"], True, {"a": 1}):
        assert text("{{#if v}}yes{{else}}no{{/if}}", {"v": value}) == "yes"


def test_unless_with_else():
    assert text("{{#unless account}}bez firmy{{else}}s firmou{{/unless}}") == "s firmou"
    assert text("{{#unless account}}bez firmy{{else}}s firmou{{/unless}}", {}) == "bez firmy"


def test_each_over_a_list_of_records_with_index_first_and_last():
    source = (
        "{{#each contacts}}{{#if @first}}[{{/if}}{{@index}}:{{firstName}} {{lastName}}"
        "{{#if @last}}]{{else}}, {{/if}}{{/each}}"
    )
    assert text(source) == "[0:Žofia Nováková, 1:Jürgen Größer, 2:Łukasz Wójcik]"


def test_each_over_a_record_gives_its_keys():
    assert (
        text("{{#each account}}{{@key}}={{this}};{{/each}}")
        == "name=Kováč & Syn s.r.o.;city=Žilina;"
    )


def test_each_with_else_on_an_empty_list_and_on_a_string():
    assert text("{{#each v}}x{{else}}žiadne{{/each}}", {"v": []}) == "žiadne"
    assert text("{{#each v}}x{{else}}žiadne{{/each}}", {"v": "abc"}) == "žiadne"


def test_with_changes_the_context_and_has_an_else():
    assert text("{{#with account}}{{name}}, {{city}}{{/with}}") == "Kováč & Syn s.r.o., Žilina"
    assert text("{{#with account}}{{name}}{{else}}bez firmy{{/with}}", {}) == "bez firmy"


def test_if_equal_and_if_not_equal_compare_as_text():
    source = '{{#each contacts}}{{#ifEqual role "decision"}}*{{else}}-{{/ifEqual}}{{/each}}'
    assert text(source) == "*--"
    assert text('{{#ifNotEqual stage "Closed Won"}}open{{else}}won{{/ifNotEqual}}') == "open"
    assert text("{{#ifEqual a b}}same{{/ifEqual}}", {"a": 2, "b": "2"}) == "same"
    assert text("{{#ifEqual a 2}}same{{/ifEqual}}", {"a": "2"}) == "same"
    assert text("{{#ifEqual a 1.5}}same{{/ifEqual}}", {"a": 1.5}) == "same"
    assert text("{{#ifEqual a true}}same{{/ifEqual}}", {"a": True}) == "same"
    assert text("{{#ifEqual a b}}same{{else}}differ{{/ifEqual}}", {"a": "x"}) == "differ"
    assert text("{{#ifEqual a 'x'}}ok{{/ifEqual}}", {"a": "x"}) == "ok"


def test_blocks_nest():
    source = (
        "{{#if contacts}}{{#each contacts}}{{#unless role}}{{firstName}} nemá rolu. "
        "{{else}}{{#ifEqual role 'decision'}}{{firstName}} rozhoduje. {{/ifEqual}}{{/unless}}"
        "{{/each}}{{/if}}"
    )
    assert text(source) == "Žofia rozhoduje. Łukasz nemá rolu. "


def test_this_inside_each_over_plain_values():
    assert text("{{#each tags}}<{{this}}>{{/each}}") == "<Priorita><Zľava 10 %><Dvořák <VIP>>"


def test_comments_render_as_nothing():
    assert text("a{{! nič }}b{{!-- ani {{toto}} --}}c") == "abc"


def test_standalone_block_lines_leave_no_blank_lines():
    source = (
        "Dobrý deň,\n"
        "{{#each contacts}}\n"
        "  - {{firstName}}\n"
        "{{/each}}\n"
        "  {{! koniec zoznamu }}\n"
        "{{#if nothing}}\n"
        "nie\n"
        "{{else}}\n"
        "S pozdravom\n"
        "{{/if}}\n"
    )
    assert text(source) == "Dobrý deň,\n  - Žofia\n  - Jürgen\n  - Łukasz\nS pozdravom\n"


def test_windows_line_ends_too():
    assert text("a\r\n{{#if name}}\r\nb\r\n{{/if}}\r\n") == "a\r\nb\r\n"


# -- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("DD.MM.YYYY", "05.03.2026"),
        ("D. M. YY", "5. 3. 26"),
        ("MMMM D, YYYY", "March 5, 2026"),
        ("D MMM YYYY", "5 Mar 2026"),
        ("YYYY-MM-DD HH:mm:ss", "2026-03-05 00:00:00"),
        ("[Dátum:] DD.MM.", "Dátum: 05.03."),
    ],
)
def test_date_format_of_a_date(pattern, expected):
    assert text(f'{{{{dateFormat closeDate "{pattern}"}}}}') == expected


def test_date_format_of_a_date_time_and_defaults():
    assert text('{{dateFormat createdAt "DD.MM.YYYY H:mm:ss"}}') == "07.01.2026 8:05:09"
    assert text('{{dateFormat createdAt "HH:mm"}}') == "08:05"
    assert text("{{dateFormat createdAt}}") == "2026-01-07 08:05"
    assert text("{{dateFormat closeDate}}") == "2026-03-05"
    assert text("{{dateFormat closeDate format='DD/MM/YYYY'}}") == "05/03/2026"


def test_date_format_leaves_a_value_that_is_no_date_as_it_was():
    context = {"v": "budúci týždeň", "n": 5, "empty": ""}
    assert text('{{dateFormat v "DD.MM.YYYY"}}|{{dateFormat n "YYYY"}}|{{dateFormat empty}}|'
                '{{dateFormat missing "YYYY"}}', context) == "budúci týždeň|5||"  # fmt: skip


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{numberFormat amount}}", "1,234,567.50"),
        ("{{numberFormat amount 0}}", "1,234,568"),
        ('{{numberFormat amount 2 " " ","}}', "1 234 567,50"),
        ('{{numberFormat amount 3 "."}}', "1.234.567.500"),
        (
            "{{numberFormat amount decimals=1 thousandsSeparator='.' decimalPoint=','}}",
            "1.234.567,5",
        ),
        ("{{numberFormat amount decimalPoint=','}}", "1,234,567,50"),
        ("{{numberFormat small}}", "0.13"),
        ("{{numberFormat negative 1}}", "-1,000.5"),
        ("{{numberFormat tiny 2}}", "0.00"),
        ("{{numberFormat integer}}", "42.00"),
        ("{{numberFormat decimal}}", "9,999.99"),
        ("{{numberFormat word}}", "veľa"),
        ("{{numberFormat missing}}", ""),
    ],
)
def test_number_format(source, expected):
    context = {
        "amount": OPPORTUNITY["amount"],
        "small": 0.125,
        "negative": -1000.45,
        "tiny": -0.001,
        "integer": 42,
        "decimal": Decimal("9999.99"),
        "word": "veľa",
    }
    assert text(source, context) == expected


def test_join_with_a_separator_and_the_default():
    assert text('{{join tags " | "}}') == "Priorita | Zľava 10 % | Dvořák <VIP>"
    assert text("{{join tags}}") == "Priorita, Zľava 10 %, Dvořák <VIP>"
    assert text("{{join tags separator=';'}}") == "Priorita;Zľava 10 %;Dvořák <VIP>"
    assert text('{{join name " "}}') == OPPORTUNITY["name"]
    assert text('{{join contacts " "}}') == ""


# -- plain data ------------------------------------------------------------------------------


def test_plain_data_copies_into_plain_types():
    created = datetime(2026, 1, 7, 8, 5, tzinfo=UTC)
    data = plain_data(
        {"a": (1, 2.5, "x"), "b": {"c": [True, None]}, "d": date(2026, 3, 5), "e": created,
         "f": Decimal("10.50"), "_hidden": "secret"}
    )  # fmt: skip
    assert data == {
        "a": [1, 2.5, "x"],
        "b": {"c": [True, None]},
        "d": "2026-03-05",
        "e": "2026-01-07T08:05:00+00:00",
        "f": "10.50",
    }


def test_plain_data_makes_exact_types_of_subclasses():
    class Name(str):
        def upper(self):
            raise AssertionError("never called")

    value = plain_data({"n": Name("Žofia")})["n"]
    assert type(value) is str and value == "Žofia"


@pytest.mark.parametrize("value", [object(), len, lambda: 1, {1, 2}, b"bytes", type, Exception()])
def test_plain_data_refuses_anything_else(value):
    with pytest.raises(TypeError):
        plain_data({"x": value})


def test_plain_data_refuses_keys_that_are_not_strings_and_endless_nesting():
    with pytest.raises(TypeError):
        plain_data({1: "x"})
    deep: dict = {}
    deep["self"] = deep
    with pytest.raises(TypeError):
        plain_data(deep)


def test_render_applies_plain_data_to_its_context():
    assert text("{{when}} {{amount}}", {"when": date(2026, 3, 5), "amount": Decimal("1.50")}) == (
        "2026-03-05 1.50"
    )
    with pytest.raises(TypeError):
        text("{{x}}", {"x": object()})


# -- the compile cache -----------------------------------------------------------------------


@pytest.fixture
def compiles(monkeypatch):
    """The templates compiled while the test runs."""
    compiled = []
    original = handlebars._compile

    def counting(tokens):
        assert handlebars._compile_lock.locked()
        compiled.append(tokens)
        return original(tokens)

    monkeypatch.setattr(handlebars, "_compile", counting)
    return compiled


def fresh(source: str) -> str:
    """source made unique, so that no earlier test has it in the cache."""
    return f"{{{{! {uuid.uuid4()} }}}}{source}"


def test_the_same_source_compiles_once(compiles):
    source = fresh("Dobrý deň {{firstName}}")
    outputs = [text(source, {"firstName": name}) for name in ("Žofia", "Jürgen", "Łukasz")]
    assert outputs == ["Dobrý deň Žofia", "Dobrý deň Jürgen", "Dobrý deň Łukasz"]
    assert html(source, {"firstName": "<Ž>"}) == "Dobrý deň &lt;Ž&gt;"  # same compiled template
    assert len(compiles) == 1
    text(source + " ", {})
    assert len(compiles) == 2


def test_many_threads_rendering_a_new_template_compile_it_once(compiles, monkeypatch):
    original = handlebars._compile
    started = threading.Event()

    def slow(tokens):
        started.set()
        threading.Event().wait(0.05)  # widen the window in which the others arrive
        return original(tokens)

    monkeypatch.setattr(handlebars, "_compile", slow)
    source = fresh("{{#each contacts}}{{firstName}} {{/each}}")
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=60)
            results.append(text(source))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and started.is_set()
    assert results == ["Žofia Jürgen Łukasz "] * 8
    assert len(compiles) == 1


def test_html_and_plain_text_renders_in_threads_at_once_keep_their_own_escaping():
    source = fresh("{{account.name}}")
    outputs: dict[bool, set] = {True: set(), False: set()}

    def worker(as_html: bool):
        for _ in range(200):
            outputs[as_html].add(render(source, OPPORTUNITY, html=as_html))

    threads = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outputs == {True: {"Kováč &amp; Syn s.r.o."}, False: {"Kováč & Syn s.r.o."}}


def test_compiling_leaves_no_module_behind():
    """Unlike pybars3's Compiler.compile, which keeps each template in sys.modules for good."""
    before = set(sys.modules)
    text(fresh("{{name}}"))
    assert not [name for name in set(sys.modules) - before if name.startswith("pybars")]


def test_the_cache_forgets_the_least_recently_used(compiles, monkeypatch):
    monkeypatch.setattr(handlebars, "CACHE_SIZE", 2)
    first, second, third = fresh("1"), fresh("2"), fresh("3")
    for source in (first, second, first, third, first, second):
        text(source, {})
    assert len(compiles) == 4  # first, second, third, then second again (first stayed in use)


def test_the_cache_holds_a_bounded_amount_of_template_text(compiles, monkeypatch):
    monkeypatch.setattr(handlebars, "CACHE_CHARS", 100)
    big, small = fresh("x" * 80), fresh("y")
    for source in (big, small, big):
        text(source, {})
    assert len(compiles) == 3  # big and small would hold more than 100 characters together


def test_a_template_error_is_not_cached(compiles):
    source = fresh("{{#if x}}")
    for _ in range(2):
        with pytest.raises(TemplateError):
            text(source, {})
    assert compiles == []


# -- what pybars3 itself would do with the same template ------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "Dobrý deň {{firstName}} {{account.name}}!",
        "{{#each contacts}}{{@index}}{{firstName}}{{#if @last}}.{{else}},{{/if}}{{/each}}",
        "{{#with account}}{{name}} ({{city}}){{else}}-{{/with}}",
        "{{#unless nothing}}a{{else}}b{{/unless}}{{#if name}}c{{/if}}",
        '{{#ifEqual stage "Negotiation"}}yes{{else}}no{{/ifEqual}}{{#ifNotEqual stage 1}}!{{/ifNotEqual}}',
        '{{dateFormat closeDate "DD.MM.YYYY"}} {{numberFormat amount 2 "." ","}} {{join tags ", "}}',
        "{{#each account}}{{@key}}:{{this}} {{/each}}{{! comment }}",
    ],
)
def test_our_tokens_compile_as_pybars3_would_parse_the_same_text(source):
    """Our tokenizer drives pybars3's code builder; its own parser on the same text agrees."""
    data = plain_data(OPPORTUNITY | {"firstName": "Žofia"})
    assert html(source, data) == pybars3_own(source)(data)


def pybars3_own(source: str):
    """pybars3's own parser and compiler on source, with our lookup, output and helpers."""
    code = pybars.Compiler().precompile(source)
    namespace: dict = {}
    exec(compile(code, "<pybars3>", "exec"), namespace)  # noqa: S102 - pybars3 does the same
    namespace.update(
        resolve=handlebars._resolve,
        prepare=handlebars._prepare,
        _pybars_={"helpers": dict(handlebars._HELPERS)},
    )
    return namespace["render"]


PATHS = ["name", "account.name", "account.city", "stage", "tags", "contacts", "nothing", "this"]


def valid_templates():
    """One-line templates in our grammar (helpers with every argument written out)."""
    text = st.text(alphabet="ab ŽčÄ<>&'\"-,.()[]@#/!=", max_size=6)
    output = st.sampled_from(PATHS).map(lambda p: "{{" + p + "}}") | st.sampled_from(
        ['{{dateFormat closeDate "DD.MM.YYYY"}}', "{{numberFormat amount 1 ' ' ','}}",
         '{{join tags " | "}}', "{{! note }}"]
    )  # fmt: skip
    opening = st.sampled_from(["if", "unless", "each", "with"]).flatmap(
        lambda name: st.sampled_from(PATHS).map(lambda p: (name, f"{{{{#{name} {p}}}}}"))
    ) | st.sampled_from([("ifEqual", '{{#ifEqual stage "Negotiation"}}'),
                         ("ifNotEqual", "{{#ifNotEqual name account.name}}")])  # fmt: skip

    def block(inner):
        return st.tuples(opening, inner, st.none() | inner).map(
            lambda t: t[0][1] + t[1] + ("" if t[2] is None else "{{else}}" + t[2])
            + "{{/" + t[0][0] + "}}"
        )  # fmt: skip

    piece = st.recursive(text | output, lambda inner: block(inner) | st.lists(inner, max_size=3)
                         .map("".join), max_leaves=10)  # fmt: skip
    return st.lists(piece, max_size=5).map("".join)


@settings(
    max_examples=60,  # pybars3 parses slowly
    deadline=None,
    database=None,  # no .hypothesis folder in the shared working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],  # a busy machine
)
@given(source=valid_templates())
def test_our_tokens_and_pybars3s_parser_agree_on_generated_templates(source):
    data = plain_data(OPPORTUNITY)
    assert html(source, data) == pybars3_own(source)(data)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column", "says"),
    [
        ("Ahoj {{{name}}}", 1, 8, "triple braces"),
        ("Ahoj {{{{raw}}}}x{{{{/raw}}}}", 1, 8, "triple braces"),
        ("{{& name}}", 1, 3, "unescaped"),
        ("a\nb {{> footer}}", 2, 5, "partials"),
        ("{{#> layout}}x{{/layout}}", 1, 4, "partial"),
        ("{{*inline}}", 1, 3, "decorators"),
        ("{{#*inline 'x'}}y{{/inline}}", 1, 4, "partial and decorator"),
        ("{{^if x}}y{{/if}}", 1, 3, "inverted"),
        ("{{~name}}", 1, 3, "whitespace control"),
        ("{{name~}}", 1, 7, "~"),
        ("{{=<% %>=}}", 1, 3, "delimiters"),
        ("{{[name]}}", 1, 3, "brackets"),
        ("{{account.[name]}}", 1, 11, "brackets"),
        ("{{join (list) ', '}}", 1, 8, "sub-expressions"),
        ("{{../name}}", 1, 3, "parent paths"),
        ("{{#each contacts}}{{../name}}{{/each}}", 1, 21, "parent paths"),
        ("{{@root.name}}", 1, 3, "@root"),
        ("{{#each contacts}}{{@foo}}{{/each}}", 1, 21, "only @index"),
        ("{{@index}}", 1, 1, "only inside {{#each}}"),
        ("{{account/name}}", 1, 10, "dots"),
        ("{{_secret}}", 1, 3, "cannot start with _"),
        ("{{account._secret}}", 1, 11, "cannot start with _"),
        ("{{account..name}}", 1, 11, "empty name"),
        ("{{this.name}}", 1, 3, "this stands alone"),
        ("{{name.this}}", 1, 8, "this stands alone"),
        ("{{na-me}}", 1, 3, "not a name"),
        ("{{7*7}}", 1, 3, "not a name"),
        ("{{42}}", 1, 3, "a name is expected"),
        ("{{'text'}}", 1, 3, "a name is expected"),
        ("{{if}}", 1, 3, "is a block"),
        ("{{else}}", 1, 1, "belongs inside a block"),
        ("{{#if a}}{{else if b}}{{/if}}", 1, 12, "{{else if …}} is not supported"),
        ("{{#if a}}x{{else}}y{{else}}z{{/if}}", 1, 20, "a second {{else}}"),
        ("{{#if a}}x", 1, 1, "never closed"),
        ("x\n  {{#each a}}{{#if b}}y{{/each}}", 2, 24, "does not match {{#if}} opened at line 2"),
        ("{{/if}}", 1, 1, "never opened"),
        ("{{/ifx}}", 1, 1, "closes no block"),
        ("{{#foreach a}}x{{/foreach}}", 1, 4, "not a block we allow"),
        ("{{#if}}x{{/if}}", 1, 4, "takes one name"),
        ("{{#if a b}}x{{/if}}", 1, 4, "takes one name"),
        ("{{#if a=b}}x{{/if}}", 1, 7, "key=value"),
        ("{{#ifEqual a}}x{{/ifEqual}}", 1, 4, "compares two values"),
        ("{{#with x as |y|}}{{/with}}", 1, 14, "block parameters"),
        ("{{#each x as |y|}}{{/each}}", 1, 14, "block parameters"),
        ("{{lookup . 'x'}}", 1, 3, "not a helper we allow"),
        ("{{log name}}", 1, 3, "not a helper we allow"),
        ("{{lookup}}", 1, 3, "reserved word"),
        ("{{helperMissing}}", 1, 3, "reserved word"),
        ("{{name 'x'}}", 1, 3, "not a helper we allow"),
        ("{{name key=1}}", 1, 3, "not a helper we allow"),
        ("{{dateFormat}}", 1, 3, "needs a value"),
        ('{{dateFormat d "x" "y"}}', 1, 20, "too many arguments"),
        ("{{dateFormat d 5}}", 1, 16, "quoted string"),
        ("{{dateFormat d locale='sk'}}", 1, 16, "takes the options format="),
        ("{{numberFormat n 'two'}}", 1, 18, "whole number from 0 to 10"),
        ("{{numberFormat n 11}}", 1, 18, "whole number from 0 to 10"),
        ("{{numberFormat n -1}}", 1, 18, "whole number from 0 to 10"),
        ("{{numberFormat n decimals=1 decimals=2}}", 1, 29, "too many arguments"),
        ('{{join tags ", " ";"}}', 1, 18, "too many arguments"),
        ('{{join tags "a\\"b"}}', 1, 15, "backslash"),
        ('{{join tags "a\nb"}}', 1, 15, "line break"),
        ('{{join tags "a}}', 1, 13, "not closed"),
        ('{{join tags "open}}', 1, 13, "not closed"),
        ('{{join tags "x"y"}}', 1, 16, "space between"),
        ("{{join tags 'it''s'}}", 1, 17, "space between"),
        ("{{}}", 1, 1, "empty tag"),
        ("{{ }}", 1, 1, "empty tag"),
        ("{{name", 1, 1, "never closed"),
        ("{{a {{b}}", 1, 5, "{ inside a tag"),
        ("{{!-- a }} b", 1, 1, "never closed"),
        ("{{null}}", 1, 3, "reserved word"),
    ],
)
def test_rejected_templates_name_the_position_and_what_is_wrong(source, line, column, says):
    with pytest.raises(TemplateError) as raised:
        check(source)
    error = raised.value
    assert (error.line, error.column) == (line, column), error
    assert says in error.message
    assert str(error) == f"line {line}, column {column}: {error.message}"


def test_an_error_says_what_is_allowed():
    with pytest.raises(TemplateError) as raised:
        check("{{[x]}}")
    assert "Allowed: {{name}}" in raised.value.message and "{{#each list}}" in raised.value.message


def test_render_raises_the_template_error_too():
    with pytest.raises(TemplateError) as raised:
        text("riadok 1\nriadok 2 {{#each contacts}}")
    assert (raised.value.line, raised.value.column) == (2, 10)


def test_a_template_error_is_a_value_error_and_keeps_its_position_when_pickled():
    assert issubclass(TemplateError, ValueError)
    assert str(TemplateError("plain")) == "plain"
    with pytest.raises(TemplateError) as raised:
        check("a\n{{#if}}")
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (copy.message, copy.line, copy.column) == (raised.value.message, 2, 4)
    assert str(copy) == str(raised.value)


def test_accepted_templates():
    for source in [
        "",
        "no tags at all",
        "{{ name }} {{# if name }}x{{ else }}y{{/ if }}",
        "{{#each contacts}}{{@index}} {{@first}} {{@last}} {{@key}} {{this}}{{/each}}",
        "{{#ifEqual a -3}}{{/ifEqual}}{{#ifNotEqual a 'x y'}}{{/ifNotEqual}}",
        "{{numberFormat n}}{{numberFormat n 0}}{{numberFormat n 10 '' ''}}",
        "{{!}}{{! anything {{ goes [here] (really) }}{{!-- even }}\n --}}",
        "{{#if a}}{{#if b}}{{#if c}}deep{{/if}}{{/if}}{{/if}}",
        "{{Account.name}} {{a1.b_2.C3}}",
        "{{#with account}}{{#each contacts}}{{#with this}}{{name}}{{/with}}{{/each}}{{/with}}",
    ]:
        check(source)


def test_nesting_and_size_are_bounded(monkeypatch):
    deep = "{{#if a}}" * (handlebars.MAX_NESTING + 1) + "{{/if}}" * (handlebars.MAX_NESTING + 1)
    with pytest.raises(TemplateError, match="nested deeper"):
        check(deep)
    check("{{#if a}}" * handlebars.MAX_NESTING + "{{/if}}" * handlebars.MAX_NESTING)
    monkeypatch.setattr(handlebars, "MAX_TAGS", 3)
    with pytest.raises(TemplateError, match="more than 3 tags"):
        check("{{a}}{{b}}{{c}}{{d}}")
    monkeypatch.setattr(handlebars, "MAX_SOURCE", 10)
    with pytest.raises(TemplateError, match="longer than"):
        check("x" * 11)


def test_a_long_html_body_is_cheap_to_compile(compiles):
    body = "<p style='color: #333'>Dobrý deň, ďakujeme za Vašu objednávku.</p>\n" * 5000
    source = fresh(body + "{{name}}")
    assert text(source).endswith(OPPORTUNITY["name"])
    assert len(compiles) == 1

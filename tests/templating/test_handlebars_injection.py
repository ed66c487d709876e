"""Template text is written by users: no template runs code or reaches a non-data object.

A canary module stands in for the server: a payload that ran Python would call
hb_canary.fire(). Each payload is either refused with a TemplateError or renders as inert text;
the same bracket payload against bare pybars3 does fire it, which is why the guard exists.
"""

from __future__ import annotations

import sys
import types

import pybars
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.templating import handlebars
from crm.templating.handlebars import TemplateError, render

CANARY = "hb_canary"
FIRE = f'__import__("{CANARY}").fire()'
COMPUTED = "COMPUTED-FROM-PYTHON"

CONTEXT = {
    "name": "Žofia Nováková",
    "x": "s",
    "format": "{0.__class__.__mro__}",  # a value a user typed into a record
    "items": [{"name": "Čaj", "price": 3.5}, {"name": "Kávé", "price": 4}],
    "tags": ["Priorita", "VIP"],
    "account": {"name": "Kováč s.r.o.", "city": "Žilina"},
    "closeDate": "2026-03-05",
    "amount": "1234.5",
    "42": COMPUTED,  # only a computed path (str(6*7)) reaches this key: no name starts with a digit
}

# what output must never hold: reprs of objects that are not plain data, or a computed lookup
LEAKS = (
    "<class",
    "<built-in",
    "<function",
    "<bound method",
    "<module",
    "<method",
    "object at 0x",
    "Scope",
    "mappingproxy",
    "__",
    COMPUTED,
    "42",
)


@pytest.fixture
def canary(monkeypatch):
    """A module whose fire() records each call: any call means template text ran as Python."""
    calls: list[str] = []
    module = types.ModuleType(CANARY)
    module.fire = lambda *args: calls.append("fired") or "FIRED"
    monkeypatch.setitem(sys.modules, CANARY, module)
    return calls


CLASSIC_HANDLEBARS_RCE = """{{#with "s" as |string|}}
  {{#with "e"}}
    {{#with split as |conslist|}}
      {{this.pop}}
      {{this.push (lookup string.sub "constructor")}}
      {{this.pop}}
      {{#with string.split as |codelist|}}
        {{this.pop}}
        {{this.push "return require('child_process').exec('id');"}}
        {{this.pop}}
        {{#each conslist}}
          {{#with (string.sub.apply 0 codelist)}}
            {{this}}
          {{/with}}
        {{/each}}
      {{/with}}
    {{/with}}
  {{/with}}
{{/with}}"""

PAYLOADS = [
    # bracket segments are pasted into pybars3's generated Python
    "{{[' + str(6*7) + ']}}",
    "{{[' + str(" + FIRE + ") + ']}}",
    "{{[' + str(__import__('" + CANARY + "').fire()) + ']}}",
    "{{account.[' + str(" + FIRE + ") + ']}}",
    "{{#each [' + str(" + FIRE + ") + ']}}{{/each}}",
    "{{[__class__]}}",
    "{{x.[__class__]}}",
    # attribute walks
    "{{x.__class__}}",
    "{{x.__class__.__mro__}}",
    "{{x.__class__.__name__}}",
    "{{this.__init__.__globals__}}",
    "{{this.__class__}}",
    "{{__builtins__}}",
    "{{#with __builtins__}}{{__import__}}{{/with}}",
    "{{#with this}}{{__class__}}{{/with}}",
    "{{''.__class__.__mro__[1].__subclasses__()}}",
    "{{config.items()}}",
    "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}",
    # partials, sub-expressions, helpers pybars3 has and we do not
    "{{> x}}",
    "{{> (lookup . 'x')}}",
    "{{#> layout}}{{/layout}}",
    "{{foo (bar)}}",
    "{{join (lookup this '__class__') ', '}}",
    '{{lookup . "__class__"}}',
    '{{lookup x "__class__"}}',
    '{{log "x"}}',
    "{{lookup}}",
    "{{helperMissing}}",
    "{{blockHelperMissing}}",
    # breaking out of string literals
    '{{dateFormat x "a\\" + ' + FIRE + ' + \\""}}',
    "{{dateFormat x 'a\\' + " + FIRE + " + \\''}}",
    '{{dateFormat x "a" + ' + FIRE + ' + "b"}}',
    '{{join tags "\\\\"}}',
    '{{join tags "\n" + ' + FIRE + ' + "\n"}}',
    '{{join tags "\'"}}',
    "{{join tags '\"'}}",
    '{{join tags ""}}"}}',
    "{{dateFormat x \"}}{{[' + str(6*7) + ']}}\"}}",
    '{{numberFormat amount 2 "." "\\x00"}}',
    "{{numberFormat amount decimals=__import__}}",
    "{{numberFormat amount decimals=1+1}}",
    '{{dateFormat x format=__import__("' + CANARY + '")}}',
    "{{name " + FIRE + "=1}}",
    "{{name a=1}}",
    # well-known server-side template injection payloads of other engines
    "{{7*7}}",
    "{{6*7}}",
    "${7*7}",
    "${6*7}",
    "<%= 7*7 %>",
    "#{7*7}",
    "{7*7}",
    "{{= 7*7}}",
    "{{constructor.constructor('return process')()}}",
    '{{#with "s" as |string|}}{{string.sub}}{{/with}}',
    CLASSIC_HANDLEBARS_RCE,
    "{{request.application.__globals__.__builtins__.__import__('os').popen('id').read()}}",
    "{{cycler.__init__.__globals__.os.popen('id').read()}}",
    "{{self._TemplateReference__context.joiner.__init__.__globals__.os}}",
    "{{{{raw}}}}{{[' + str(6*7) + ']}}{{{{/raw}}}}",
    "{{{name}}}",
    "{{&name}}",
    "{{~name~}}",
    # methods of str, list and dict must not be reached by name
    "{{name.upper}}",
    "{{name.title}}",
    "{{name.length}}",
    "{{x.format}}",
    "{{format.format}}",
    "{{items.pop}}",
    "{{items.copy}}",
    "{{items.clear}}{{items.length}}",
    "{{account.keys}}",
    "{{account.items}}",
    "{{account.get}}",
    "{{account.clear}}{{account.name}}",
    "{{#each account.items}}{{this}}{{/each}}",
    "{{#each account.values}}{{this}}{{/each}}",
    "{{#with name}}{{upper}}{{title}}{{this.upper}}{{/with}}",
    "{{#with items}}{{pop}}{{length}}{{/with}}",
    "{{#each items}}{{name.upper}}{{price.real}}{{price.conjugate}}{{/each}}",
    "{{#each name}}{{this}}{{/each}}",
    "{{#if name.upper}}called{{/if}}",
    "{{#ifEqual name.upper name.upper}}same{{/ifEqual}}",
    "{{join name.split ', '}}",
    "{{numberFormat amount.real}}{{dateFormat closeDate.isoformat}}",
    # loops and roots
    "{{#each items}}{{@root}}{{@root.__class__}}{{/each}}",
    "{{#each items}}{{@../index}}{{/each}}",
    "{{#each items}}{{../name}}{{/each}}",
    "{{@_parent}}{{@@_parent}}",
    # unicode look-alikes and invisible characters
    "{{na\u200bme}}",
    "{{ｎａｍｅ}}",
    "{{name\u0000}}",
    "{{ℌ}}",
    '{{join tags "\ud800"}}',
    '{{join tags "\u2028"}}',
    "\ud800{{name}}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("html", [True, False], ids=["html", "text"])
def test_a_payload_is_refused_or_inert(payload, html, canary):
    try:
        out = render(payload, CONTEXT, html=html)
    except TemplateError:
        out = ""
    assert canary == []
    assert_inert(out, payload)


def assert_inert(out: str, payload: str) -> None:
    assert isinstance(out, str)
    for leak in LEAKS:
        if leak not in payload:  # "${7*7}" renders as written, and that holds no leak
            assert leak not in out, (payload, out)
    assert "FIRED" not in out


def test_the_text_of_other_engines_payloads_renders_as_written(canary):
    for payload in ("${7*7}", "<%= 7*7 %>", "#{7*7}", "{7*7}", "{% 7*7 %}"):
        assert render(payload, CONTEXT, html=False) == payload
    assert canary == []


def test_methods_of_strings_lists_and_records_render_as_nothing(canary):
    before = repr(CONTEXT)
    out = render(
        "[{{name.upper}}|{{x.format}}|{{items.pop}}|{{items.clear}}|{{account.clear}}|"
        "{{account.keys}}|{{#with name}}{{upper}}{{/with}}]",
        CONTEXT,
        html=False,
    )
    assert out == "[||||||]"
    assert repr(CONTEXT) == before  # nothing was popped or cleared


def test_callables_in_the_context_are_refused_before_rendering(canary):
    for value in (lambda: canary.append("fired"), print, object(), type, sys):
        with pytest.raises(TypeError):
            render("{{f}}", {"f": value}, html=True)
    assert canary == []


def test_our_lookup_hands_back_only_plain_data_even_when_handed_an_object(canary):
    """Defence in depth: were an object ever to reach a compiled template, it stays unused."""
    called = []
    template = handlebars._compiled(
        "{{f}}|{{o.real}}|{{#if f}}truthy{{/if}}|{{#with o}}{{this}}{{/with}}"
    )
    out = template({"f": lambda *a: called.append(a), "o": 1j, "n": object()})
    assert called == [] and out == "|||"
    assert handlebars._prepare(object()) == "" and handlebars._prepare(print) == ""
    assert handlebars._resolve({"f": print}, "f") is None


def test_the_bracket_payload_does_run_code_in_bare_pybars3(canary):
    """Why the guard exists: pybars3 pastes a bracket segment into the Python it executes."""
    payload = "{{[' + str(__import__('" + CANARY + "').fire()) + ']}}"
    pybars.Compiler().compile(payload)({})
    assert canary != []
    with pytest.raises(TemplateError, match="brackets"):
        render(payload, {}, html=True)


def test_bare_pybars3_computes_a_path_and_walks_into_python_objects(canary):
    assert pybars.Compiler().compile("{{[' + str(6*7) + ']}}")(CONTEXT) == COMPUTED
    assert pybars.Compiler().compile("{{x.__class__.__name__}}")(CONTEXT) == "str"
    with pytest.raises(TemplateError):
        render("{{x.__class__.__name__}}", CONTEXT, html=True)


# -- property tests --------------------------------------------------------------------------

SYMBOLS = list("{}[]()'\"\\._#/>&~@=!|*^-+ \n\t,:;%$<") + [
    "{{",
    "}}",
    "{{{",
    "}}}",
    "../",
    "{{!--",
    "--}}",
]
WORDS = [
    "name", "x", "format", "items", "tags", "account", "closeDate", "amount", "this", "else",
    "if", "unless", "each", "with", "ifEqual", "ifNotEqual", "dateFormat", "numberFormat", "join",
    "lookup", "log", "@index", "@first", "@last", "@key", "@root", "__class__", "__mro__",
    "__globals__", "__import__", "__builtins__", "upper", "pop", "format", "length", "keys",
    "constructor", "6*7", "str(6*7)", CANARY, "fire()", FIRE, "42", "2", "-1", "1.5", "true",
    "null", "as", "|x|", "DD.MM.YYYY", "Žofia", "ß",
]  # fmt: skip
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis folder in the shared working tree
    suppress_health_check=[
        HealthCheck.too_slow,  # a busy machine
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the canary is reset by each test, not example
    ],
)


def rich_text():
    return st.lists(st.sampled_from(SYMBOLS) | st.sampled_from(WORDS), max_size=40).map("".join)


def near_valid():
    """Templates built from our grammar, with the odd piece of something else mixed in."""
    path = st.sampled_from(["name", "x", "items", "tags", "account.name", "this", "@index"])
    path = path | st.sampled_from(WORDS)
    literal = st.sampled_from(['"DD.MM.YYYY"', "', '", "2", "-3", "1.5", "true", '"a\\"b"', "'"])
    output = st.one_of(
        path.map(lambda p: "{{" + p + "}}"),
        st.tuples(
            st.sampled_from(handlebars.ALLOWED_HELPERS + ("lookup", "log")), path, literal
        ).map(lambda t: "{{" + " ".join(t) + "}}"),
        st.tuples(st.sampled_from(["decimals", "format", "separator", "x"]), literal, path).map(
            lambda t: "{{numberFormat " + t[2] + " " + t[0] + "=" + t[1] + "}}"
        ),
        st.sampled_from(PAYLOADS),
        rich_text(),
    )

    def block(body):
        opening = st.sampled_from(handlebars.ALLOWED_BLOCKS + ("lookup", "foreach"))
        closing = opening | st.sampled_from(handlebars.ALLOWED_BLOCKS)
        otherwise = st.sampled_from(["", "{{else}}", "{{else}}{{else}}", "{{^}}"])
        return st.tuples(opening, path, st.sampled_from(["", " 'x'", " name"]), body, otherwise,
                         body, closing).map(
            lambda t: "{{#" + t[0] + " " + t[1] + t[2] + "}}" + "".join(t[3:6]) + "{{/" + t[6] + "}}"
        )  # fmt: skip

    piece = st.recursive(output, lambda inner: block(inner) | st.lists(inner, max_size=4).map("".join),
                         max_leaves=12)  # fmt: skip
    return st.lists(piece, max_size=6).map("\n".join)


def render_or_refuse(source: str, html: bool) -> str:
    try:
        return render(source, CONTEXT, html=html)
    except TemplateError:
        return ""


@PROPERTY
@given(source=rich_text(), html=st.booleans())
def test_generated_text_is_refused_or_rendered_and_never_runs_code(source, html, canary):
    assert_inert(render_or_refuse(source, html), source)
    assert canary == []


@PROPERTY
@given(source=near_valid(), html=st.booleans())
def test_generated_near_valid_templates_never_run_code(source, html, canary):
    assert_inert(render_or_refuse(source, html), source)
    assert canary == []

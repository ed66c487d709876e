"""Handlebars for user-written mail templates: pybars3 behind a strict grammar of our own.

pybars3 0.9.7 compiles a template to Python source and runs it: bracket path segments are pasted
into that source unescaped (`{{[' + str(6*7) + ']}}` runs Python), and name lookup falls back to
getattr, so `x.__class__` walks into Python objects and a reached callable gets called. So:

1. Our tokenizer reads the template and accepts only the grammar below; anything else is a
   TemplateError naming the line and column and what is allowed.
2. pybars3's parser never sees the author's text: pybars3's code builder (the part that writes
   the Python) is driven from our validated tokens, each argument written with repr(). That
   also keeps compiling fast: pybars3's own parser reads about 5,000 characters a second.
3. The compiled module's `resolve` and `prepare` are replaced by ours: lookups read dict keys
   only (a dotted path into a str or list gives nothing, never a method), output is text of
   plain values only, and the context is plain_data() (dicts, lists, str, numbers, bool, None).

Grammar: `{{path}}` (dotted names `[A-Za-z][A-Za-z0-9_]*`, plain `this`; `@index`, `@first`,
`@last`, `@key` inside each), the blocks in ALLOWED_BLOCKS with `{{else}}`, the helpers in
ALLOWED_HELPERS, comments `{{! }}` and `{{!-- --}}`. Literal arguments: quoted strings without
quotes, backslashes, braces or control characters inside, integers, decimals, true and false.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ALLOWED_BLOCKS = ("if", "unless", "each", "with", "ifEqual", "ifNotEqual")
ALLOWED_HELPERS = ("dateFormat", "numberFormat", "join")
LOOP_VARIABLES = ("@index", "@first", "@last", "@key")
CACHE_SIZE = 256  # compiled templates kept
CACHE_CHARS = 20_000_000  # and at most this much template text in them
MAX_NESTING = 16
MAX_SOURCE = 2_000_000  # characters; text outside tags costs next to nothing
MAX_TAGS = 5_000  # pybars3's code builder takes about 0.2 ms a tag
MAX_DATA_DEPTH = 32

ALLOWED = (
    "Allowed: {{name}}, {{account.name}}, {{#if x}}…{{else}}…{{/if}}, {{#unless x}}, "
    '{{#each list}} with {{@index}}, {{#with x}}, {{#ifEqual x "value"}}, {{#ifNotEqual x y}}, '
    '{{dateFormat x "DD.MM.YYYY"}}, {{numberFormat x 2}}, {{join list ", "}}, {{! comment }}.'
)


class TemplateError(ValueError):
    """A template its author must fix: what is wrong and what is allowed, and where (1-based).

    line and column are None for a failure while rendering that no single tag is to blame for.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message, line, column)  # all three survive pickling
        self.message, self.line, self.column = message, line, column

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"line {self.line}, column {self.column}: {self.message}"


# -- plain data ------------------------------------------------------------------------------


def plain_data(value, _depth: int = 0):
    """A deep copy of value made of dict / list / str / int / float / bool / None only.

    Dates become ISO strings, Decimal a string; keys starting with "_" are left out (no template
    can name them); anything else (objects, callables, sets, bytes) raises TypeError.
    """
    kind = type(value)
    if kind in _SCALARS:  # exact and immutable: shared, not copied
        return value
    if _depth >= MAX_DATA_DEPTH:
        raise TypeError(f"template data nested deeper than {MAX_DATA_DEPTH} levels")
    if kind is dict:
        return {
            _key(key): plain_data(item, _depth + 1)
            for key, item in value.items()
            if not (type(key) is str and key.startswith("_"))
        }
    if kind is list or kind is tuple:
        return [plain_data(item, _depth + 1) for item in value]
    return _plain_other(value, _depth)


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain_other(value, depth: int):
    """Subclasses made exact (whatever they override), dates and decimals as text."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Decimal):
        return _exact_str(str(value))
    if isinstance(value, date):  # datetime included
        return _exact_str(value.isoformat())
    if isinstance(value, dict):
        return plain_data(dict(value.items()), depth)
    if isinstance(value, list | tuple):
        return plain_data(list(value), depth)
    raise TypeError(f"{type(value).__name__} is not template data")


def _exact_str(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{type(text).__name__} is not template data")
    return str.__str__(text)


def _key(key) -> str:
    if type(key) is str:
        return key
    if not isinstance(key, str):
        raise TypeError(f"template data keys are strings, not {type(key).__name__}")
    return _plain_other(key, 0)


# -- tokens and validation -------------------------------------------------------------------


@dataclass(frozen=True)
class _Tag:
    kind: str  # "open", "close", "else", "comment", "output"
    name: str  # block or helper name; for output of a plain path: ""
    args: tuple  # ("path", segments) or ("literal", value); segment "" is this
    offset: int  # where the tag starts; line and column are counted only for an error


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_INTEGER = re.compile(r"-?[0-9]+\Z")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+\Z")
_RESERVED = frozenset(
    ALLOWED_BLOCKS + ALLOWED_HELPERS + ("else", "true", "false", "null", "undefined")
    + ("lookup", "log", "helperMissing", "blockHelperMissing")  # pybars3's own helper names
)  # fmt: skip
_SIGILS = {
    "{": "triple braces {{{ }}} (unescaped output) are not allowed; write {{name}}",
    "&": "{{& }} (unescaped output) is not allowed; write {{name}}",
    ">": "partials {{> }} are not allowed",
    "^": "inverted sections {{^ }} are not allowed; write {{#unless x}}",
    "*": "decorators {{* }} are not allowed",
    "~": "whitespace control {{~ }} is not allowed",
    "=": "changing the delimiters is not allowed",
}


class _Source:
    """The template text with positions: turns an offset into (start) for errors."""

    def __init__(self, text: str):
        self.text = text

    def error(self, offset: int, message: str) -> TemplateError:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return TemplateError(message, line, column)


def check(source: str) -> None:
    """Raise TemplateError unless source keeps to our Handlebars grammar."""
    _parse(source)


def _parse(source: str) -> list:
    if not isinstance(source, str):
        raise TypeError("a template is a str")
    if len(source) > MAX_SOURCE:
        raise TemplateError(f"the template is longer than {MAX_SOURCE:,} characters", 1, 1)
    src = _Source(source)
    tokens = _tokens(src)
    if sum(not isinstance(t, str) for t in tokens) > MAX_TAGS:
        raise TemplateError(f"the template has more than {MAX_TAGS:,} tags", 1, 1)
    _check_structure(tokens, src)
    return _strip_standalone(tokens)


def _tokens(src: _Source) -> list:
    """The template as a list of text runs (str) and tags (_Tag), in order."""
    text, tokens, position = src.text, [], 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            tokens.append(text[position:])
            return [t for t in tokens if t != ""]
        tokens.append(text[position:start])
        if text.startswith("{{!--", start):  # a long comment may hold }} and ends at --}}
            end = text.find("--}}", start + 3)
            end = end + 2 if end >= 0 else end
        else:
            end = text.find("}}", start + 2)
        if end < 0:
            raise src.error(start, "this {{ is never closed with }}")
        tokens.append(_tag(src, start, end))
        position = end + 2


def _tag(src: _Source, start: int, end: int) -> _Tag:
    text = src.text
    first = text[start + 2 : start + 3]
    if first == "!":
        return _Tag("comment", "", (), start)
    if first in _SIGILS:
        raise src.error(start + 2, f"{_SIGILS[first]}. {ALLOWED}")
    inner_start = start + 2
    inner = text[inner_start:end]
    for sign, message in (("{", "{ inside a tag"), ("}", "} inside a tag"), ("~", "~")):
        if sign in inner:
            raise src.error(inner_start + inner.index(sign), f"{message} is not allowed. {ALLOWED}")
    if first == "#":
        words = _words(src, inner_start + 1, inner[1:])
        return _block_open(src, words, start)
    if first == "/":
        name = inner[1:].strip()
        if name not in ALLOWED_BLOCKS:
            raise src.error(start, f"{{{{/{name}}}}} closes no block we allow. {ALLOWED}")
        return _Tag("close", name, (), start)
    words = _words(src, inner_start, inner)
    if not words:
        raise src.error(start, f"an empty tag {{{{}}}}. {ALLOWED}")
    if len(words) == 1 and words[0].text == "else" and words[0].key is None:
        return _Tag("else", "else", (), start)
    return _output(src, words, start)


_WORD = re.compile(r"""(\s*)(?:([A-Za-z][A-Za-z0-9_]*)=)?(?:(["'])([^"']*)(["']?)|([^\s"']+))""")


@dataclass(frozen=True)
class _Word:
    at: int  # offset in the source
    text: str  # as written (a string with its quotes)
    quoted: str | None  # a string's content
    key: str | None  # for key=value


def _words(src: _Source, offset: int, inner: str) -> list[_Word]:
    """The tag's words, strings checked; words are separated by white space."""
    words, position = [], 0
    while position < len(inner.rstrip()):
        match = _WORD.match(inner, position)
        space, key, quote, content, closing, bare = match.groups()
        at = offset + match.start(2 if key else 3 if quote else 6)
        if words and not space:
            raise src.error(offset + match.start(), "put a space between the arguments")
        if quote:
            if closing != quote:
                raise src.error(at, "a string is not closed, or has a quote inside it")
            _check_string(src, offset + match.start(3), content)
            words.append(_Word(at, quote + content + quote, content, key))
        else:
            _check_bare(src, at, bare)
            words.append(_Word(at, bare, None, key))
        position = match.end()
    return words


_BARE_PROBLEMS = (
    ("[", "brackets [ ] are not allowed in names"),
    ("]", "brackets [ ] are not allowed in names"),
    ("(", "sub-expressions ( ) are not allowed"),
    (")", "sub-expressions ( ) are not allowed"),
    ("|", "block parameters | | are not allowed"),
)


def _check_bare(src: _Source, at: int, bare: str) -> None:
    for sign, message in _BARE_PROBLEMS:
        if sign in bare:
            raise src.error(at + bare.index(sign), f"{message}. {ALLOWED}")


def _check_string(src: _Source, at: int, content: str) -> None:
    for index, char in enumerate(content):
        if char == "\\" or ord(char) < 32 or ord(char) == 127:
            what = "a backslash" if char == "\\" else "a line break or control character"
            raise src.error(at + 1 + index, f"{what} is not allowed inside a string")


def _block_open(src: _Source, words: list[_Word], start: int) -> _Tag:
    if not words:
        raise src.error(start, f"a block needs a name. {ALLOWED}")
    first = words[0]
    name = first.text
    if name not in ALLOWED_BLOCKS or first.key:
        if name[:1] in (">", "*"):
            raise src.error(first.at, f"partial and decorator blocks are not allowed. {ALLOWED}")
        raise src.error(first.at, f"{{{{#{name}}}}} is not a block we allow. {ALLOWED}")
    if name in ("ifEqual", "ifNotEqual"):
        if len(words) != 3:
            raise src.error(
                first.at, f'{{{{#{name}}}}} compares two values: {{{{#{name} x "text"}}}}'
            )
        args = (_path(src, words[1]), _value(src, words[2]))
    else:
        if len(words) != 2:
            raise src.error(first.at, f"{{{{#{name}}}}} takes one name: {{{{#{name} x}}}}")
        args = (_path(src, words[1]),)
    return _Tag("open", name, args, start)


def _output(src: _Source, words: list[_Word], start: int) -> _Tag:
    first = words[0]
    name = first.text
    if name == "else":
        raise src.error(first.at, "{{else if …}} is not supported: put {{#if …}} inside {{else}}")
    if first.key is None and name in ALLOWED_BLOCKS:
        raise src.error(first.at, f"{name} is a block: {{{{#{name} …}}}}…{{{{/{name}}}}}")
    if first.key is None and name in ALLOWED_HELPERS:
        return _Tag("output", name, _helper_args(src, name, words), start)
    if len(words) > 1:
        if first.quoted is None and first.key is None and _NAME.match(name):
            message = f"{name} is not a helper we allow (only {', '.join(ALLOWED_HELPERS)})"
            raise src.error(first.at, f"{message}. {ALLOWED}")
        message = "a tag holds one name, or a helper and its arguments"
        raise src.error(words[1].at, f"{message}. {ALLOWED}")
    return _Tag("output", "", (_path(src, first),), start)


_OPTIONS = {
    "dateFormat": ("format",),
    "numberFormat": ("decimals", "thousandsSeparator", "decimalPoint"),
    "join": ("separator",),
}
_DEFAULTS = {
    "dateFormat": (("literal", ""),),
    "numberFormat": (("literal", 2), ("literal", ","), ("literal", ".")),
    "join": (("literal", ", "),),
}
_EXAMPLES = {
    "dateFormat": '{{dateFormat closeDate "DD.MM.YYYY"}}',
    "numberFormat": '{{numberFormat amount 2 "." ","}} (decimals, thousands, decimal point)',
    "join": '{{join tags ", "}}',
}


def _helper_args(src: _Source, name: str, words: list[_Word]) -> tuple:
    """The helper's value and its options in a fixed order, positional or EspoCRM's key=value."""
    if len(words) < 2:
        raise src.error(words[0].at, f"{name} needs a value: {_EXAMPLES[name]}")
    options, keys, given = list(_DEFAULTS[name]), _OPTIONS[name], set()
    for index, word in enumerate(words[2:]):
        if word.key is not None and word.key not in keys:
            allowed = ", ".join(f"{k}=" for k in keys)
            raise src.error(word.at, f"{name} takes the options {allowed}: {_EXAMPLES[name]}")
        slot = keys.index(word.key) if word.key else index
        if slot >= len(keys) or slot in given:
            raise src.error(word.at, f"too many arguments for {name}: {_EXAMPLES[name]}")
        given.add(slot)
        options[slot] = _option(src, name, keys[slot], word)
    return (_path(src, words[1]), *options)


def _option(src: _Source, helper: str, key: str, word: _Word) -> tuple:
    at = word.at + (len(word.key) + 1 if word.key else 0)
    if key == "decimals":
        if word.quoted is not None or not _INTEGER.match(word.text) or len(word.text) > 2:
            raise src.error(at, f"decimals is a whole number from 0 to 10: {_EXAMPLES[helper]}")
        if not 0 <= int(word.text) <= 10:
            raise src.error(at, f"decimals is a whole number from 0 to 10: {_EXAMPLES[helper]}")
        return ("literal", int(word.text))
    if word.quoted is None:
        raise src.error(at, f"{key} is a quoted string: {_EXAMPLES[helper]}")
    return ("literal", word.quoted)


def _value(src: _Source, word: _Word) -> tuple:
    """A literal (string, integer, decimal, true, false) or a path."""
    if word.key is None and word.quoted is not None:
        return ("literal", word.quoted)
    if word.key is None and word.text in ("true", "false"):
        return ("literal", word.text == "true")
    if word.key is None and (_INTEGER.match(word.text) or _DECIMAL.match(word.text)):
        return ("literal", word.text)  # compared as text: kept as written
    return _path(src, word)


_PATH_PROBLEMS = (
    ("../", "parent paths ../ are not allowed"),
    ("@root", "@root is not allowed"),
    ("@", "only @index, @first, @last and @key are allowed (inside {{#each}})"),
    ("=", "key=value arguments are not allowed here"),
    ("/", "write paths with dots: account.name"),
)


def _path(src: _Source, word: _Word) -> tuple:
    """A validated path as ("path", segments); the error says which part is not allowed."""
    if word.key is not None:
        raise src.error(word.at, f"key=value arguments are not allowed here. {ALLOWED}")
    text = word.text
    if word.quoted is not None or _INTEGER.match(text) or _DECIMAL.match(text):
        raise src.error(word.at, f"a name is expected here, not {text}. {ALLOWED}")
    if text in _RESERVED:
        raise src.error(word.at, f"{text} is a reserved word, not a name. {ALLOWED}")
    if text == "this":
        return ("path", ("",))
    if text in LOOP_VARIABLES:
        return ("path", (text,))
    for sign, message in _PATH_PROBLEMS:
        if sign in text:
            raise src.error(word.at + text.index(sign), f"{message}. {ALLOWED}")
    offset = word.at
    for segment in text.split("."):
        if segment == "this":
            raise src.error(offset, "write name instead of this.name; this stands alone")
        if segment.startswith("_"):
            raise src.error(offset, f"names cannot start with _. {ALLOWED}")
        if not _NAME.match(segment):
            what = repr(segment) if segment else "an empty name (.. or a stray dot)"
            raise src.error(offset, f"{what} is not a name: letters, digits and _. {ALLOWED}")
        offset += len(segment) + 1
    return ("path", tuple(text.split(".")))


def _check_structure(tokens: list, src: _Source) -> None:
    """Blocks balanced and matched, {{else}} once inside a block, @index only inside each."""
    stack: list[list] = []  # [tag, seen else]
    for token in tokens:
        if isinstance(token, str):
            continue
        if token.kind == "open":
            if len(stack) >= MAX_NESTING:
                raise _at(src, token, f"blocks nested deeper than {MAX_NESTING} levels")
            stack.append([token, False])
        elif token.kind == "close":
            if not stack:
                raise _at(src, token, f"{{{{/{token.name}}}}} closes a block that was never opened")
            opened = stack.pop()[0]
            if opened.name != token.name:
                raise _at(
                    src,
                    token,
                    f"{{{{/{token.name}}}}} does not match {{{{#{opened.name}}}}} "
                    f"opened at {_where(src, opened)}",
                )
        elif token.kind == "else":
            if not stack:
                raise _at(src, token, "{{else}} belongs inside a block such as {{#if x}}…{{/if}}")
            if stack[-1][1]:
                raise _at(src, token, f"a second {{{{else}}}} in {{{{#{stack[-1][0].name}}}}}")
            stack[-1][1] = True
        inside_each = any(entry[0].name == "each" for entry in stack)
        if not inside_each and any(a[1][0] in LOOP_VARIABLES for a in token.args if a[0] == "path"):
            raise _at(src, token, "@index, @first, @last and @key exist only inside {{#each}}")
    if stack:
        opened = stack[-1][0]
        raise _at(
            src, opened, f"{{{{#{opened.name}}}}} is never closed with {{{{/{opened.name}}}}}"
        )


def _at(src: _Source, tag: _Tag, message: str) -> TemplateError:
    return src.error(tag.offset, message)


def _where(src: _Source, tag: _Tag) -> str:
    error = src.error(tag.offset, "")
    return f"line {error.line}, column {error.column}"


_STANDALONE = ("open", "close", "else", "comment")


def _strip_standalone(tokens: list) -> list:
    """Handlebars' standalone lines: a line holding only block tags, {{else}}, comments and
    spaces disappears with its line break, so plain-text mails get no stray blank lines."""
    lines, line = [], []
    for token in tokens:
        if not isinstance(token, str):
            line.append(token)
            continue
        for piece in token.splitlines(keepends=True):
            line.append(piece)
            if piece.endswith(("\n", "\r")):
                lines.append(line)
                line = []
    lines.append(line)
    kept = []
    for line in lines:
        tags = [t for t in line if not isinstance(t, str)]
        texts = "".join(t for t in line if isinstance(t, str))
        if tags and all(t.kind in _STANDALONE for t in tags) and not texts.strip():
            line = tags
        kept.extend(line)
    return kept


# -- compiling and the cache -----------------------------------------------------------------

_cache: OrderedDict[str, tuple[object, int]] = OrderedDict()  # sha256 -> (render, characters)
_cache_lock = threading.Lock()  # guards _cache; held for dictionary work only
_compile_lock = threading.Lock()  # one compile at a time, so a template compiles only once


def _compiled(source: str):
    """The render function for source: validated and compiled once, then cached (LRU, by count
    and by characters of template text)."""
    key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    found = _cached(key)
    if found is not None:
        return found
    tokens = _parse(source)
    with _compile_lock:
        found = _cached(key)  # another thread may have compiled it while this one waited
        if found is None:
            found = _compile(tokens)
            _store(key, found, len(source))
    return found


def _cached(key: str):
    with _cache_lock:
        entry = _cache.get(key)
        if entry is None:
            return None
        _cache.move_to_end(key)
        return entry[0]


def _store(key: str, template, characters: int) -> None:
    with _cache_lock:
        _cache[key] = (template, characters)
        total = sum(size for _, size in _cache.values())
        while len(_cache) > 1 and (len(_cache) > CACHE_SIZE or total > CACHE_CHARS):
            total -= _cache.popitem(last=False)[1][1]


# pybars3 builds its grammar when it is imported (half a second), which every process that
# never renders a Handlebars template would pay: the web app's start, each command, each
# worker. The first compile imports it and sets these names; rendering comes after a compile.
Scope = strlist = CodeBuilder = _escape_html = None


def _load_pybars() -> None:
    global Scope, strlist, CodeBuilder, _escape_html
    if CodeBuilder is None:
        from pybars import _compiler

        Scope, strlist, _escape_html = _compiler.Scope, _compiler.strlist, _compiler.escape
        CodeBuilder = _compiler.CodeBuilder


def _compile(tokens: list):
    """pybars3's code for our tokens, run in a namespace whose lookups and output are ours."""
    _load_pybars()  # under _compile_lock
    try:
        code = _code(tokens)
        namespace: dict = {}
        exec(compile(code, "<mail template>", "exec", dont_inherit=True), namespace)  # noqa: S102
    except Exception as error:  # every token was validated: this is our bug, not the author's
        raise TemplateError(f"the template could not be compiled ({error})") from error
    namespace.update(
        resolve=_resolve,
        prepare=_prepare,
        resolve_subexpr=_refused,
        _pybars_={"helpers": dict(_HELPERS)},  # no lookup, no log: only the helpers we wrote
    )
    return namespace["render"]


def _code(tokens: list) -> str:
    """Drive pybars3's CodeBuilder as its compile grammar does, from our tokens not its parser."""
    builder = CodeBuilder()  # our own instance: pybars3's Compiler shares one between threads
    builder.start()
    pending: list[list] = []  # [open tag, body function or None] per open block
    for token in tokens:
        if isinstance(token, str):
            builder.add_literal(token)  # written with repr()
        elif token.kind == "output":
            _add_output(builder, token)
        elif token.kind == "open":
            pending.append([token, None])
            builder.start()
        elif token.kind == "else":
            pending[-1][1] = builder.finish()
            builder.start()
        elif token.kind == "close":
            opened, body = pending.pop()
            nested = builder.finish()
            body, inverse = (body, nested) if body is not None else (nested, None)
            builder.add_block(opened.name, [_argument(a) for a in opened.args], body, inverse)
    return builder.finish().full_code


def _add_output(builder: CodeBuilder, tag: _Tag) -> None:
    if tag.name:  # a helper: pybars3 finds it by name in helpers and calls it
        builder.add_escaped_expand(("simple", tag.name), [_argument(a) for a in tag.args])
        return
    (segments,) = (a[1] for a in tag.args)
    if len(segments) == 1:
        builder.add_escaped_expand(("simple", segments[0]), [])
    else:
        builder.add_escaped_expand(("complex", _argument(tag.args[0])), [])


def _argument(argument: tuple) -> str:
    kind, value = argument
    if kind == "path":
        return "resolve(context, " + ", ".join(repr(s) for s in value) + ")"
    return repr(value)


def _refused(*args, **kwargs):
    raise TemplateError("sub-expressions are not allowed")


# -- rendering -------------------------------------------------------------------------------

_escaping: ContextVar[bool] = ContextVar("handlebars_escaping", default=True)


def render(source: str, context: dict, *, html: bool) -> str:
    """source rendered over plain_data(context); values HTML-escaped when html is true.

    Raises TemplateError for a template its author must fix. A context that is not plain data
    raises TypeError: that is the caller's bug, not the author's.
    """
    data = plain_data(context)
    if not isinstance(data, dict):
        raise TypeError("the template context is a dict")
    template = _compiled(source)
    token = _escaping.set(html)
    try:
        return template(data)
    except TemplateError:
        raise
    except Exception as error:  # RecursionError, a helper's bug: the author still gets a message
        raise TemplateError(
            f"the template could not be rendered ({type(error).__name__})"
        ) from error
    finally:
        _escaping.reset(token)


def _resolve(context, *segments):
    """Our lookup for pybars3's generated code: dict keys only, never attributes or calls."""
    value = context
    for segment in segments:
        if type(value) is Scope:
            if segment in LOOP_VARIABLES:
                value = getattr(value, segment[1:])
                continue
            value = _unwrap(value)
        if segment == "":  # this
            continue
        if type(value) is dict:
            value = value.get(segment)
        elif type(value) is list and segment == "length":
            value = len(value)
        else:
            return None  # a str, a number, a list's method: nothing
    value = _unwrap(value)
    return value if type(value) in _DATA_TYPES else None  # never a callable, even if handed one


_DATA_TYPES = frozenset((dict, list, str, int, float, bool))


def _unwrap(value):
    while type(value) is Scope:
        value = value.context
    return value


def _prepare(value, should_escape=True) -> str:
    """A value as output text; escaped for HTML when this render is for HTML."""
    text = _text(value)
    return _escape_html(text) if _escaping.get() else text


def _text(value) -> str:
    """The text of a plain value; a dict (or anything else) gives no text, never a repr."""
    if value is None:
        return ""
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if type(value) is list:
        return ", ".join(_text(item) for item in value if type(item) not in (dict, list))
    return ""


# -- block helpers: (scope, options, arguments...) -> strlist -------------------------------


def _if(this, options, value):
    return options["fn"](this) if value else options["inverse"](this)


def _unless(this, options, value):
    return options["inverse"](this) if value else options["fn"](this)


def _with(this, options, value):
    return options["fn"](value) if value else options["inverse"](this)


def _each(this, options, value):
    if type(value) is dict:
        items = list(value.items())
    elif type(value) is list:
        items = list(enumerate(value))
    else:
        items = []
    if not items:
        return options["inverse"](this)
    result, last = strlist(), len(items) - 1
    for index, (key, item) in enumerate(items):
        key = key if type(value) is dict else None
        scope = Scope(item, this, options["root"], index=index, key=key)
        scope.first, scope.last = index == 0, index == last
        result.grow(options["fn"](scope))
    return result


def _if_equal(this, options, left, right):
    same = _compared(left) == _compared(right)
    return options["fn"](this) if same else options["inverse"](this)


def _if_not_equal(this, options, left, right):
    same = _compared(left) == _compared(right)
    return options["inverse"](this) if same else options["fn"](this)


def _compared(value) -> str:
    return _text(_unwrap(value))


# -- plain helpers: (scope, value, options...) -> str (escaped by _prepare) -----------------

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip
_DATE_TOKENS = re.compile(r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|DD|D|HH|H|mm|ss")


def _date_format(this, value, pattern):
    """An ISO date or date-time in moment.js tokens; a value that is no date stays as it is."""
    parsed = _iso(value)
    if parsed is None:
        return _text(value)
    if not pattern:
        pattern = "YYYY-MM-DD HH:mm" if isinstance(parsed, datetime) else "YYYY-MM-DD"
    return _DATE_TOKENS.sub(lambda match: _date_token(parsed, match.group(0)), pattern)


def _iso(value) -> date | datetime | None:
    if type(value) is not str or not 8 <= len(value) <= 40:
        return None
    try:
        if "T" in value or ":" in value:
            return datetime.fromisoformat(value)
        return date.fromisoformat(value)
    except ValueError:
        return None


def _date_token(moment: date, token: str) -> str:
    if token.startswith("["):
        return token[1:-1]
    hour = moment.hour if isinstance(moment, datetime) else 0
    minute = moment.minute if isinstance(moment, datetime) else 0
    second = moment.second if isinstance(moment, datetime) else 0
    return {
        "YYYY": f"{moment.year:04d}",
        "YY": f"{moment.year % 100:02d}",
        "MMMM": _MONTHS[moment.month - 1],
        "MMM": _MONTHS[moment.month - 1][:3],
        "MM": f"{moment.month:02d}",
        "M": str(moment.month),
        "DD": f"{moment.day:02d}",
        "D": str(moment.day),
        "HH": f"{hour:02d}",
        "H": str(hour),
        "mm": f"{minute:02d}",
        "ss": f"{second:02d}",
    }[token]


def _number_format(this, value, decimals, thousands, point):
    """value rounded half up to decimals, with separators (EspoCRM's, PHP's number_format)."""
    number = _number(value)
    if number is None:
        return _text(value)
    rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    sign, digits = ("-" if rounded < 0 else ""), f"{abs(rounded):f}"
    whole, _, fraction = digits.partition(".")
    groups = [whole[max(0, end - 3) : end] for end in range(len(whole), 0, -3)][::-1]
    return sign + thousands.join(groups) + (point + fraction if fraction else "")


def _number(value) -> Decimal | None:
    if type(value) in (int, float) or (type(value) is str and len(value) <= 40):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() and abs(number) < Decimal(10) ** 30 else None
    return None


def _join(this, value, separator):
    if type(value) is not list:
        return _text(value)
    return separator.join(_text(item) for item in value if type(item) not in (dict, list))


def _helper_missing(this, name, *args):
    return None  # a name with no value renders as nothing; our grammar gives it no arguments


def _block_helper_missing(this, options, *args):
    raise TemplateError("unknown block")  # never reached: every block we write is a helper


_HELPERS = {
    "if": _if,
    "unless": _unless,
    "each": _each,
    "with": _with,
    "ifEqual": _if_equal,
    "ifNotEqual": _if_not_equal,
    "dateFormat": _date_format,
    "numberFormat": _number_format,
    "join": _join,
    "helperMissing": _helper_missing,
    "blockHelperMissing": _block_helper_missing,
}

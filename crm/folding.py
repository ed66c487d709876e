"""How search compares text: case and accents folded, CJK runs cut into overlapping pairs.

Pure functions, no database. Both databases fold most text themselves as they index it
(SQLite's FTS5 tokenizer `unicode61 remove_diacritics 2`, PostgreSQL's `unaccent` in the
`crm_unaccent` text search configuration, migration 0005), and a query is folded here, in
Python, so the same words come out. Where the two databases would not agree with `fold`, the
mail's `search_extra` column (computed here on write) carries the folded words for them:

* letters FTS5 or `unaccent` fold otherwise than `fold` (Greek accents, final sigma, ligatures,
  full-width forms, rare Latin letters); the few common ones FTS5 leaves alone (ł, ø, ß, æ, œ,
  đ, þ, ð, ħ, ı, ŋ, ŧ, ё) are replaced in SQL before FTS5 sees the text (SQL_REPLACEMENTS),
  so phrases with them match on both databases;
* runs of CJK characters, which neither tokenizer cuts into words: they are indexed as
  overlapping pairs ("東京会議" as "東京 京会 会議" and a last single "議"), and a query word
  of CJK becomes the phrase of its pairs, so a two-character word is found anywhere in a run.
"""

from __future__ import annotations

import re
import unicodedata

# Letters and digits only: what both tokenisers treat as a word, and nothing a query
# language could read as an operator.
WORD = re.compile(r"[^\W_]+")

# Han, kana (half-width kana become full-width through NFKC), Hangul syllables.
CJK = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0002ffff]+"
)

# Letters without a decomposition that unaccent folds and FTS5 keeps: replaced before FTS5
# indexes the text (lower case is enough for upper case letters FTS5 then lowers).
SQL_REPLACEMENTS = {
    "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "ẞ": "SS",
    "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D",
    "ħ": "h", "Ħ": "H", "ı": "i", "ŋ": "n", "Ŋ": "N", "ŧ": "t", "Ŧ": "T", "ё": "е", "Ё": "Е",
}  # fmt: skip
_SPECIAL = str.maketrans({k: v.lower() for k, v in SQL_REPLACEMENTS.items() if k.islower()})
_MARKS = range(0x300, 0x370)
MAX_EXTRA = 100_000  # characters of a field read for search_extra (a tsvector stays < 1 MB)  # Combining Diacritical Marks: what "accents" means here


def _cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u052f"


def fold(text: str) -> str:
    """Lower case without accents: "Électricité" -> "electricite", "Straße" -> "strasse".

    Accents are taken off Latin and Greek letters; Cyrillic keeps its marks (й is not и) but
    ё is е, as unaccent has it. Kana keep their voicing marks (が is not か).
    """
    out = []
    base = ""
    for ch in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold()):
        if ord(ch) in _MARKS:
            if _cyrillic(base) and not (base == "е" and ch == "\u0308"):
                out.append(ch)
            continue
        base = ch
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out).translate(_SPECIAL))


def _agrees(ch: str) -> bool:
    """Whether both databases index this letter as `fold` does (a test checks each of them)."""
    if ch.isascii() or ch in SQL_REPLACEMENTS:
        return True
    if CJK.match(ch):
        return False
    code = ord(ch)
    if 0xC0 <= code <= 0x24F or 0x1E00 <= code <= 0x1EFF:  # Latin with accents
        base, *marks = unicodedata.normalize("NFD", ch)
        return base.isascii() and all(ord(m) in _MARKS for m in marks) and ch not in "Ǡǡ"
    if 0x391 <= code <= 0x3A9 or 0x3B1 <= code <= 0x3C9:  # Greek without accents
        return ch != "ς"
    if 0x400 <= code <= 0x4FF:  # Cyrillic
        return unicodedata.normalize("NFKC", ch) == ch and code not in (0x476, 0x477)
    return False


_AGREES: dict[str, bool] = {}


def _word_agrees(word: str) -> bool:
    for ch in word:
        if ch not in _AGREES:
            _AGREES[ch] = _agrees(ch)
        if not _AGREES[ch]:
            return False
    return True


def _cjk_parts(word: str) -> list[tuple[bool, str]]:
    """A folded word cut into (is_cjk, part)."""
    parts, rest = [], 0
    for run in CJK.finditer(word):
        if run.start() > rest:
            parts.append((False, word[rest : run.start()]))
        parts.append((True, run.group()))
        rest = run.end()
    if rest < len(word):
        parts.append((False, word[rest:]))
    return parts


def _pairs(run: str) -> list[str]:
    """A CJK run as overlapping pairs ("東京会議": 東京 京会 会議); one character stays one."""
    return [run[i : i + 2] for i in range(len(run) - 1)] or [run]


def extra_words(text: str) -> str:
    """`text` folded again for the index, when its database would not fold it as `fold` does.

    Empty for text both databases fold alike (nearly all mail in Latin or Cyrillic letters).
    Otherwise every word, in order, so phrases match; a CJK run as its pairs, and the last
    character of each run at the end, so one character finds the end of a run too.
    """
    if not text or text.isascii():
        return ""
    text = unicodedata.normalize("NFC", text[:MAX_EXTRA])
    if all(w.isascii() or _word_agrees(w) for w in WORD.findall(text)):
        return ""
    out, finals = [], []
    for word in WORD.findall(fold(text)):
        for cjk, part in _cjk_parts(word):
            out.extend(_pairs(part) if cjk else [part])
            if cjk and len(part) > 1:
                finals.append(part[-1])
    return " ".join(out + finals)


def search_extra(subject: str | None, body: str | None, addresses: str | None) -> str:
    """`emails.search_extra`: the extra words of subject, body and addresses, one line each.

    Empty when there are none (most mail); the databases read line 1 with the subject,
    line 2 with the body and line 3 with the addresses.
    """
    lines = [extra_words(subject or ""), extra_words(body or ""), extra_words(addresses or "")]
    return "\n".join(lines) if any(lines) else ""


def query_words(text: str) -> list[tuple[str, ...]]:
    """The folded words of a query, each a tuple of index tokens that must follow each other.

    A plain word is a tuple of one; a CJK run of two or more characters the tuple of its
    pairs. A single CJK character is a tuple of one and matches as a prefix of the pairs.
    """
    return [
        tuple(_pairs(part)) if cjk else (part,)
        for word in WORD.findall(fold(text))
        for cjk, part in _cjk_parts(word)
    ]


def is_cjk(token: str) -> bool:
    return bool(CJK.match(token))


def key(*parts: str | None) -> str:
    """A record's `search_key`: its searchable text folded, Cyrillic also spelt in Latin."""
    folded = " ".join(fold(" ".join(p for p in parts if p)).split())
    latin = folded.translate(_CYRILLIC_LATIN)
    return folded if latin == folded else f"{folded} {latin}"


_CYRILLIC_LATIN = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
        "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
        "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch",
        "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
        "є": "ye", "і": "i", "ї": "yi", "ґ": "g", "ў": "u",
    }
)  # fmt: skip

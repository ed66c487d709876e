"""Safe rendering of mail bodies: an nh3 allow-list for HTML, escaping and links for text.

Sanitised HTML is meant for a sandboxed `<iframe srcdoc>` (see `document`), never for the app
page itself: mail markup there would meet htmx, whose `hx-*` attributes would come alive.
Remote images are dropped unless the reader allowed them (they tell the sender the mail was
read); `cid:` images (RFC 2392) point at our own authenticated attachment URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import nh3
from markupsafe import Markup, escape

TAGS = (set(nh3.ALLOWED_TAGS) - {"map", "area", "details", "summary"}) | {
    "font",
    "tfoot",
    "big",
    "table",
    "thead",
    "tbody",
    "tr",
    "td",
    "th",
    "caption",
    "col",
    "colgroup",
    "center",
    "img",
}
# What would load, run or hide something goes with its content, not just its tags.
DROP_WITH_CONTENT = {
    "script",
    "style",
    "title",
    "template",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "noscript",
    "object",
    "embed",
    "svg",
    "math",
    "textarea",
    "select",
}
LAYOUT = {"align", "valign", "width", "height", "bgcolor", "dir", "lang", "title", "style"}
ATTRIBUTES = {
    "*": LAYOUT,
    "a": {"href", "name"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
}
# Inline CSS we keep: layout and typography, nothing that can take a URL.
STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "line-height",
    "letter-spacing",
    "text-align",
    "text-decoration",
    "text-transform",
    "text-indent",
    "vertical-align",
    "white-space",
    "word-break",
    "word-wrap",
    "direction",
    "width",
    "max-width",
    "min-width",
    "height",
    "max-height",
    "min-height",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "display",
    "float",
    "clear",
    "overflow",
    "table-layout",
}
URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
IMAGE_DATA = re.compile(
    r"^data:image/(png|gif|jpeg|jpg|webp);base64,[a-z0-9+/=\s]*$", re.IGNORECASE
)
# CSS that could fetch or evaluate: url(), image-set(), @import, old IE expression(), escapes.
CSS_DANGER = re.compile(r"url\s*\(|image-set|@import|expression|\\|/\*", re.IGNORECASE)


@dataclass(frozen=True)
class Cleaned:
    html: str
    remote_images: int  # how many remote images were dropped (0 when they were allowed)


def clean(
    html: str, cid_url: Callable[[str], str | None] = lambda cid: None, allow_remote: bool = False
) -> Cleaned:
    """Sanitise mail HTML; remote images kept only when `allow_remote`."""
    blocked = 0

    def keep(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if attr == "style":
            return _safe_declarations(value)
        if attr not in ("src", "href"):
            return value
        scheme = value.strip().split(":", 1)[0].lower()
        if tag == "img" and attr == "src":
            if scheme == "cid":
                return cid_url(unquote(value.strip()[4:]).strip("<>"))
            if scheme == "data":
                return value if IMAGE_DATA.match(value.strip()) else None
            if scheme in ("http", "https") and not allow_remote:
                blocked += 1
                return None
            return value if scheme in ("http", "https") else None
        return None if scheme in ("data", "cid") else value

    result = nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=keep,
        url_schemes=URL_SCHEMES,
        filter_style_properties=STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Cleaned(result, blocked)


def _safe_declarations(style: str) -> str | None:
    # Drop each declaration that could fetch; nh3 then keeps only the allow-listed properties.
    kept = [d for d in style.split(";") if d.strip() and not CSS_DANGER.search(d)]
    return ";".join(kept) or None


def csp(origin: str, allow_remote: bool) -> str:
    """The policy inside the iframe: no scripts, no fetches but images (ours, or any if allowed)."""
    images = f"data: {origin}" + (" https: http:" if allow_remote else "")
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; "
        "form-action 'none'; base-uri 'none'"
    )


def document(body: str, origin: str, allow_remote: bool = False) -> str:
    """A whole HTML document for `<iframe sandbox srcdoc>`, with its own strict CSP first."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp(origin, allow_remote))}">'
        '<meta name="referrer" content="no-referrer">'
        # Links open in a new tab (the frame's sandbox lets popups escape it): inside the
        # frame they would go nowhere, the page's policy refuses foreign frame content.
        '<base target="_blank">'
        "<style>body{font:14px/1.45 system-ui,sans-serif;margin:8px;overflow-wrap:anywhere}"
        "img{max-width:100%;height:auto}</style>"
        f"</head><body>{body}</body></html>"
    )


URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


def text_to_html(text: str) -> Markup:
    """Plain text escaped, with http(s) links made clickable (they open outside the app)."""
    parts, last = [], 0
    for m in URL.finditer(text):
        parts.append(escape(text[last : m.start()]))
        url = escape(m.group(0))
        parts.append(
            Markup(f'<a href="{url}" rel="noopener noreferrer nofollow" target="_blank">{url}</a>')
        )
        last = m.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)

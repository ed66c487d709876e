"""The HTML allow-list: layout survives, scripts and remote loads do not."""

from __future__ import annotations

import pytest

from crm.mail.sanitize import clean, csp, document, text_to_html

VECTORS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<body onload="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt&colon;alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<svg onload="alert(1)"><script>alert(1)</script></svg>',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/e">',
    '<form action="https://evil.example"><input name=a><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    '<link rel=stylesheet href="https://evil.example/s.css">',
    '<style>@import "https://evil.example/s.css"; body{background:url(https://evil.example/b)}</style>',
    '<div style="background-image:url(https://evil.example/b)">x</div>',
    '<div style="background:u\\72l(https://evil.example/b)">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    '<table background="https://evil.example/t.png"><tr><td>x</td></tr></table>',
    '<img srcset="https://evil.example/a.png 1x">',
    '<video poster="https://evil.example/p.png" src="https://evil.example/v.mp4"></video>',
    '<div hx-get="/inbox/actions" hx-trigger="load">x</div>',
    '<p data-x="1" onmouseover="alert(1)">x</p>',
    "<template><img src=x onerror=alert(1)></template>",
    '<img src="https://evil.example/track.gif">',
]


@pytest.mark.parametrize("vector", VECTORS)
def test_no_script_and_no_remote_load_survives(vector):
    out = clean(vector).html.lower()
    for bad in (
        "<script",
        "onerror",
        "onload",
        "onmouseover",
        "javascript",
        "evil.example",
        "<iframe",
        "<object",
        "<embed",
        "<form",
        "<meta",
        "<base",
        "<link",
        "<style",
        "url(",
        "expression",
        "hx-",
        "<svg",
        "srcset",
        "data:text",
    ):
        assert bad not in out, (vector, out)


def test_layout_survives():
    html = (
        '<table style="border-collapse:collapse" width="600"><tr><td style="padding:4px;color:#333" '
        'align="center" colspan="2"><font color="red">Hi</font> <b>bold</b></td></tr></table>'
    )
    out = clean(html).html
    assert '<table style="border-collapse:collapse" width="600">' in out
    assert 'style="padding:4px;color:#333"' in out and 'colspan="2"' in out
    assert '<font color="red">' in out and "<b>bold</b>" in out


def test_dangerous_declarations_go_and_the_rest_stays():
    out = clean(
        '<p style="color:red;background-image:url(https://x.example/a);position:fixed">x</p>'
    ).html
    assert out == '<p style="color:red">x</p>'


def test_remote_images_are_counted_when_blocked_and_kept_when_allowed():
    html = '<img src="https://a.example/1.png"><img src="http://b.example/2.png">'
    blocked = clean(html)
    assert blocked.remote_images == 2 and "a.example" not in blocked.html
    allowed = clean(html, allow_remote=True)
    assert allowed.remote_images == 0 and 'src="https://a.example/1.png"' in allowed.html


def test_cid_images_are_rewritten_and_unknown_cids_dropped():
    urls = {"logo@x": "https://crm.example/mail/1/attachments/2?inline=1"}
    out = clean('<img src="cid:logo@x"><img src="cid:other@x">', cid_url=urls.get).html
    assert out == '<img src="https://crm.example/mail/1/attachments/2?inline=1"><img>'


def test_inline_data_images_are_kept_but_not_svg():
    png = '<img src="data:image/png;base64,iVBORw0KGgo=">'
    assert clean(png).html == png
    assert "data:" not in clean('<img src="data:image/svg+xml;base64,PHN2Zz4=">').html


def test_links_get_safe_rel():
    assert 'rel="noopener noreferrer nofollow"' in clean('<a href="https://x.example">x</a>').html


def test_document_carries_its_own_policy():
    doc = document("<p>x</p>", "http://127.0.0.1:5000")
    assert "default-src &#39;none&#39;; img-src data: http://127.0.0.1:5000;" in doc
    assert "https:" not in csp("http://127.0.0.1:5000", allow_remote=False)
    assert "img-src data: http://127.0.0.1:5000 https: http:" in csp("http://127.0.0.1:5000", True)
    assert "script" not in csp("http://h", True)


def test_text_is_escaped_and_links_made():
    out = str(text_to_html('<b>x</b> https://example.com/a?b=1&c=2. "javascript:alert(1)"'))
    assert out.startswith("&lt;b&gt;x&lt;/b&gt; ")
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank">'
        in out
    )
    assert "javascript:alert(1)" in out and 'href="javascript' not in out

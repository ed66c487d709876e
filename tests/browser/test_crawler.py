"""Every page a user and an admin can reach renders: no 5xx, no broken link, no console error.

The crawl starts at the main pages, follows every same-origin `<a href>` and every `hx-get`
breadth-first (bounded by MAX_URLS per user), and opens pages in Chromium, so what the htmx
loads and the scripts do is checked as well. hx-get URLs are also fetched as htmx fragments.
Downloads (raw mail, attachments, inline images) are fetched for their status only.
Findings are collected over the whole crawl and reported together, one line per URL.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import MetaData, select

from tests.browser.session import sign_in
from tests.support.crawl_data import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MAX_URLS = 1600  # per user, a bound on runaway URLs: the seeded site has about 1200 for a user
SETTLE_SECONDS = 3.0  # the longest wait for a page's htmx requests to finish
# Where each finding is also appended the moment it is seen (for whoever fixes it), if set.
FINDINGS_FILE = os.environ.get("CRM_CRAWLER_FINDINGS")
# Never followed: they end the session, or only change state (they are POST forms anyway).
SKIP_PATH = re.compile(r"^/logout\b")
# Fetched for their status only: not pages, and a browser would download them.
DOWNLOAD_PATH = re.compile(r"^/mail/\d+/(attachments/\d+|inline/\d+|original)\b|^/static/")
# Pages whose content differs with the data, not only with the template: always in the browser.
ALWAYS_IN_BROWSER = re.compile(r"^/mail/\d+$")
BROWSER_PER_SHAPE = 3  # other pages of one shape (/records/contacts/N/edit) opened in the browser
# Query parameters that differ on every render without naming another page.
# (`t`: an inline image's signed token; `back`: the list a mail page returns to.)
VOLATILE_PARAMS = {"t", "back"}
# GETs may change these, and only these: opening a mail marks it read (what every mail client
# does), and the notification it came with.
STATE_CHANGED_BY_READING = {
    "email_user_states.is_read",
    "notifications.read_at",
}


def start_paths(data, admin: bool) -> list[str]:
    """The main pages: each nav item, a folder, a search, mail of each parent type, a record of
    each kind, the settings pages; an admin's own pages, or a user's folder and filter."""
    paths = [
        "/",
        "/inbox/",
        "/inbox/sent",
        f"/inbox/{data.group_folder_id}",
        "/inbox/search?q=objedn%C3%A1vka",
        *(f"/mail/{email_id}" for email_id in data.linked_mail_ids.values()),
        *data.record_paths,
        *(f"/records/{kind}/" for kind in ("accounts", "contacts", "leads", "opportunities")),
        *(f"/records/{kind}/" for kind in ("cases", "tasks")),
        "/preferences/",
        "/folders/",
        "/filters/",
        "/notifications/",
        "/imports/",
        "/accounts/",
        *data.campaign_paths,
        *data.template_paths,
    ]
    if admin:
        return [*paths, "/compose/", "/admin/", "/admin/teams/", "/admin/settings",
                "/campaigns/settings", "/accounts/group/new"]  # fmt: skip
    return [
        *paths,
        f"/inbox/{data.folder_id}",
        f"/filters/{data.filter_id}",
        f"/accounts/{data.mail_account_id}",
        *data.oauth_paths,
        # Writing mail, and what became of the mail sent (Sent, Failed, Unknown, Queued, ...).
        *data.compose_paths,
        *(f"/mail/{email_id}" for email_id in data.sent_mail_ids.values()),
        "/inbox/drafts",
    ]


class _Links(HTMLParser):
    """`<a href>` and `hx-get` values of an HTML document or fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.hx_gets: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        if values.get("hx-get"):
            self.hx_gets.append(values["hx-get"])


@dataclass
class Crawl:
    """One user's breadth-first crawl: what was visited and what went wrong where."""

    page: object
    origin: str
    username: str
    queue: deque = field(default_factory=deque)
    seen: set = field(default_factory=set)
    visited: int = 0
    findings: dict = field(default_factory=dict)  # URL -> what went wrong there
    in_flight: int = 0
    current: str = ""
    shapes: dict = field(default_factory=dict)  # URL shape -> pages of it opened in the browser

    def watch(self) -> None:
        page = self.page
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self._find(self.current, f"page error: {exc}"))
        page.on("response", self._response)
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._failed)
        page.on("download", lambda d: d.cancel())

    def _console(self, message) -> None:
        where = (message.location or {}).get("url", "")
        # The crawl runs offline (and with no route, which would turn off the HTTP cache): a
        # remote image the user chose to show cannot load. Our own requests always count.
        offline = message.text.startswith("Failed to load resource: net::ERR_NAME_NOT_RESOLVED")
        if message.type != "error" or (offline and not self._same_origin(where)):
            return
        if message.text.startswith("Failed to load resource") and self._same_origin(where):
            self._find(where, f"console error on {self.current}: {message.text}")
        else:
            self._find(self.current, f"console error: {message.text} (at {where})")

    def _response(self, response) -> None:
        """What the page loads by itself (htmx, scripts, images); the page is _check_status's."""
        if response.request.is_navigation_request() and response.frame == self.page.main_frame:
            return
        if response.status >= 500 or response.status in (404, 410):
            self._find(response.url, f"{response.status} when {self.current} loaded it")

    def _started(self, request) -> None:
        self.in_flight += 1

    def _ended(self, request) -> None:
        self.in_flight -= 1

    def _failed(self, request) -> None:
        self.in_flight -= 1
        if self._same_origin(request.url) and "ERR_ABORTED" not in (request.failure or ""):
            self._find(request.url, f"request failed ({request.failure}) on {self.current}")

    def _find(self, url: str, problem: str) -> None:
        problems = self.findings.setdefault(self._short(url), [])
        if problem in problems:
            return
        problems.append(problem)
        if FINDINGS_FILE:
            with open(FINDINGS_FILE, "a") as fh:
                fh.write(f"{self._short(url)} [{self.username}] {problem}\n")

    def report(self) -> list[str]:
        return [f"{url} [{self.username}] " + "; ".join(p) for url, p in self.findings.items()]

    # --- URLs ---------------------------------------------------------------------------

    def _same_origin(self, url: str) -> bool:
        return url.startswith(self.origin + "/") or url == self.origin

    def _short(self, url: str) -> str:
        return url[len(self.origin) :] if self._same_origin(url) else url

    def _key(self, url: str) -> str:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, True) if k not in VOLATILE_PARAMS]
        return urlunsplit(("", "", parts.path, urlencode(query), ""))

    def add(self, url: str, base: str, fragment: bool = False) -> None:
        absolute = urljoin(base, url.strip())
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or not self._same_origin(absolute):
            return
        absolute = urlunsplit(parts._replace(fragment=""))
        if SKIP_PATH.match(parts.path):
            return
        kind = "download" if DOWNLOAD_PATH.match(parts.path) else "page"
        for what in (["fragment"] if fragment and kind == "page" else []) + [kind]:
            key = (what, self._key(absolute))
            if key not in self.seen:
                self.seen.add(key)
                self.queue.append((what, absolute))

    # --- visiting -----------------------------------------------------------------------

    def run(self, paths: list[str]) -> None:
        for path in paths:
            self.add(path, self.origin)
        while self.queue and self.visited < MAX_URLS:
            what, url = self.queue.popleft()
            self.visited += 1
            self.current = self._short(url)
            if what == "page" and self._in_browser(url):
                self._open(url)
            elif what == "page":
                self._fetch(url, htmx=False)
            else:
                self._fetch(url, htmx=what == "fragment")

    def _in_browser(self, url: str) -> bool:
        """Every mail page, and the first few pages of each other shape of URL, open in the
        browser; further pages of a shape already seen there are fetched (status and links)."""
        parts = urlsplit(url)
        if ALWAYS_IN_BROWSER.match(parts.path):
            return True
        shape = (
            re.sub(r"\d+", "N", parts.path),
            tuple(sorted(k for k, _ in parse_qsl(parts.query))),
        )
        self.shapes[shape] = self.shapes.get(shape, 0) + 1
        return self.shapes[shape] <= BROWSER_PER_SHAPE

    def _open(self, url: str) -> None:
        try:
            response = self.page.goto(url)
        except PlaywrightError as exc:
            if "Download is starting" in str(exc):
                return self._fetch(url, htmx=False)
            return self._find(url, f"navigation failed: {str(exc).splitlines()[0]}")
        if response is None:
            return None
        if not self._same_origin(self.page.url):
            return self._find(url, f"left the site for {self.page.url}")
        self._check_status(url, response.status)
        self._settle()
        links = self.page.evaluate(
            """() => [
              [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
              [...document.querySelectorAll('[hx-get]')].map(e => e.getAttribute('hx-get')),
            ]"""
        )
        base = self.page.url
        for href in links[0]:
            self.add(href, base)
        for hx_get in links[1]:
            self.add(hx_get, base, fragment=True)
        return None

    def _settle(self) -> None:
        """Wait until htmx's load-triggered requests (and what they trigger) are answered."""
        deadline = time.monotonic() + SETTLE_SECONDS
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:
            self.page.wait_for_timeout(10)
            quiet = quiet + 1 if self.in_flight <= 0 else 0

    def _fetch(self, url: str, htmx: bool) -> None:
        headers = {"HX-Request": "true"} if htmx else {}
        response = self.page.request.get(url, headers=headers, max_redirects=5)
        self._check_status(url, response.status, "as htmx fragment" if htmx else "fetched")
        if "text/html" in response.headers.get("content-type", ""):
            parser = _Links()
            parser.feed(response.text())
            for href in parser.hrefs:
                self.add(href, url)
            for hx_get in parser.hx_gets:
                self.add(hx_get, url, fragment=True)

    def _check_status(self, url: str, status: int, how: str = "opened") -> None:
        if status >= 500 or status in (404, 410):
            self._find(url, f"{status} ({how})")


def known_bugs(data) -> dict[str, str]:
    """Findings of known bugs, by URL, each pinned by a strict xfail test elsewhere. They are
    left out of the crawl's verdict (so it still guards everything else), but must still be
    found: when one is not, its bug was fixed and its entry here is to be removed."""
    return {}


def snapshot(engine) -> dict:
    """Every row of every table, by primary key: to tell which columns the crawl changed."""
    meta = MetaData()
    meta.reflect(engine)
    rows = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            pk = [c.name for c in table.primary_key.columns] or [c.name for c in table.columns]
            for row in conn.execute(select(table)).mappings():
                rows[(table.name, tuple(row[c] for c in pk))] = dict(row)
    return rows


def changed_columns(before: dict, after: dict) -> set[str]:
    changed = set()
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            changed.add(f"{key[0]} (rows {'added' if old is None else 'removed'})")
            continue
        changed |= {f"{key[0]}.{col}" for col in old if old[col] != new.get(col)}
    return changed


@pytest.fixture
def crawl_site(app, services, imap_server, smtp_server):
    # Static files are cached instead of revalidated on every one of hundreds of pages.
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600
    return seed(services, imap_server, smtp_server)


def test_a_user_and_an_admin_reach_every_page_without_errors(
    live_server, browser_instance, services, crawl_site
):
    findings, counts, state_changes, conversations = [], {}, set(), set()
    known, known_seen = known_bugs(crawl_site), set()
    for username, admin in ((crawl_site.user, False), (crawl_site.admin, True)):
        context = browser_instance.new_context()
        context.set_default_timeout(10_000)
        page = context.new_page()
        try:
            sign_in(page, live_server, username)
            crawl = Crawl(page, live_server, username)
            crawl.watch()
            before = snapshot(services.engine)
            crawl.run(start_paths(crawl_site, admin))
            state_changes |= changed_columns(before, snapshot(services.engine))
            counts[username] = (crawl.visited, len(crawl.queue))
            # The user's lists show conversations (crawl_data): their rows open with ?conversation=.
            conversations |= {key for _, key in crawl.seen if "conversation=" in key}
            known_seen |= {url for url in known if crawl.findings.pop(url, None)}
            findings += crawl.report()
        finally:
            context.close()
    # Enough of the site was seen for the assertion to mean something.
    for username, (visited, left) in counts.items():
        assert visited >= 100, f"{username} reached only {visited} URLs"
    assert any(key.startswith("/mail/") for key in conversations), "no conversation was opened"
    assert not findings, f"{len(findings)} URLs fail (visited, left: {counts}):\n" + "\n".join(
        findings
    )
    assert known_seen == set(known), (
        f"known bugs no longer found (fixed? remove them from known_bugs): "
        f"{[known[url] for url in set(known) - known_seen]}"
    )
    assert state_changes <= STATE_CHANGED_BY_READING, (
        f"GET requests changed {sorted(state_changes - STATE_CHANGED_BY_READING)}"
    )

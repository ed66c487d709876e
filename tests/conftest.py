"""Fixtures over real services: the database (SQLite or PostgreSQL, by CRM_TEST_DB), Redis,
a private Dovecot, an aiosmtpd server and Chromium through Playwright."""

from __future__ import annotations

import os
import re
import threading

import pytest
from redis import Redis

from crm import create_app
from crm.config import Config
from crm.migrations import upgrade
from tests.support import databases
from tests.support.redisdb import REDIS_SERVER, claim_index

ALLOWLIST_ALL_LOOPBACK = "127.0.0.1:*"


def pytest_collection_modifyitems(config, items):
    """Browser tests run once, on SQLite: what they check is rendered the same on both databases,
    and `make test` runs the suite twice. CRM_BROWSER_ON_ALL_DBS=1 runs them on PostgreSQL too."""
    if databases.backend() == "sqlite" or os.environ.get("CRM_BROWSER_ON_ALL_DBS") == "1":
        return
    skip = pytest.mark.skip(reason="browser tests run on SQLite (CRM_BROWSER_ON_ALL_DBS=1: all)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url, drop = databases.create_database(tmp_path_factory.mktemp("db"))
    upgrade(url)
    yield url
    drop()


@pytest.fixture(scope="session")
def redis_url():
    index, release = claim_index()
    yield f"{REDIS_SERVER}/{index}"
    release()


@pytest.fixture
def config(tmp_path, database_url, redis_url):
    return Config(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        redis_url=redis_url,
        secret_key="test-secret",
        data_dir=tmp_path / "data",
        secrets_key="",
        mail_host_allowlist=ALLOWLIST_ALL_LOOPBACK,
        login_rate_limit="5 per minute",
        queue_name="mail",
        testing=True,
    )


@pytest.fixture
def app(config, redis):
    app = create_app(config)
    app.config["WTF_CSRF_ENABLED"] = True
    yield app
    services = app.extensions["crm"]
    databases.empty_all_tables(services.engine)
    services.dispose()


@pytest.fixture
def services(app):
    return app.extensions["crm"]


@pytest.fixture
def db(services):
    """A session on the test database; every table is emptied after the test."""
    session = services.Session()
    yield session
    session.close()


@pytest.fixture
def redis(redis_url):
    conn = Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


class CsrfClient:
    """A test client that reads the CSRF token off pages, as a browser would."""

    TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')

    def __init__(self, app):
        self.app = app
        self.raw = app.test_client()
        self.token = None

    def _fetch_token(self):
        page = self.raw.get("/login", follow_redirects=True).get_data(as_text=True)
        m = self.TOKEN_RE.search(page)
        self.token = m.group(1) or m.group(2)

    def get(self, *args, **kwargs):
        return self.raw.get(*args, **kwargs)

    def _send(self, method, url, htmx=False, csrf=True, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if htmx:
            headers["HX-Request"] = "true"
        if csrf:
            if self.token is None:
                self._fetch_token()
            data = kwargs.get("data")
            if htmx or data is None or not isinstance(data, dict):
                headers["X-CSRFToken"] = self.token
            else:
                data = dict(data)
                data.setdefault("csrf_token", self.token)
                kwargs["data"] = data
        return getattr(self.raw, method)(url, headers=headers, **kwargs)

    def post(self, url, **kwargs):
        return self._send("post", url, **kwargs)

    def put(self, url, **kwargs):
        return self._send("put", url, **kwargs)

    def delete(self, url, **kwargs):
        return self._send("delete", url, **kwargs)

    def login(self, username, password="password123"):
        response = self.post("/login", data={"username": username, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        self.token = None  # a new session gets a new token
        return response


@pytest.fixture
def client(app):
    return CsrfClient(app)


@pytest.fixture
def make_user(services):
    """Create users (password 'password123') with addresses and teams."""
    from crm.records.users import create_user

    def make(username, emails=(), admin=False, teams=(), name=""):
        with services.session() as session:
            user = create_user(
                session, username, "password123", list(emails), admin, list(teams), name
            )
            return user.id

    return make


@pytest.fixture
def admin_client(client, make_user):
    make_user("admin", ["admin@example.com"], admin=True)
    client.login("admin")
    return client


@pytest.fixture
def user_client(client, make_user):
    make_user("rep", ["rep@example.com"])
    client.login("rep")
    return client


# --- mail servers -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def imap_server():
    import shutil
    import tempfile

    from tests.support.dovecot import Dovecot

    # Not under pytest's tmp dir: that is mode 0700, and Dovecot's unprivileged processes
    # must reach the config, users file and mail.
    workdir = tempfile.mkdtemp(prefix="crm-dovecot-")
    os.chmod(workdir, 0o755)
    server = Dovecot(workdir).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def oauth_provider_server():
    from tests.support.oauth_provider import ProviderServer

    server = ProviderServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def oauth_provider(oauth_provider_server):
    """The local OAuth2 provider (tests/support/oauth_provider.py), reset for each test."""
    provider = oauth_provider_server.provider
    provider.reset()
    return provider


@pytest.fixture(scope="session")
def oauth_imap_server(oauth_provider_server):
    """A Dovecot that also takes XOAUTH2 / OAUTHBEARER logins, checked by the local provider."""
    import shutil
    import tempfile

    from tests.support.dovecot import Dovecot

    workdir = tempfile.mkdtemp(prefix="crm-dovecot-oauth-")
    os.chmod(workdir, 0o755)
    url = oauth_provider_server.provider.introspection_url
    server = Dovecot(workdir, oauth2_introspection_url=url).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def smtp_server():
    from tests.support.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


# --- browser ----------------------------------------------------------------------------


@pytest.fixture
def live_server(app):
    """The app served by a real WSGI server on a free loopback port, in a thread."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser(browser_instance):
    """A fresh browser context (own cookies); yields a page."""
    context = browser_instance.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()

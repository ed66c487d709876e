import pytest

from crm import create_app
from crm.config import Config


def test_create_app_uses_given_config(config):
    app = create_app(config)
    assert app.config["CRM_CONFIG"] is config
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is False  # `make run` serves plain HTTP
    app.extensions["crm"].dispose()


def test_secure_cookies_from_the_environment(config, monkeypatch):
    monkeypatch.setenv("CRM_SECURE_COOKIES", "1")
    assert Config.from_env().secure_cookies is True
    config.secure_cookies = True
    app = create_app(config)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    app.extensions["crm"].dispose()


def test_default_database_is_sqlite_in_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CRM_INSTANCE_DIR", str(tmp_path))
    config = Config.from_env()
    assert config.database_url == f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    assert config.data_dir == tmp_path / "data"


def test_secret_key_is_generated_once_into_instance_folder(tmp_path, database_url):
    config = Config(instance_dir=tmp_path, database_url=database_url)
    first = create_app(config)
    second = create_app(config)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    for app in (first, second):
        app.extensions["crm"].dispose()


def _flask(tmp_path, database_url: str, *args: str):
    """`flask --app app ...` as `make run` calls it, with this DATABASE_URL."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATABASE_URL": database_url, "CRM_INSTANCE_DIR": str(tmp_path)}
    flask = [sys.executable, "-m", "flask", "--app", "app", *args]
    return subprocess.run(
        flask, cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_hosting_platform_database_urls_mean_postgresql_through_psycopg(tmp_path, scheme):
    from tests.support.databases import PG_SERVER_URL

    url = scheme + PG_SERVER_URL.split("://", 1)[1]
    assert Config(database_url=url).database_url == PG_SERVER_URL
    done = _flask(tmp_path, url, "db", "current")
    assert done.returncode == 0, done.stderr
    assert "No such command" not in done.stderr


@pytest.mark.parametrize(
    "url, reason",
    [
        ("mysql://crm:hunter2@db.example/crm", "No module named"),
        ("postgresql+psycopg2://crm:hunter2@db.example/crm", "No module named 'psycopg2'"),
        ("not a url", "Could not parse"),
    ],
)
def test_an_unusable_database_url_is_one_line_that_says_why(tmp_path, url, reason):
    done = _flask(tmp_path, url, "db", "upgrade")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Mail CRM cannot start: DATABASE_URL")
    assert reason in lines[0] and "hunter2" not in lines[0]

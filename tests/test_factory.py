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


def test_domain_never_imports_flask_or_rq():
    import ast
    from pathlib import Path

    domain = [Path("crm/mail"), Path("crm/templating"), Path("crm/models")]
    domain_files = [p for d in domain if d.exists() for p in d.rglob("*.py")]
    domain_files += [Path(p) for p in ("crm/db.py", "crm/access.py", "crm/addressbook.py")]
    for path in domain_files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"flask", "rq", "flask_login"}, (path, name)

"""A CRM whose heart is email."""

from __future__ import annotations

from flask import Flask

from crm.config import Config
from crm.migrations import MIGRATIONS_DIR


def create_app(config: Config | None = None) -> Flask:
    """Build the web app; the only place where parts are wired together."""
    from crm import cli, web
    from crm.blueprints import auth, register_blueprints
    from crm.extensions import csrf, limiter, migrate
    from crm.services import Services

    config = config or Config.from_env()
    config.instance_dir.mkdir(parents=True, exist_ok=True)
    services = Services(config)
    app = Flask(__name__, instance_path=str(config.instance_dir))
    app.config.update(
        CRM_CONFIG=config,
        SECRET_KEY=services.secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=config.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,
        RATELIMIT_STORAGE_URI=config.redis_url,
        RATELIMIT_HEADERS_ENABLED=True,
        # If Redis is down, count sign-in attempts in memory rather than refuse every sign-in.
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        MAX_CONTENT_LENGTH=50 * 1024 * 1024,
        TESTING=config.testing,
    )
    web.init_app(app, services)
    csrf.init_app(app)
    limiter.init_app(app)
    auth.init_app(app)
    migrate.init_app(app, db=None, directory=str(MIGRATIONS_DIR))
    register_blueprints(app)
    cli.init_app(app)
    return app

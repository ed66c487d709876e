"""Sign in and out; loading the signed-in user; the admin-only guard."""

from __future__ import annotations

from functools import cache, wraps

from flask import Blueprint, Flask, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from crm.extensions import limiter, login_manager
from crm.models import User
from crm.passwords import hash_password, verify_password
from crm.records import users
from crm.web import db, is_safe_local_path, page

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    from flask import current_app

    return current_app.config["CRM_CONFIG"].login_rate_limit


@bp.get("/login")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    return page("auth/login.html", next=request.args.get("next", ""))


@bp.post("/login")
@limiter.limit(_login_limit)
def login_post():
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    user = users.user_named(db(), username)
    if user is None:
        verify_password(_unknown_user_hash(), password)  # as slow as a wrong password
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        flash("Wrong user name or password.", "error")
        return page("auth/login.html", status=401, next=target, username=username)
    login_user(user)
    return redirect(target if is_safe_local_path(target) else url_for("home.index"), 303)


@cache
def _unknown_user_hash() -> str:
    """A hash to check unknown names against, so timing does not tell which names exist."""
    return hash_password("no such user")


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"), 303)


def _load_user(session_id: str):
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db().get(User, int(user_id))
    if user is None or not user.is_active or str(user.session_version) != version:
        return None
    return user


def admin_required(view):
    """Admin-only views answer 404 to everyone else, as hidden records do."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


def _rate_limited(_exc):
    return page("auth/login.html", status=429, next="", rate_limited=True)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"
    app.register_error_handler(429, _rate_limited)

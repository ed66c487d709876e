"""Personal preferences."""

from flask import Blueprint

bp = Blueprint("preferences", __name__, url_prefix="/preferences")

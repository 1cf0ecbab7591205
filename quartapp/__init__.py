"""quartapp: email and password accounts with server-side sessions in Redis."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup
from quart import Quart

from . import security_headers
from .blueprints import account, auth, health, home
from .config import load_config
from .countdown import CountdownPoll
from .csrf import CsrfProtection
from .database import Database
from .errors import register_error_handlers
from .passwords import PasswordHasher
from .redis_client import RedisClient
from .server_session import ServerSessions
from .throttle import Throttling

PACKAGE = Path(__file__).resolve().parent
# templates/ and static/: inside the package in an installed copy (the wheel puts them
# there), beside it in a checkout (an editable install uses the folders where they are).
ASSETS = PACKAGE if (PACKAGE / "templates").is_dir() else PACKAGE.parent


def clock(seconds: int) -> str:
    """Seconds as ``m:ss`` (or ``h:mm:ss`` from an hour up)."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def timestamp(milliseconds: int) -> Markup:
    """A Redis-clock time in ms as a ``<time>`` element, in UTC."""
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(timespec="seconds"), moment.strftime("%d %b %Y, %H:%M:%S UTC")
    )


def create_app(overrides: Mapping[str, Any] | None = None) -> Quart:
    """Build a new app; ``overrides`` win over ``QUARTAPP_*`` environment variables."""
    app = Quart(
        __name__,
        template_folder=str(ASSETS / "templates"),
        static_folder=str(ASSETS / "static"),
    )
    load_config(app, overrides)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600

    RedisClient(app)
    Database(app)
    PasswordHasher(app)
    # Order matters: the session is loaded before CSRF checks the token bound to it.
    sessions = ServerSessions(app)
    Throttling(app)
    CsrfProtection(app)
    security_headers.init_app(app)
    register_error_handlers(app)

    app.jinja_env.filters["clock"] = clock
    app.jinja_env.filters["timestamp"] = timestamp
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(health.bp)
    CountdownPoll(app, sessions)
    return app

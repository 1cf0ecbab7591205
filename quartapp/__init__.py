"""quartapp: email and password accounts with server-side sessions in Redis."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quartapp.accounts.hashing import PasswordHasher
from quartapp.accounts.throttle import Throttling
from quartapp.blueprints import (
    account,
    api_docs,
    auth,
    health,
    home,
    mail_links,
    passkeys,
    two_factor,
)
from quartapp.blueprints.front_door import FrontDoor
from quartapp.config import load_config
from quartapp.engine.quart_request_cycle import Application
from quartapp.infra.database import Database
from quartapp.infra.redis_client import RedisClient
from quartapp.mail.queue import Mailer
from quartapp.sessions.csrf import CsrfProtection
from quartapp.sessions.extension import Sessions
from quartapp.web import api as described_api
from quartapp.web import headers as security_headers
from quartapp.web import templating
from quartapp.web.errors import register_error_handlers

PACKAGE = Path(__file__).resolve().parent
# templates/ and static/: inside the package in an installed copy (the wheel puts them
# there), beside it in a checkout (an editable install uses the folders where they are).
ASSETS = PACKAGE if (PACKAGE / "templates").is_dir() else PACKAGE.parent


def create_app(overrides: Mapping[str, Any] | None = None) -> Application:
    """Build a new app; ``overrides`` win over ``QUARTAPP_*`` environment variables."""
    app = Application(
        __name__,
        template_folder=str(ASSETS / "templates"),
        static_folder=str(ASSETS / "static"),
    )
    load_config(app, overrides)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600

    RedisClient(app)
    Mailer(app)
    Database(app)
    PasswordHasher(app)
    # Order matters: the session is loaded before CSRF checks the token bound to it.
    sessions = Sessions(app)
    Throttling(app)
    CsrfProtection(app)
    app.header_finishers.append(security_headers.finish_headers)
    register_error_handlers(app)

    templating.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(passkeys.bp)
    app.register_blueprint(mail_links.bp)
    app.register_blueprint(two_factor.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api_docs.bp)
    described_api.init_app(app)
    FrontDoor(app, sessions)
    return app

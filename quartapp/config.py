"""Settings: defaults, then ``QUARTAPP_*`` environment variables, then explicit overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from quart import Quart

from quartapp.accounts.throttle import Limit, ThrottleRules
from quartapp.infra.database import check_database_url
from quartapp.infra.redis_client import RedisUrlError, parse_redis_url
from quartapp.mail.settings import MailUrlError, parse_mail_url, public_origin
from quartapp.web.client_address import trusted_networks

DEFAULTS: dict[str, Any] = {
    # "development" relaxes what a laptop over plain http needs; anything else is production.
    "ENV": "production",
    "SECRET_KEY": None,
    "DATABASE_URL": "mysql://root:@127.0.0.1:3306/quartapp",
    "DATABASE_POOL_SIZE": 10,
    "DATABASE_CONNECT_TIMEOUT": 3,
    # Seconds a MySQL statement may take, waiting for a pooled connection included, before
    # the request gets a 503: a hung server must not hold sign-ins forever.
    "DATABASE_QUERY_TIMEOUT": 5,
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_TIMEOUT": 2.0,
    "REDIS_MAX_CONNECTIONS": 64,
    # Every Redis key the app writes starts with this, so one Redis can serve several apps.
    "REDIS_PREFIX": "quartapp:",
    "SESSION_IDLE_TIMEOUT": 600,
    "SESSION_ABSOLUTE_TIMEOUT": 8 * 60 * 60,
    # The most sessions one account may have at once; signing in past it ends the oldest.
    "SESSION_MAX_PER_USER": 25,
    # The countdown offers "Stay signed in" when fewer seconds than this are left.
    "SESSION_WARNING_AT": 60,
    # A session's "last active" time is rewritten at most this often (seconds), so an active
    # user costs no extra Redis write per request.
    "SESSION_ACTIVITY_RESOLUTION": 60,
    "BCRYPT_ROUNDS": 12,
    # Threads that hash passwords; bcrypt releases the GIL, so this bounds the CPU it takes.
    "BCRYPT_THREADS": 2,
    # Password work waits in two lanes, each with a queue this long at most (more is a quick
    # 503): bcrypt checks and hashes, in each lane; strength judgements for forms; and the
    # live strength hint, which waits behind the forms' judgements and is refused first.
    "BCRYPT_QUEUE": 16,
    "PASSWORD_JUDGE_QUEUE": 16,
    "PASSWORD_HINT_QUEUE": 4,
    "COOKIE_SECURE": None,  # None: on, except in development
    "CSRF_TOKEN_MAX_AGE": 2 * 60 * 60,
    # Peers whose X-Forwarded-For is believed: addresses or networks, e.g. ["127.0.0.1"]
    # behind a local nginx, or ["10.0.0.0/8"].
    "TRUSTED_PROXIES": [],
    # Mail. The origin every link in a mail starts with (never the request's Host header),
    # the SMTP server (smtp://, smtp+starttls:// or smtps://, optional user:password@), and
    # the sender. Outside development the first two are required.
    "PUBLIC_URL": None,
    "MAIL_URL": None,
    "MAIL_FROM": None,  # None: quartapp <no-reply@the PUBLIC_URL's host>
    # Seconds an SMTP connection or command may take before the attempt counts as failed.
    "MAIL_TIMEOUT": 10,
    # Where the mail queue lives: REDIS_URL when unset. It must be one server or a
    # Sentinel-managed master (the queue does not run on Redis Cluster).
    "MAIL_REDIS_URL": None,
    # Seconds a link in a mail stays good.
    "PASSWORD_RESET_TTL": 3600,
    "EMAIL_VERIFY_TTL": 24 * 60 * 60,
    "EMAIL_CHANGE_TTL": 60 * 60,
    # Seconds the link mailed to the OLD address after an address change can undo it.
    "EMAIL_CHANGE_UNDO_TTL": 7 * 24 * 60 * 60,
    # Days a device an account signed in from is remembered (a sign-in from any other one
    # mails the owner a notice), and how many devices each account remembers.
    "KNOWN_DEVICES_DAYS": 90,
    "KNOWN_DEVICES_MAX": 20,
    # At most this many new-device notices per account in a window of seconds; past it, no
    # notice until the window has room (None: no bound).
    "NEW_DEVICE_NOTICES": [3, 3600],
    "MAX_CONTENT_LENGTH": 16 * 1024,
    # The most bytes of Cookie headers a request may send (431 above it, before any parsing):
    # the app's own cookies come to about 200 bytes.
    "COOKIE_HEADER_MAX_BYTES": 8 * 1024,
    "MAX_FORM_PARTS": 20,
}


# Characters of SECRET_KEY, outside development: 32 random characters are about 190 bits.
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says how to fix it."""


def load_config(app: Quart, overrides: Mapping[str, Any] | None) -> None:
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("QUARTAPP")
    if overrides:
        app.config.update(overrides)

    config = app.config
    development = config["ENV"] == "development"
    if not config["SECRET_KEY"]:
        if not development:
            raise ConfigError(
                "QUARTAPP_SECRET_KEY is not set. Set it to a long random value, e.g. "
                "export QUARTAPP_SECRET_KEY=$(python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        # A throwaway key: sessions then end when the process restarts, which is fine locally.
        import secrets

        config["SECRET_KEY"] = secrets.token_urlsafe(48)
    secret = config["SECRET_KEY"]
    if not development and len(secret) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"QUARTAPP_SECRET_KEY is too short ({len(secret)} characters; at least "
            f"{MIN_SECRET_KEY_LENGTH}): a short key can be guessed from one signed cookie. "
            "Set a new one, e.g. export QUARTAPP_SECRET_KEY=$(python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')"
        )
    if config["COOKIE_SECURE"] is None:
        config["COOKIE_SECURE"] = not development

    for name in (
        "SESSION_IDLE_TIMEOUT",
        "SESSION_ABSOLUTE_TIMEOUT",
        "SESSION_ACTIVITY_RESOLUTION",
        "BCRYPT_ROUNDS",
        "MAIL_TIMEOUT",
        "PASSWORD_RESET_TTL",
        "EMAIL_VERIFY_TTL",
        "EMAIL_CHANGE_TTL",
        "EMAIL_CHANGE_UNDO_TTL",
        "KNOWN_DEVICES_DAYS",
    ):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"QUARTAPP_{name} must be a positive number, not {value!r}")
    most = config["SESSION_MAX_PER_USER"]
    if isinstance(most, bool) or not isinstance(most, int) or most < 0:
        raise ConfigError(
            f"QUARTAPP_SESSION_MAX_PER_USER must be a whole number, 0 for no limit, not {most!r}"
        )
    known = config["KNOWN_DEVICES_MAX"]
    if isinstance(known, bool) or not isinstance(known, int) or not 1 <= known <= 1000:
        raise ConfigError(
            f"QUARTAPP_KNOWN_DEVICES_MAX must be a whole number from 1 to 1000, not {known!r}"
        )
    cookie_bytes = config["COOKIE_HEADER_MAX_BYTES"]
    if isinstance(cookie_bytes, bool) or not isinstance(cookie_bytes, int) or cookie_bytes < 1024:
        raise ConfigError(
            f"QUARTAPP_COOKIE_HEADER_MAX_BYTES must be a whole number of at least 1024, "
            f"not {cookie_bytes!r}"
        )
    for name in ("BCRYPT_THREADS", "BCRYPT_QUEUE", "PASSWORD_JUDGE_QUEUE", "PASSWORD_HINT_QUEUE"):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
            raise ConfigError(
                f"QUARTAPP_{name} must be a whole number from 1 to 10000, not {value!r}"
            )
    try:
        ThrottleRules.from_config(config)
    except ValueError as error:
        raise ConfigError(f"QUARTAPP_{error}") from error
    try:
        Limit.parse(config["NEW_DEVICE_NOTICES"])
    except ValueError as error:
        raise ConfigError(
            f"QUARTAPP_NEW_DEVICE_NOTICES: {error}. Give [notices, seconds], e.g. [3, 3600]"
        ) from None
    if not 4 <= config["BCRYPT_ROUNDS"] <= 31:
        raise ConfigError("QUARTAPP_BCRYPT_ROUNDS must be between 4 and 31")
    try:
        trusted_networks(config["TRUSTED_PROXIES"])
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"QUARTAPP_TRUSTED_PROXIES: {error}. Give a JSON list of addresses or networks, "
            'e.g. QUARTAPP_TRUSTED_PROXIES=\'["127.0.0.1", "10.0.0.0/8"]\''
        ) from error
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or []
    if not isinstance(fallbacks, list) or not all(
        isinstance(key, str) and key for key in fallbacks
    ):
        raise ConfigError(
            "QUARTAPP_SECRET_KEY_FALLBACKS must be a JSON list of earlier secret keys, "
            """e.g. QUARTAPP_SECRET_KEY_FALLBACKS='["the old key"]'"""
        )
    prefix = config["REDIS_PREFIX"]
    if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
        # Braces would change which Redis Cluster hash slot a key belongs to.
        raise ConfigError("QUARTAPP_REDIS_PREFIX must be text without { or }")
    try:
        check_database_url(config["DATABASE_URL"])
    except ValueError as error:
        raise ConfigError(f"QUARTAPP_DATABASE_URL {error}") from None
    try:
        parse_redis_url(config["REDIS_URL"])
    except RedisUrlError as error:
        raise ConfigError(f"QUARTAPP_REDIS_URL: {error}") from None
    load_mail_config(config, development)


# What development uses when mail is not configured: maildev, which script/server starts.
# A name, not 127.0.0.1: WebAuthn refuses IP addresses, so passkeys need one.
DEVELOPMENT_PUBLIC_URL = "http://localhost:4300"
DEVELOPMENT_MAIL_URL = "smtp://127.0.0.1:1025"


def load_mail_config(config: Any, development: bool) -> None:
    """Check the mail settings; outside development PUBLIC_URL and MAIL_URL are required."""
    if not config["PUBLIC_URL"]:
        if not development:
            raise ConfigError(
                "QUARTAPP_PUBLIC_URL is not set. Set it to the address people open the app "
                "at, e.g. export QUARTAPP_PUBLIC_URL=https://accounts.example.com"
            )
        config["PUBLIC_URL"] = DEVELOPMENT_PUBLIC_URL
    try:
        config["PUBLIC_URL"] = public_origin(config["PUBLIC_URL"])
    except ValueError as error:
        raise ConfigError(f"QUARTAPP_PUBLIC_URL: {error}") from None
    if not config["MAIL_URL"]:
        if not development:
            raise ConfigError(
                "QUARTAPP_MAIL_URL is not set. Set it to your SMTP server, e.g. "
                "export QUARTAPP_MAIL_URL=smtp+starttls://user:password@smtp.example.com:587"
            )
        config["MAIL_URL"] = DEVELOPMENT_MAIL_URL
    try:
        parse_mail_url(config["MAIL_URL"])
    except MailUrlError as error:
        raise ConfigError(f"QUARTAPP_MAIL_URL: {error}") from None
    if not config["MAIL_FROM"]:
        host = urlsplit(config["PUBLIC_URL"]).hostname or "localhost"
        config["MAIL_FROM"] = f"quartapp <no-reply@{host}>"
    sender = config["MAIL_FROM"]
    if not isinstance(sender, str) or "@" not in sender or "\n" in sender or "\r" in sender:
        raise ConfigError(
            "QUARTAPP_MAIL_FROM must be an address, e.g. 'quartapp <no-reply@example.com>'"
        )
    mail_redis = config["MAIL_REDIS_URL"] or config["REDIS_URL"]
    try:
        target = parse_redis_url(mail_redis)
    except RedisUrlError as error:
        raise ConfigError(f"QUARTAPP_MAIL_REDIS_URL: {error}") from None
    if target.kind == "cluster":
        raise ConfigError(
            "The mail queue does not run on Redis Cluster (its scripts and lists span hash "
            "slots). Set QUARTAPP_MAIL_REDIS_URL to one Redis server or a Sentinel-managed "
            "master, e.g. redis://queue-host:6379/0"
        )
    config["MAIL_REDIS_URL"] = mail_redis

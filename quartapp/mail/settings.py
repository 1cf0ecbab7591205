"""The mail settings read at start-up: the SMTP server's URL and the public origin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

SCHEMES = "smtp://, smtp+starttls:// or smtps://"
_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailUrlError(ValueError):
    """A mail URL the app cannot use; the message never repeats a password."""


@dataclass(frozen=True, slots=True)
class MailServer:
    """Where mail goes: ``smtp`` is plain SMTP (a relay on a trusted network, or a local
    catcher), ``smtp+starttls`` upgrades to TLS before anything else is said, ``smtps``
    speaks TLS from the start."""

    security: Literal["none", "starttls", "tls"]
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_mail_url(url: object) -> MailServer:
    if not isinstance(url, str) or "://" not in url:
        raise MailUrlError(f"give a URL starting with {SCHEMES}")
    scheme = url.partition("://")[0].lower()
    if scheme not in _DEFAULT_PORTS:
        raise MailUrlError(f"the URL must start with {SCHEMES}")
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise MailUrlError("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise MailUrlError("the URL names no host")
    if parts.path not in ("", "/") or parts.query:
        raise MailUrlError("the URL takes no path and no query: scheme://[user:password@]host:port")
    security: Literal["none", "starttls", "tls"] = {
        "smtp": "none",
        "smtp+starttls": "starttls",
        "smtps": "tls",
    }[scheme]  # type: ignore[assignment]
    return MailServer(
        security=security,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def public_origin(url: object) -> str:
    """``scheme://host[:port]`` of the public address, without a trailing slash."""
    if not isinstance(url, str):
        raise ValueError("give the address people open the app at, e.g. https://example.com")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("give an http:// or https:// address, e.g. https://example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("give the origin alone (scheme, host and port), e.g. https://example.com")
    return f"{parts.scheme}://{parts.netloc}"

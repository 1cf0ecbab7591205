"""The session countdown widget, and the fast answer to its poll.

Every open tab of a signed-in user asks for the widget once a second, so this one request
outnumbers all others together. ``CountdownPoll`` answers its common case (an htmx poll
from a live session that is not yet in its warning minute) in front of Quart, with the
same cookie check, the same single read-only Redis call, the same template and the same
headers as the Quart route, and without Quart's request machinery, which costs more than
the rest of the request. Anything else (no cookie or a bad one, an ended session, the
warning state with its CSRF-protected form, a JSON client, a Redis error) is passed on to
the Quart route ``home.countdown``, which stays the reference behaviour;
``tests/test_countdown_poll.py`` checks that both answer alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from quart import Quart

from .redis_client import REDIS_ERRORS
from .security_headers import HEADERS as SECURITY_HEADERS
from .session_store import SessionRecord

if TYPE_CHECKING:
    from .server_session import ServerSessions

TEMPLATE = "home/_countdown.html"


def countdown_context(
    record: SessionRecord | None, *, warning_at: int, poll_url: str
) -> dict[str, Any]:
    seconds_left = -(-record.time_left_ms // 1000) if record is not None else 0
    return {
        "seconds_left": seconds_left,
        "warning": 0 < seconds_left <= warning_at,
        "can_extend": record is not None and record.can_extend,
        "poll_url": poll_url,
    }


def _cookie_value(header: str, name: str) -> str | None:
    """``name``'s value in a Cookie header. Quoted values are not unquoted: the session
    cookie never needs quotes, and a cookie that has them just takes the slow path."""
    for pair in header.split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name:
            return value
    return None


class CountdownPoll:
    """ASGI middleware: the countdown poll of a live session, answered before Quart."""

    def __init__(self, app: Quart, sessions: ServerSessions) -> None:
        self.app = app
        self.sessions = sessions
        self.next = app.asgi_app
        self.path = app.url_map.bind("").build("home.countdown")
        self.warning_at = int(app.config["SESSION_WARNING_AT"])
        self.cookie_name = str(sessions.auth.cookie_name)
        self.headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS),
            (b"cache-control", b"no-store"),
            (b"vary", b"HX-Request"),
        ]
        app.asgi_app = self  # type: ignore[method-assign]

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        body = None
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "GET":
            body = await self._answer(scope)
        if body is None:
            await self.next(scope, receive, send)
            return
        headers = [*self.headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _answer(self, scope: HTTPScope) -> bytes | None:
        htmx = False
        cookies: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"hx-request":
                htmx = value == b"true"
            elif name == b"cookie":
                cookies.append(value)
            elif name in (b"hx-boosted", b"hx-history-restore-request"):
                return None
        if not htmx or not cookies:
            return None
        cookie = _cookie_value(b"; ".join(cookies).decode("latin-1"), self.cookie_name)
        token = self.sessions.read_token(cookie) if cookie else None
        if token is None:
            return None
        try:
            record = await self.sessions.store.load(token, touch=False)
        except REDIS_ERRORS:
            return None  # the Quart route answers it (a 503 when Redis is unavailable)
        if record is None:
            return None
        context = countdown_context(record, warning_at=self.warning_at, poll_url=self.path)
        if context["warning"]:
            return None
        template = self.app.jinja_env.get_template(TEMPLATE)
        html: str = await template.render_async(**context)
        return html.encode()

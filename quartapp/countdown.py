"""The session countdown widget, and the fast answer to its poll.

Every open tab of a signed-in user asks for the widget once a second, so this one request
outnumbers all others together. ``CountdownPoll`` answers its common case (an htmx poll
from a page that shows a live session not yet in its warning minute) in front of Quart, with
the same cookie check, the same single read-only Redis call, the same template and the same
headers as the Quart route, and without Quart's request machinery, which costs more than
the rest of the request. Anything else (no cookie or a bad one, an ended session, the
warning state with its CSRF-protected form, a JSON client, a Redis error) is passed on to
the Quart route ``home.countdown``, which stays the reference behaviour;
``tests/test_countdown_poll.py`` checks that both answer alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from quart import Quart

from .redis_client import REDIS_ERRORS
from .security_headers import HEADERS as SECURITY_HEADERS
from .session_store import SessionRecord

if TYPE_CHECKING:
    from .server_session import ServerSessions

TEMPLATE = "home/_countdown.html"

# The header in which the polled element says which phase the page shows now. A poll
# answer changes the status region, the actions and the navigation only when the phase
# changes, so a screen reader hears each message once and a focused "Stay signed in"
# button is never replaced under the keyboard.
SHOWN_HEADER = "X-Countdown-Shown"
PHASES = ("live", "warning", "extended", "final", "expired")
# What the status region says in each phase (announced when it changes).
MESSAGES = {
    "live": "",
    "warning": "Your session is about to end.",
    "extended": "Your session has been extended.",
    "final": "Your session is about to end and cannot be extended: sign in again to go on.",
    "expired": "Your session has expired.",
}
# What the widget offers under its status in each phase.
ACTIONS = {
    "live": "",
    "warning": "extend",
    "extended": "extend",
    "final": "",
    "expired": "sign-in",
}


def phase_of(
    seconds_left: int, *, warning: bool, can_extend: bool, shown: str | None, extending: bool
) -> str:
    """The phase to show. A session brought back above the warning threshold (by "Stay
    signed in", or by activity in another tab) is "extended" and keeps its button."""
    if seconds_left <= 0:
        return "expired"
    if warning and not can_extend:
        return "final"
    if extending:
        return "extended"
    if warning:
        return "warning"
    if shown in ("warning", "extended") and can_extend:
        return "extended"
    return "live"


def countdown_context(
    record: SessionRecord | None,
    *,
    warning_at: int,
    poll_url: str,
    shown: str | None = None,
    extending: bool = False,
) -> dict[str, Any]:
    """What the widget shows. ``shown`` is the phase the page showed before (a poll or
    an extension from the page), or None for a whole page or a client that did not say;
    the parts whose content depends on the phase are sent out of band when it changed."""
    seconds_left = -(-record.time_left_ms // 1000) if record is not None else 0
    can_extend = record is not None and record.can_extend
    warning = 0 < seconds_left <= warning_at
    phase = phase_of(
        seconds_left, warning=warning, can_extend=can_extend, shown=shown, extending=extending
    )
    ends_at = None
    if record is not None and seconds_left > 0:
        ends_at = datetime.fromtimestamp(record.expires_at / 1000, tz=UTC)
    known = shown in PHASES
    return {
        "seconds_left": seconds_left,
        "warning": warning,
        "can_extend": can_extend,
        "poll_url": poll_url,
        "phase": phase,
        "message": MESSAGES[phase],
        "actions": ACTIONS[phase],
        "ends_at": ends_at,
        # Out-of-band updates, for a page that showed ``shown``.
        "update_status": shown is not None
        and (not known or extending or MESSAGES[phase] != MESSAGES[str(shown)]),
        "update_actions": shown is not None
        and (not known or ACTIONS[phase] != ACTIONS[str(shown)]),
        "update_nav": shown is not None and phase == "expired" and shown != "expired",
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
        shown = None
        cookies: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"hx-request":
                htmx = value == b"true"
            elif name == b"x-countdown-shown":
                shown = value
            elif name == b"cookie":
                cookies.append(value)
            elif name in (b"hx-boosted", b"hx-history-restore-request"):
                return None
        if not htmx or not cookies or shown != b"live":
            return None  # only a page showing the live phase can stay in it
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
        context = countdown_context(
            record, warning_at=self.warning_at, poll_url=self.path, shown="live"
        )
        if context["phase"] != "live":
            return None
        template = self.app.jinja_env.get_template(TEMPLATE)
        html: str = await template.render_async(**context)
        return html.encode()

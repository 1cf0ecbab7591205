"""The front door: the pages asked for most, answered before Quart in their common case.

Every open tab of a signed-in user polls its countdown once a second; every sign-in and every
return lands on /home; every visitor starts at the sign-in page. Quart's request cycle costs
more than everything else these requests do, so ``FrontDoor``, an ASGI handler in front of
the app, answers them itself when nothing about them is unusual:

- the countdown's poll (``GET /session/countdown``) from htmx, from a page that shows a live
  session not yet in its warning minute: the session read without sliding it;
- a whole /home page of a live session (no query string, no htmx, no anonymous CSRF cookie
  left to drop): the session slid, as any page view slides it;
- the sign-in page (``GET /``) and the sign-up page (``GET /register``) whole, with no
  query string, no htmx and no session cookie at all: a CSRF token bound to the visitor's
  anonymous cookie, set when it has none.

For each it does what the Quart route does (the same cookie checks, the same single Redis
call, the same context and the route's own remembered rendering, filled in with
``RememberedPages.filled``, the same headers from ``web.headers.encoded_headers`` and the
same cookie), and nothing else. Anything else (a bad or ended session, the warning state
with its form, a query string, htmx asking for a fragment, a Redis error, a script root, a
page whose shape its route has not rendered yet in this process) goes on to the routes,
which stay the reference behaviour; a session loaded on the way goes on with the request
(``Sessions.load_early``), so it is never loaded twice. ``tests/test_front_door.py`` checks
that both answer alike, over http and https.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from quart import Quart
from werkzeug.http import parse_cookie

from quartapp.blueprints.home import (
    HOME_TEMPLATE,
    PER_REQUEST,
    SHOWN_HEADER,
    TEMPLATE,
    countdown_context,
    home_context,
)
from quartapp.sessions.csrf import EXTENSION as CSRF
from quartapp.sessions.csrf import CsrfProtection
from quartapp.sessions.extension import Sessions
from quartapp.sessions.store import SessionRecord
from quartapp.web.headers import encoded_headers
from quartapp.web.hypermedia import HtmxDetails
from quartapp.web.remembered_pages import RememberedPages
from quartapp.web.templating import REMEMBERED

# The anonymous pages, by endpoint: the template their route renders whole (``render_once``).
ANONYMOUS_PAGES = {
    "auth.sign_in_page": "auth/sign_in.html",
    "auth.sign_up_page": "auth/sign_up.html",
}
Answer = tuple[bytes, list[tuple[bytes, bytes]]]


class FrontDoor:
    """ASGI middleware: the common case of the pages asked for most, before Quart."""

    def __init__(self, app: Quart, sessions: Sessions) -> None:
        self.sessions = sessions
        self.next = app.asgi_app
        urls = app.url_map.bind("")
        self.poll_path = urls.build("home.countdown")
        self.home_path = urls.build("home.home")
        self.anonymous = {urls.build(endpoint): name for endpoint, name in ANONYMOUS_PAGES.items()}
        self.warning_at = int(app.config["SESSION_WARNING_AT"])
        self.cookie_name = str(sessions.auth.cookie_name)
        csrf: CsrfProtection = app.extensions[CSRF]
        self.csrf = csrf
        self.pages: RememberedPages = app.extensions[REMEMBERED]
        self.headers = {
            https: [
                (b"content-type", b"text/html; charset=utf-8"),
                *encoded_headers(https=https, page=True),
            ]
            for https in (False, True)
        }
        app.asgi_app = self  # type: ignore[method-assign]

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        answer = None
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path = scope["path"]
            if path == self.poll_path:
                answer = await self._poll(scope)
            elif path == self.home_path:
                answer = await self._home(scope)
            elif path in self.anonymous:
                answer = self._anonymous(scope, self.anonymous[path])
        if answer is None:
            await self.next(scope, receive, send)
            return
        body, cookies = answer
        https = scope.get("scheme") == "https"
        headers = [
            *self.headers[https],
            *cookies,
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _poll(self, scope: HTTPScope) -> Answer | None:
        headers, cookies = _read(scope)
        htmx = HtmxDetails.from_headers(lambda name: headers.get(name.lower()))
        if not htmx.wants_fragment or not cookies or headers.get(SHOWN_HEADER.lower()) != "live":
            return None  # only a page that shows the live phase can stay in it
        record = await self._record(scope, cookies, touch=False)
        if record is None:
            return None
        context = countdown_context(record, warning_at=self.warning_at, shown="live")
        if context["phase"] != "live":
            return None
        return _page(self.pages.filled(TEMPLATE, "", PER_REQUEST, context, _no_form))

    async def _home(self, scope: HTTPScope) -> Answer | None:
        if scope["query_string"]:
            return None
        headers, cookies = _read(scope)
        # Quart's route drops an anonymous CSRF cookie left from before the sign-in.
        if not cookies or "hx-request" in headers or self.csrf.cookie_name in cookies:
            return None
        record = await self._record(scope, cookies, touch=True)
        if record is None:
            return None
        widget = countdown_context(record, warning_at=self.warning_at)  # a whole page
        context = home_context(record, sent=None, widget=widget)
        html = self.pages.filled(
            HOME_TEMPLATE, "", PER_REQUEST, context, lambda: self.csrf.session_token(record)
        )
        return _page(html)

    def _anonymous(self, scope: HTTPScope, name: str) -> Answer | None:
        if scope["query_string"]:
            return None
        headers, cookies = _read(scope)
        # A session cookie, live or not, is for the route: it sends the signed-in home, tells
        # an ended session's browser why, or drops a dead cookie.
        if "hx-request" in headers or self.cookie_name in cookies:
            return None
        cookie = cookies.get(self.csrf.cookie_name)
        if cookie == "":
            return None  # the route's to judge
        nonce = cookie if cookie is not None else self.csrf.new_nonce()
        html = self.pages.filled(name, "", (), {}, lambda: self.csrf.anonymous_token(nonce))
        if html is None:
            return None
        if cookie is not None:
            return html.encode(), []
        return html.encode(), [(b"set-cookie", self.csrf.anonymous_cookie(nonce).encode())]

    async def _record(
        self, scope: HTTPScope, cookies: Mapping[str, str], *, touch: bool
    ) -> SessionRecord | None:
        """The live session of the request's cookie, loaded as its route loads it (and left
        in the scope for the route, if the request goes on to Quart); or None."""
        cookie = cookies.get(self.cookie_name)
        token = self.sessions.read_token(cookie) if cookie else None
        if token is None:
            return None
        return await self.sessions.load_early(scope, token, touch=touch)  # type: ignore[arg-type]


def _read(scope: HTTPScope) -> tuple[dict[str, str], Mapping[str, str]]:
    """A request's headers by lower-case name (but Cookie), and its cookies."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookies.append(value.decode("latin-1"))
        else:
            headers[name.decode("latin-1")] = value.decode("latin-1")
    return headers, parse_cookie("; ".join(cookies)) if cookies else {}


def _page(html: str | None) -> Answer | None:
    return (html.encode(), []) if html is not None else None


def _no_form() -> str:
    raise AssertionError("the live countdown has no form")

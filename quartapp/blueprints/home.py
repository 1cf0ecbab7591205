"""The signed-in page, its session countdown widget, and the fast answer to the widget's poll.

Every open tab of a signed-in user asks for the widget once a second, so this one request
outnumbers all others together. ``CountdownPoll`` answers its common case (an htmx poll
from a live session that is not yet in its warning minute) in front of Quart, with the
same cookie check, the same single read-only Redis call, the same template, the same htmx
reading and the same headers (``web.headers.response_headers``) as the Quart route, and
without Quart's request machinery. Anything else (no cookie or a bad one, an ended
session, the warning state with its CSRF-protected form, a JSON client, a Redis error) is
passed on to the route ``countdown`` below, which stays the reference behaviour;
``tests/test_countdown_poll.py`` checks that both answer alike, over http and https.
"""

from __future__ import annotations

from typing import Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from quart import Blueprint, Quart, Response, current_app, jsonify, url_for
from werkzeug.http import parse_cookie

from quartapp.infra.redis_client import REDIS_ERRORS
from quartapp.sessions.extension import Sessions, current_record, session_access
from quartapp.sessions.store import SessionRecord
from quartapp.web.access import public, signed_in
from quartapp.web.headers import response_headers
from quartapp.web.hypermedia import HtmxDetails, htmx, navigate, wants_json
from quartapp.web.templating import render_template, templates
from quartapp.web.templating import url_for as remembered_url_for

bp = Blueprint("home", __name__)
TEMPLATE = "home/_countdown.html"


def countdown_context(
    record: SessionRecord | None, *, warning_at: int, poll_url: str
) -> dict[str, Any]:
    seconds_left = record.seconds_left if record is not None else 0
    return {
        "seconds_left": seconds_left,
        "warning": 0 < seconds_left <= warning_at,
        "can_extend": record is not None and record.can_extend,
        "poll_url": poll_url,
    }


def widget_context(record: SessionRecord | None) -> dict[str, Any]:
    return countdown_context(
        record,
        warning_at=int(current_app.config["SESSION_WARNING_AT"]),
        poll_url=remembered_url_for("home.countdown"),
    )


async def countdown_fragment(record: SessionRecord | None) -> Response:
    return Response(await render_template(TEMPLATE, **widget_context(record)))


@bp.get("/home")
@signed_in
async def home() -> Response:
    record = current_record()
    assert record is not None
    html = await render_template("home/home.html", record=record, **widget_context(record))
    return Response(html)


@bp.get("/session/countdown")
@public
@session_access("read")
async def countdown() -> Response:
    """Time left in this session. Reading it never extends it: a page left open must not
    keep its session alive. Without a session it answers the expired state, which stops
    the widget's polling. (The common case is answered before Quart: CountdownPoll.)"""
    record = current_record()
    if wants_json():
        seconds = widget_context(record)["seconds_left"]
        return jsonify({"expires_in": seconds, "expired": record is None})
    return await countdown_fragment(record)


@bp.post("/session/extend")
@signed_in
async def extend() -> Response:
    """Slide the idle deadline now, on purpose (never past the absolute limit).

    Loading the session for this request already did the sliding."""
    record = current_record()
    if wants_json():
        assert record is not None
        return jsonify({"expires_in": record.seconds_left})
    if htmx().request:
        return await countdown_fragment(record)
    return navigate(url_for("home.home"))


class CountdownPoll:
    """ASGI middleware: the countdown poll of a live session, answered before Quart."""

    def __init__(self, app: Quart, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions
        self.next = app.asgi_app
        self.path = app.url_map.bind("").build("home.countdown")
        self.warning_at = int(app.config["SESSION_WARNING_AT"])
        self.cookie_name = str(sessions.auth.cookie_name)
        self.headers = {
            https: [
                (b"content-type", b"text/html; charset=utf-8"),
                *(
                    (name.lower().encode(), value.encode())
                    for name, value in response_headers(https=https, page=True)
                ),
            ]
            for https in (False, True)
        }
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
        https = scope.get("scheme") == "https"
        headers = [*self.headers[https], (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _answer(self, scope: HTTPScope) -> bytes | None:
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookies.append(value.decode("latin-1"))
            else:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        htmx = HtmxDetails.from_headers(lambda name: headers.get(name.lower()))
        if not htmx.wants_fragment or not cookies:
            return None
        cookie = parse_cookie("; ".join(cookies)).get(self.cookie_name)
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
        html: str = templates(self.app).get_template(TEMPLATE).render(context)
        return html.encode()

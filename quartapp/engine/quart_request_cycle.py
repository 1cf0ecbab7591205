"""The app's Quart class: Quart's request cycle without the parts this app does not use.

Replaces Quart's ``ASGIHTTPConnection`` (``Quart.asgi_http_class``) and
``Quart.ensure_async``.

Quart handles every HTTP request in two tasks (one reads the body and watches for the
client going away, one runs the view), sends the body in chunks followed by an empty one
under ``wait_for`` (a third task), and asks ``inspect`` on every hook call whether the hook
is a coroutine function. For the pages this app serves that was a tenth of a request's cost.
Here:

- a GET or HEAD is handled in the connection's own task, its body taken as empty (a GET's
  body has no meaning; no view here reads one). Other methods go through Quart's two
  tasks as before, so that its body limits and timeouts apply unchanged. A client that
  goes away during a GET is noticed when its answer is sent, not before: the views such
  requests reach are bounded by the Redis and MySQL timeouts.
- a response whose body is in memory is sent as one message. Every response is sent under
  ``RESPONSE_TIMEOUT``, as Quart sends it, by ``asyncio.timeout`` (which needs no task).
- the headers every response carries are added to the ASGI message as it is sent
  (``finish_headers``), not merged into Werkzeug's headers by an ``after_request`` hook.
- ``ensure_async`` remembers what it found for each function.

Everything else (contexts, routing, hooks, error handlers, signals) is Quart's own.

Private names read: ``quart.asgi._handle_exception`` and ``_normalise_path``;
``ASGIHTTPConnection._create_request_from_scope`` (replaced) and ``_send_push_promise``;
``werkzeug.datastructures.Headers._list`` (a request's headers filled in one step). Public
names whose behaviour is replaced: ``ASGIHTTPConnection.__call__`` and ``handle_request``,
``Quart.ensure_async``.

Buys (``bench/instructions.py --stock-gc``, 2026-12-07: how many more instructions a
request costs without it, on Python 3.13 with Quart 0.23.1 / on 3.11 with Quart 0.22):

- the cycle (one task, one body message, headers added at send; measured against Quart's
  cycle with the app's headers added by an ``after_request`` hook): ``GET /home`` +35.4 % /
  +36.7 %, ``GET /`` +60.1 % / +58.4 %, ``GET /sessions`` +15.4 % / +14.8 %;
- ``ensure_async`` remembered: +8.8 % / +3.4 %, +14.9 % / +5.7 %, +3.7 % / +1.5 %, and
  ``GET /account/password`` +6.6 % / +2.3 %.

These ``GET /home`` and ``GET /`` figures were measured before the front door
(``blueprints/front_door``), which now answers both pages' common case, as it does the
countdown's poll, without Quart: they owe these parts only their other requests, and every
other page what ``/sessions`` and ``/account/password`` show. Two parts bought under 3 % of
every page that goes through Quart once the front door came, on 3.13, and were deleted
(docs/benchmarks.md): a request's blueprints worked out once (``AppRequest``: 2.5 % of
``/account/password``, 1.4 % of ``/sessions``) and headers that answer an absent name
without an exception (``QuietHeaders``: 1.9 % and 1.6 %).

Delete when (each part on its own):

- the cycle: when Quart handles a request without a body in one task and sends a body in
  memory as one message (0.23.1 runs two tasks in a task group per request and sends
  chunks and an empty last message under ``wait_for``);
- ``ensure_async``: when Quart's remembers what it found (0.23.1 asks
  ``iscoroutinefunction`` on every hook call), or it buys under 3 % of every page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast
from urllib.parse import urlparse

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import Quart
from quart.asgi import ASGIHTTPConnection, _handle_exception, _normalise_path
from quart.wrappers import Request, Response
from quart.wrappers.response import DataBody
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response as WerkzeugResponse

from quartapp.web import cookie_limit

try:  # Quart 0.23 says so when a client goes away; 0.22's sends raise OSError
    from quart.wrappers.base import ClientDisconnectedError  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - Quart 0.22

    class ClientDisconnectedError(Exception):  # type: ignore[no-redef,unused-ignore]
        """Never raised: Quart 0.22 has no such error."""


# Adds headers to a response's ASGI headers as it is sent to the request.
HeaderFinisher = Callable[[Request, list[tuple[bytes, bytes]]], None]


# Requests handled in the connection's own task: their body, if any, is not read (a GET's
# body has no meaning, and no view here reads one). Not decided by Content-Length, which an
# HTTP/2 request with a body may leave out.
BODILESS_METHODS = frozenset({"GET", "HEAD"})


class HTTPConnection(ASGIHTTPConnection):
    """One HTTP request: body-less ones in the connection's own task (see the module)."""

    app: Application

    def _create_request_from_scope(self, send: ASGISendCallable) -> Request:
        # Quart's own, but for the headers, filled in one step: the server has parsed them
        # already (no line breaks in a name or value can reach here).
        scope = self.scope
        headers = Headers()
        headers._list = [
            ("Remote-Addr", (scope.get("client") or ["<local>"])[0]),
            *(
                (name.decode("latin1").title(), value.decode("latin1"))
                for name, value in scope["headers"]
            ),
        ]
        if scope["http_version"] < "1.1":
            headers.setdefault("Host", self.app.config["SERVER_NAME"] or "")
        path = scope["path"]
        path = path if path[0] == "/" else urlparse(path).path
        root_path = scope.get("root_path", "")
        if root_path != "":
            path = _normalise_path(path, root_path)
        return self.app.request_class(
            scope["method"],
            scope["scheme"],
            path,
            scope["query_string"],
            headers,
            root_path,
            scope["http_version"],
            max_content_length=self.app.config["MAX_CONTENT_LENGTH"],
            body_timeout=self.app.config["BODY_TIMEOUT"],
            send_push_promise=partial(self._send_push_promise, send),
            scope=scope,
        )

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if self.scope["method"] not in BODILESS_METHODS:
            await super().__call__(receive, send)  # which calls handle_request below
            return
        request = self._create_request_from_scope(send)
        request.body.set_complete()
        await self.handle_request(request, send)

    async def handle_request(self, request: Request, send: ASGISendCallable) -> None:
        try:
            response: Any = await self.app.handle_request(request)
        except ClientDisconnectedError:
            return  # Quart 0.23: the client went away while its body was read
        except Exception as error:
            response = await _handle_exception(self.app, error)
        timeout = response.timeout if isinstance(response, Response) else Ellipsis
        if timeout is Ellipsis:
            timeout = self.app.config["RESPONSE_TIMEOUT"]
        # Nothing to do when the client has gone away meanwhile (the send raises) or does
        # not take the answer in time.
        with contextlib.suppress(TimeoutError, OSError, ClientDisconnectedError):
            async with asyncio.timeout(cast(float | None, timeout)):
                await self._send(request, response, send)

    async def _send(self, request: Request, response: Any, send: ASGISendCallable) -> None:
        headers = [
            (name.lower().encode(), value.encode()) for name, value in response.headers.items()
        ]
        for finish in self.app.header_finishers:
            finish(request, headers)
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        body = response.response
        if isinstance(body, DataBody):
            part = body.data[body.begin : body.end]  # a Range request asks for a part
            await send({"type": "http.response.body", "body": part, "more_body": False})
            return
        if isinstance(response, WerkzeugResponse):
            for data in body:
                part = data.encode() if isinstance(data, str) else data
                await send({"type": "http.response.body", "body": part, "more_body": True})
        else:
            async with body as chunks:
                async for data in chunks:
                    part = data.encode() if isinstance(data, str) else data
                    await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Application(Quart):
    """Quart, with the request cycle of ``HTTPConnection`` and a remembering ``ensure_async``."""

    asgi_http_class = HTTPConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_finishers: list[HeaderFinisher] = []
        self._async_versions: dict[Callable[..., Any], Callable[..., Awaitable[Any]]] = {}

    async def __call__(
        self, scope: Any, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """The ASGI entry point: oversized cookies are refused before anything parses them
        (``cookie_limit``), then Quart's (and its middleware's) ``asgi_app``."""
        limit = self.config["COOKIE_HEADER_MAX_BYTES"]
        if scope["type"] == "http" and cookie_limit.cookie_bytes(scope) > limit:
            await cookie_limit.refuse(scope, send, limit)
            return
        await self.asgi_app(scope, receive, send)

    def ensure_async(self, func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        made = self._async_versions.get(func)
        if made is None:
            made = super().ensure_async(func)
            if len(self._async_versions) < 4096:  # hooks and views: a few dozen
                self._async_versions[func] = made
        return made

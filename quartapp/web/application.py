"""The app's Quart class: Quart's request cycle without the parts this app does not use.

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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import Quart
from quart.asgi import ASGIHTTPConnection, _handle_exception
from quart.wrappers import Request, Response
from quart.wrappers.response import DataBody
from werkzeug.wrappers import Response as WerkzeugResponse

# Adds headers to a response's ASGI headers as it is sent to the request.
HeaderFinisher = Callable[[Request, list[tuple[bytes, bytes]]], None]


# Requests handled in the connection's own task: their body, if any, is not read (a GET's
# body has no meaning, and no view here reads one). Not decided by Content-Length, which an
# HTTP/2 request with a body may leave out.
BODILESS_METHODS = frozenset({"GET", "HEAD"})


class HTTPConnection(ASGIHTTPConnection):
    """One HTTP request: body-less ones in the connection's own task (see the module)."""

    app: Application

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
        except Exception as error:
            response = await _handle_exception(self.app, error)
        timeout = response.timeout if isinstance(response, Response) else Ellipsis
        if timeout is Ellipsis:
            timeout = self.app.config["RESPONSE_TIMEOUT"]
        with contextlib.suppress(TimeoutError):
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

    def ensure_async(self, func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        made = self._async_versions.get(func)
        if made is None:
            made = super().ensure_async(func)
            if len(self._async_versions) < 4096:  # hooks and views: a few dozen
                self._async_versions[func] = made
        return made

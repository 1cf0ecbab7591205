"""The ceiling: the least a Quart route that reads a session's time left can do.

One route, one Redis round trip (PTTL on one key), an HTML fragment of a fixed size, and
nothing else: no session loading, no templates, no auth, no extra headers. A second route,
``/constant``, answers the same fragment without asking Redis: the ceiling of a page that
needs no I/O, such as the anonymous sign-in page. bench/run.py serves it with the same
server and flags as quartapp and compares the two.

Settings come from the environment:
    CEILING_REDIS_URL   Redis to ask (default redis://127.0.0.1:6379/0)
    CEILING_KEY         the key whose PTTL is read (bench/run.py creates it)
    CEILING_BODY_BYTES  size of the fragment in bytes (default 400)

Serve it with e.g.
    PYTHONPATH=bench .venv/bin/granian --interface asgi --factory ceiling_app:create_app
"""

from __future__ import annotations

import os

from quart import Quart, Response
from redis.asyncio import Redis

_HEAD = (
    '<section id="session-countdown" class="countdown" hx-get="/ceiling" '
    'hx-trigger="every 1s" hx-swap="outerHTML"><p>Time left in this session: '
    '<strong role="timer" class="clock"><time datetime="PT{seconds}S">{seconds}</time>'
    "</strong></p>"
)
_TAIL = "</section>\n"


def fragment(seconds: int, size: int) -> bytes:
    """The fragment for ``seconds`` left, padded with spaces to exactly ``size`` bytes."""
    body = _HEAD.format(seconds=seconds)
    padding = size - len(body) - len(_TAIL)
    return (body + " " * max(0, padding) + _TAIL).encode()


def create_app() -> Quart:
    app = Quart(__name__)
    url = os.environ.get("CEILING_REDIS_URL", "redis://127.0.0.1:6379/0")
    key = os.environ.get("CEILING_KEY", "ceiling:countdown")
    size = int(os.environ.get("CEILING_BODY_BYTES", "400"))
    clients: dict[str, Redis] = {}

    @app.before_serving
    async def open_redis() -> None:
        clients["redis"] = Redis.from_url(url)

    @app.after_serving
    async def close_redis() -> None:
        await clients.pop("redis").aclose()

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("ok", content_type="text/plain")

    @app.get("/ceiling")
    async def ceiling() -> Response:
        left = await clients["redis"].pttl(key)
        seconds = -(-max(0, left) // 1000)
        return Response(
            fragment(seconds, size),
            content_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    constant = fragment(1, size)

    @app.get("/constant")
    async def constant_fragment() -> Response:
        return Response(
            constant, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"}
        )

    return app

"""Oversized Cookie headers are refused before anything reads them.

Every route parses the request's cookies (the session, the CSRF nonce, the countdown's
fast path), and parsing costs time in proportion to the header: a 390 KB Cookie header
(which granian accepts) cost every route about 60 ms, ``/healthz`` included. The cookies
this app sets come to about 200 bytes; browsers send at most some 4 KB per cookie. So the
app's entry point (``Application.__call__``) measures the ``cookie`` headers of the ASGI
scope, without parsing them, and answers a request whose cookies exceed
``COOKIE_HEADER_MAX_BYTES`` in all with a 431 that says what to do.
"""

from __future__ import annotations

import json

from hypercorn.typing import ASGISendCallable, HTTPScope

STATUS = 431  # Request Header Fields Too Large (RFC 6585)
MESSAGE = (
    "Your browser sent more cookies than this site accepts ({limit} bytes in all). "
    "Delete this site's cookies in your browser, then reload the page."
)
# The same for programs, which have no browser to clear (web/error_body.py's API wording).
API_MESSAGE = (
    "The Cookie headers are over {limit} bytes in all: send only the cookies this API "
    "sets (they come to about 200 bytes)."
)


def cookie_bytes(scope: HTTPScope) -> int:
    """The length of the request's Cookie headers, all of them (HTTP/2 may send several)."""
    return sum(len(value) for name, value in scope["headers"] if name == b"cookie")


async def refuse(scope: HTTPScope, send: ASGISendCallable, limit: int) -> None:
    """Answer with the 431, as JSON when JSON is asked for, else as plain text."""
    accept = b"".join(value for name, value in scope["headers"] if name == b"accept")
    if b"application/json" in accept:
        message = API_MESSAGE.format(limit=limit)
        body = json.dumps({"code": "cookies_too_large", "message": message}).encode()
        content_type = b"application/json"
    else:
        body = MESSAGE.format(limit=limit).encode()
        content_type = b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": STATUS, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})

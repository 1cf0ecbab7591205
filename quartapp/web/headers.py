"""Headers every response carries, added as the response is sent (``finish_headers``)."""

from __future__ import annotations

from quart.wrappers import Request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
]


# Browsers then refuse plain http for this host for two years. (Behind a proxy that ends
# TLS, the app sees http: let the proxy send this header.)
HSTS = ("Strict-Transport-Security", "max-age=63072000")
# Pages carry personal data or CSRF tokens: never cache them anywhere. And routes answer
# htmx with a fragment and everyone else with a page.
PAGE_HEADERS = [("Cache-Control", "no-store"), ("Vary", "HX-Request")]


def response_headers(*, https: bool, page: bool) -> list[tuple[str, str]]:
    """The headers a response gets from the app (beyond its own): the security headers, HSTS
    over https, and for anything but a static file the page headers."""
    return [*HEADERS, *([HSTS] if https else []), *(PAGE_HEADERS if page else [])]


def encoded_headers(*, https: bool, page: bool) -> list[tuple[bytes, bytes]]:
    """``response_headers`` as ASGI sends them (lower-case names, bytes)."""
    return [
        (name.lower().encode(), value.encode())
        for name, value in response_headers(https=https, page=page)
    ]


_ENCODED = {
    (https, page): encoded_headers(https=https, page=page)
    for https in (False, True)
    for page in (False, True)
}
# Every header the app adds, by name: a view that sets one of them itself keeps its own (a
# token page's Referrer-Policy, an error page's Cache-Control, a page's own
# Content-Security-Policy), except Vary, to which HX-Request is added.
_APP_HEADER_NAMES = frozenset(name for name, _ in _ENCODED[True, True])


def finish_headers(request: Request, headers: list[tuple[bytes, bytes]]) -> None:
    """Add the app's headers to a response's ASGI ``headers`` as it is sent to ``request``:
    the page headers for anything but a static file (a 404 included), HSTS over https.
    Each of them appears once: where the view set its own, the view's stands."""
    rule = request.url_rule
    extra = _ENCODED[request.scheme == "https", rule is None or rule.endpoint != "static"]
    if not any(name in _APP_HEADER_NAMES for name, _ in headers):
        headers.extend(extra)
        return
    present = {name for name, _ in headers}
    for name, value in extra:
        if name not in present:
            headers.append((name, value))
        elif name == b"vary":
            for index, (own, listed) in enumerate(headers):
                if own != b"vary":
                    continue
                if value.lower() not in {part.strip().lower() for part in listed.split(b",")}:
                    headers[index] = (own, listed + b", " + value)

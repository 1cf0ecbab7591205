"""Headers every response carries."""

from __future__ import annotations

from quart import Quart, Response, request

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


async def add_security_headers(response: Response) -> Response:
    headers = response.headers
    # No view sets these, so they are appended rather than merged: this runs on every poll.
    headers.extend(HEADERS)
    if request.scheme == "https":
        # Browsers then refuse plain http for this host for two years. (Behind a proxy
        # that ends TLS, the app sees http: let the proxy send this header.)
        headers["Strict-Transport-Security"] = "max-age=63072000"
    if request.endpoint != "static":
        # Pages carry personal data or CSRF tokens: never cache them anywhere.
        headers.setdefault("Cache-Control", "no-store")
        # Routes answer htmx with a fragment and everyone else with a page.
        if "Vary" in headers:
            response.vary.add("HX-Request")
        else:
            headers["Vary"] = "HX-Request"
    return response


def init_app(app: Quart) -> None:
    app.after_request(add_security_headers)

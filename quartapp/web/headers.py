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


# Browsers then refuse plain http for this host for two years. (Behind a proxy that ends
# TLS, the app sees http: let the proxy send this header.)
HSTS = ("Strict-Transport-Security", "max-age=63072000")
# Pages carry personal data or CSRF tokens: never cache them anywhere. And routes answer
# htmx with a fragment and everyone else with a page.
PAGE_HEADERS = [("Cache-Control", "no-store"), ("Vary", "HX-Request")]


def response_headers(*, https: bool, page: bool) -> list[tuple[str, str]]:
    """The headers a response gets from the app (beyond its own): the security headers, HSTS
    over https, and for anything but a static file the page headers. The countdown poll's
    fast answer uses this too, so both sides send the same."""
    return [*HEADERS, *([HSTS] if https else []), *(PAGE_HEADERS if page else [])]


REFERRER_POLICY = ("Referrer-Policy", "same-origin")
# What every response gets unconditionally, over http and over https (the referrer policy
# unless the view set its own).
_ALWAYS = {
    https: [
        header for header in response_headers(https=https, page=False) if header != REFERRER_POLICY
    ]
    for https in (False, True)
}


async def add_security_headers(response: Response) -> Response:
    headers = response.headers
    # No view sets these, so they are appended rather than merged.
    headers.extend(_ALWAYS[request.scheme == "https"])
    # (``name in headers`` raises and catches an exception when it is not.)
    present = {key.lower() for key, _ in headers}
    if "referrer-policy" not in present:
        headers.add(*REFERRER_POLICY)  # token pages send their own (no-referrer)
    if request.endpoint != "static":
        for name, value in PAGE_HEADERS:
            if name.lower() not in present:
                headers[name] = value
            elif name == "Vary":
                response.vary.add(value)
            # a view's own Cache-Control stands
    return response


def init_app(app: Quart) -> None:
    app.after_request(add_security_headers)

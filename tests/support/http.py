"""HTTP against a served app, with nothing but the standard library.

``Client`` is one keep-alive connection (load generators, probes); ``Browser`` keeps
cookies for 127.0.0.1 whatever the port, as browsers do, and fills in forms with their
CSRF token. ``status_of`` asks for a status and never raises.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from .settings import PASSWORD

HOST = "127.0.0.1"
SESSION_COOKIE = "quartapp_session"  # COOKIE_SECURE=false: no __Host- prefix on plain http
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGE_HEADERS = {"Accept": "text/html,application/xhtml+xml"}
# A poll as the page's countdown sends it (see templates/home/_countdown.html).
COUNTDOWN_HEADERS = {
    "HX-Request": "true",
    "HX-Target": "countdown-clock",
    "X-Countdown-Shown": "live",
}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    @property
    def upstream(self) -> str | None:
        """Which instance answered, when nginx did the asking (its ``X-Upstream``)."""
        return self.headers.get("X-Upstream")

    def set_cookies(self) -> list[tuple[str, str, bool]]:
        """(name, value, deleted) of every cookie the answer sets or deletes."""
        found = []
        for header in self.headers.get_all("Set-Cookie") or []:
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                found.append((name, morsel.value, not morsel.value or morsel["max-age"] == "0"))
        return found

    def cookies(self) -> dict[str, str]:
        return {name: value for name, value, _ in self.set_cookies()}


def cookie_header(jar: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def form_body(fields: Mapping[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


class Client:
    """One keep-alive connection to 127.0.0.1:port; reconnects once if the server closed
    it. ``source`` is the address it connects from (any of 127.0.0.0/8)."""

    def __init__(self, port: int, timeout: float = 30.0, source: str | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.source = (source, 0) if source else None
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            HOST, self.port, timeout=self.timeout, source_address=self.source
        )

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        for attempt in (1, 2):
            started = time.monotonic()
            try:
                self.conn.request(method, path, body=body, headers=dict(headers or {}))
                response = self.conn.getresponse()
                data = response.read()
                return Reply(response.status, response.headers, data, time.monotonic() - started)
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = self._connect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def status_of(port: int, path: str = "/healthz", timeout: float = 1.0) -> int | None:
    """The HTTP status of ``GET path`` on 127.0.0.1:port, or None if nothing answered."""
    with contextlib.suppress(OSError, http.client.HTTPException), Client(port, timeout) as client:
        client.conn.request("GET", path)
        response = client.conn.getresponse()
        response.read()
        return response.status
    return None


@dataclass
class Browser:
    """One cookie jar for 127.0.0.1, whatever the port, as browsers keep cookies: it moves
    between instances and nginx as a user's browser would. Each request is a connection
    of its own, from ``source``; ``headers`` go with every request."""

    source: str = HOST
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0

    def request(
        self,
        method: str,
        url: str,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """``url`` is ``http://127.0.0.1:port/path``."""
        parts = urllib.parse.urlsplit(url)
        send = {"Accept": "text/html", **self.headers, **(headers or {})}
        if self.cookies:
            send["Cookie"] = cookie_header(self.cookies)
        body = None
        if fields is not None:
            body = form_body(fields)
            send.update(FORM_HEADERS)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        port = parts.port or 80
        with Client(port, timeout or self.timeout, self.source) as client:
            started = time.monotonic()
            client.conn.request(method, path, body=body, headers=send)
            response = client.conn.getresponse()
            data = response.read()
        reply = Reply(response.status, response.headers, data, time.monotonic() - started)
        for name, value, deleted in reply.set_cookies():
            if deleted:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return reply

    def get(self, url: str, **headers: str) -> Reply:
        return self.request("GET", url, headers=headers)

    def submit(self, page: str, action: str, fields: Mapping[str, str] | None = None) -> Reply:
        """Load ``page`` for its form's CSRF token, then post ``fields`` to ``action``."""
        loaded = self.get(page)
        match = CSRF_FIELD.search(loaded.text)
        if loaded.status != 200 or match is None:
            raise AssertionError(f"GET {page}: {loaded.status} without a CSRF field")
        return self.request("POST", action, fields={**(fields or {}), "csrf_token": match[1]})

    def sign_up(self, base: str, email: str, password: str = PASSWORD) -> Reply:
        fields = {"email": email, "password": password}
        return self.submit(f"{base}/register", f"{base}/api/v1/signup", fields)

    def sign_in(self, base: str, email: str, password: str = PASSWORD) -> Reply:
        fields = {"email": email, "password": password}
        return self.submit(f"{base}/", f"{base}/api/v1/signin", fields)

    def sign_out(self, base: str) -> Reply:
        return self.submit(f"{base}/home", f"{base}/logout")

    def copy(self) -> Browser:
        """Another browser holding a copy of these cookies, as a stolen cookie would be."""
        return Browser(self.source, dict(self.cookies), dict(self.headers), self.timeout)


def sign_up_and_in(port: int, email: str, password: str) -> str:
    """Create the account, sign in through the real form (a fresh browser), and return
    the session cookie."""
    base = f"http://{HOST}:{port}"
    reply = Browser().sign_up(base, email, password)
    if reply.status != 303 or SESSION_COOKIE not in reply.cookies():
        raise RuntimeError(f"sign-up gave {reply.status}: {reply.text[:300]}")
    browser = Browser()
    reply = browser.sign_in(base, email, password)
    cookie = reply.cookies().get(SESSION_COOKIE)
    if reply.status != 303 or not cookie:
        raise RuntimeError(f"sign-in gave {reply.status}: {reply.text[:300]}")
    return cookie

"""CSRF protection for every state-changing request.

A token is a signed, timestamped value bound to something the browser holds: the session's
key id when signed in, or, for the anonymous sign-in and sign-up forms, a random nonce in a
short-lived cookie of its own (so anonymous visitors cost no Redis record). Forms send the
token as ``csrf_token``; htmx and JSON clients send it as ``X-CSRF-Token``.

A token reads ``<binding>.<signed at, Unix seconds>.<HMAC-SHA256 of both>``, keyed with a key
derived from the secret key for this purpose alone, and is checked in constant time. Every
page carries one, so signing is one HMAC over a few dozen bytes.

Once a request is signed in, only a token bound to its session counts, and the anonymous
cookie is dropped: a token (or a planted cookie) from before the sign-in opens nothing after.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import secrets
import time

from quart import Quart, Response
from werkzeug.http import http_date

from quartapp.engine.quart_context import current_application, request_context
from quartapp.sessions.extension import RequestSession, request_session
from quartapp.sessions.store import SessionRecord
from quartapp.web.errors import AppError

_URLSAFE = bytes.maketrans(b"+/", b"-_")
EXTENSION = "quartapp.csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
HEADER = "X-CSRF-Token"
FIELD = "csrf_token"
KEY_PURPOSE = b"quartapp csrf token key"


class CsrfError(AppError):
    def __init__(self) -> None:
        super().__init__(
            "This form has expired or did not come from this site. Reload the page and try again.",
            status=403,
            code="csrf_failed",
        )


class CsrfProtection:
    def __init__(self, app: Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        secure = bool(app.config["COOKIE_SECURE"])
        self.cookie_name = "__Host-quartapp_csrf" if secure else "quartapp_csrf"
        self.secure = secure
        self.max_age = int(app.config["CSRF_TOKEN_MAX_AGE"])
        self.session_age = int(app.config["SESSION_ABSOLUTE_TIMEOUT"])
        secret = app.config["SECRET_KEY"]
        secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        # The keyed HMAC, copied for each signature: keying it again, and looking SHA-256
        # up by name, cost a third of every signature.
        self._keyed = hmac.new(hmac.digest(secret, KEY_PURPOSE, "sha256"), digestmod=hashlib.sha256)
        # What werkzeug's set_cookie writes after the value and the expiry date.
        self._cookie_attributes = (
            f"Max-Age={self.max_age}; {'Secure; ' if secure else ''}HttpOnly; Path=/; SameSite=Lax"
        )
        app.extensions[EXTENSION] = self
        app.before_request(self._check)
        app.after_request(self._set_cookie)
        app.jinja_env.globals["csrf_token"] = csrf_token

    def _signature(self, signed: str) -> str:
        mac = self._keyed.copy()
        mac.update(signed.encode())
        # base64url without padding (base64.urlsafe_b64encode, two calls fewer).
        encoded = binascii.b2a_base64(mac.digest(), newline=False)
        return encoded.translate(_URLSAFE).rstrip(b"=").decode()

    def sign(self, binding: str, signed_at: int) -> str:
        signed = f"{binding}.{signed_at}"
        return f"{signed}.{self._signature(signed)}"

    def unsign(self, token: str) -> tuple[str, int] | None:
        """(binding, signed at) of a token this app signed, or None."""
        signed, _, signature = token.rpartition(".")
        binding, _, signed_at = signed.rpartition(".")
        if not binding or not signed_at.isdigit() or len(signed_at) > 12:
            return None
        if not hmac.compare_digest(signature.encode(), self._signature(signed).encode()):
            return None
        return binding, int(signed_at)

    def anonymous_nonce(self, current: RequestSession, *, create: bool) -> str | None:
        """The anonymous binding: this request's CSRF cookie, or (``create``) a new one."""
        if current.csrf_nonce is None:
            current.csrf_nonce = current.cookies.get(self.cookie_name)
            if current.csrf_nonce is None and create:
                current.csrf_nonce = self.new_nonce()
                current.csrf_nonce_is_new = True
        return current.csrf_nonce

    def token(self) -> str:
        """This request's token (the same for every form of a page)."""
        current = request_session()
        if current.csrf_token is None:
            record = current.record
            if record is not None:
                current.csrf_token = self.session_token(record)
            else:
                nonce = self.anonymous_nonce(current, create=True)
                assert nonce is not None
                current.csrf_token = self.anonymous_token(nonce)
        return current.csrf_token

    @staticmethod
    def new_nonce() -> str:
        """A new anonymous binding, for a visitor without the cookie (``anonymous_cookie``)."""
        return secrets.token_urlsafe(16)

    def anonymous_token(self, nonce: str) -> str:
        """A token for the forms of an anonymous page, bound to the visitor's ``nonce``."""
        return self.sign(nonce, int(time.time()))

    def anonymous_cookie(self, nonce: str) -> str:
        """The Set-Cookie value that gives a visitor its new anonymous ``nonce``."""
        expires = _http_date(int(time.time()) + self.max_age)
        return f"{self.cookie_name}={nonce}; Expires={expires}; {self._cookie_attributes}"

    def session_token(self, record: SessionRecord) -> str:
        """A token for the forms of a page of ``record``'s session, signed now."""
        return self.sign(record.key_id, int(time.time()))

    async def _check(self) -> None:
        context = request_context()
        assert context is not None, "only while a request is handled"
        this = context.request
        if this.method in SAFE_METHODS or this.routing_exception is not None:
            return  # nothing to protect; a 404 or 405 answers for itself
        current = context.session
        view = context.app.view_functions.get(this.endpoint or "")
        if getattr(view, "access", None) == "signed_in" and current.record is None:
            return  # no session, so nothing can change: the view sends the browser to sign in
        submitted = this.headers.get(HEADER)
        if submitted is None and this.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            submitted = (await this.form).get(FIELD)
        if not submitted:
            raise CsrfError()
        # A signed-in page may stay open as long as its session lives; an anonymous form
        # only as long as its cookie.
        unsigned = self.unsign(submitted)
        if unsigned is None:
            raise CsrfError()
        binding, signed_at = unsigned
        age = int(time.time()) - signed_at  # whole seconds, as signed
        if age < 0:
            raise CsrfError()
        record = current.record
        if record is not None:
            if binding == record.key_id and age <= self.session_age:
                return
            raise CsrfError()
        nonce = self.anonymous_nonce(current, create=False)
        if nonce is not None and binding == nonce and age <= self.max_age:
            return
        raise CsrfError()

    async def _set_cookie(self, response: Response) -> Response:
        current = request_session()
        if current.csrf_nonce_is_new:
            assert current.csrf_nonce is not None
            response.headers.add("Set-Cookie", self.anonymous_cookie(current.csrf_nonce))
        elif current.record is not None and self.cookie_name in current.cookies:
            # Signed in (maybe by this very request): the anonymous nonce has had its day.
            response.delete_cookie(
                self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="Lax"
            )
        return response


@functools.lru_cache(maxsize=2)
def _http_date(seconds: int) -> str:
    # The cookie's expiry moves once a second: every new visitor in that second shares it.
    return http_date(seconds)


def csrf_token() -> str:
    # Every page asks: the app object, not Quart's current_app proxy.
    protection: CsrfProtection = current_application().extensions[EXTENSION]
    return protection.token()

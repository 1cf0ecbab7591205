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

import base64
import hmac
import secrets
import time

from quart import Quart, Response, current_app, g, request

from quartapp.sessions.extension import current_record
from quartapp.web.errors import AppError

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
        self._key = hmac.digest(secret, KEY_PURPOSE, "sha256")
        app.extensions[EXTENSION] = self
        app.before_request(self._check)
        app.after_request(self._set_cookie)
        app.jinja_env.globals["csrf_token"] = csrf_token

    def _signature(self, signed: str) -> str:
        digest = hmac.digest(self._key, signed.encode(), "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

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

    def anonymous_nonce(self, *, create: bool) -> str | None:
        nonce: str | None = g.get("csrf_nonce") or request.cookies.get(self.cookie_name)
        if nonce is None and create:
            nonce = g.csrf_new_nonce = secrets.token_urlsafe(16)
        if nonce is not None:
            g.csrf_nonce = nonce
        return nonce

    def token(self) -> str:
        record = current_record()
        binding = record.key_id if record is not None else self.anonymous_nonce(create=True)
        assert binding is not None
        return self.sign(binding, int(time.time()))

    async def _check(self) -> None:
        if request.method in SAFE_METHODS or request.routing_exception is not None:
            return  # nothing to protect; a 404 or 405 answers for itself
        view = current_app.view_functions.get(request.endpoint or "")
        if getattr(view, "access", None) == "signed_in" and current_record() is None:
            return  # no session, so nothing can change: the view sends the browser to sign in
        submitted = request.headers.get(HEADER)
        if submitted is None and request.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            submitted = (await request.form).get(FIELD)
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
        record = current_record()
        if record is not None:
            if binding == record.key_id and age <= self.session_age:
                return
            raise CsrfError()
        nonce = self.anonymous_nonce(create=False)
        if nonce is not None and binding == nonce and age <= self.max_age:
            return
        raise CsrfError()

    async def _set_cookie(self, response: Response) -> Response:
        nonce = g.get("csrf_new_nonce")
        if nonce is None and self.cookie_name in request.cookies and current_record() is not None:
            # Signed in (maybe by this very request): the anonymous nonce has had its day.
            response.delete_cookie(
                self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="Lax"
            )
        elif nonce is not None:
            response.set_cookie(
                self.cookie_name,
                nonce,
                max_age=self.max_age,
                path="/",
                secure=self.secure,
                httponly=True,
                samesite="Lax",
            )
        return response


def csrf_token() -> str:
    protection: CsrfProtection = current_app.extensions[EXTENSION]
    return protection.token()

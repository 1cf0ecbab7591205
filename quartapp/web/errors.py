"""One error type, and one place that renders every error for the kind of request."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from quart import Quart, Response, jsonify, request
from quart_auth import Unauthorized
from redis.exceptions import (
    RedisClusterException,
    RedisError,
)
from tortoise.exceptions import DBConnectionError
from werkzeug.exceptions import HTTPException, InternalServerError

from quartapp.engine.quart_context import request_context
from quartapp.infra.redis_client import redis_unavailable
from quartapp.sessions.extension import RequestSession
from quartapp.web.error_body import API_MESSAGES
from quartapp.web.hypermedia import htmx, navigate, wants_json
from quartapp.web.next_page import sign_in_url
from quartapp.web.templating import render_template

log = logging.getLogger(__name__)


class AppError(Exception):
    """An answer for the user: a status, a message, and messages per form field; and for
    programs, a stable machine ``code`` (by default the status's, ``STATUS_CODES``)."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
        self.code = code or STATUS_CODES.get(status, "error")

    def body(self) -> dict[str, Any]:
        """This error as JSON clients get it (``error_body``: the shape and the codes)."""
        message = API_MESSAGES.get(self.code, self.message)
        if self.code == "validation_failed" and not self.fields:
            message = self.message  # the API wording points at fields there are none of
        body: dict[str, Any] = {"code": self.code, "message": message}
        if self.fields:
            body["fields"] = self.fields
        return body


# The machine code of an error that names none of its own (docs/api.md lists them all).
STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "throttled",
    431: "cookies_too_large",
    500: "internal_error",
    503: "unavailable",
}


FIX_FIELDS = "Please correct the fields below."


class InvalidFields(AppError):
    """A form with problems, by field; shown next to each field, the form as typed."""

    def __init__(
        self, fields: Mapping[str, str], status: int = 422, *, code: str | None = None
    ) -> None:
        super().__init__(FIX_FIELDS, status=status, fields=fields, code=code)


class ServiceUnavailable(AppError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is not answering right now. Please try again in a moment.",
            status=503,
            headers={"Retry-After": "5"},
        )


def signed_in_so_far() -> bool:
    """Whether this request's visitor is signed in, as far as the request got: the session
    is loaded before any view (for a 404 and a 405 too, ``sessions.extension``), unless
    Redis failed, and a sign-out forgets it. An error page shows a signed-in visitor the
    navigation of the signed-in pages (``templates/base.html``), as every page does."""
    context = request_context()
    session = context.session if context is not None else None
    return isinstance(session, RequestSession) and session.record is not None


async def render_error(error: AppError) -> Response:
    if wants_json():
        response = jsonify(error.body())
    elif htmx().request:
        # Shown in the page's alert region; the element that asked is left as it was.
        response = Response(await render_template("errors/alert.html", error=error))
        response.headers["HX-Reswap"] = "none"
    else:
        response = Response(
            await render_template("errors/page.html", error=error, signed_in=signed_in_so_far())
        )
    response.status_code = error.status
    response.headers.update(error.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


_HTTP_MESSAGES = {
    400: "The request could not be understood.",
    404: "There is no page at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request is too large.",
    415: "Send the form as a web form or as JSON.",
}


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(AppError)
    async def app_error(error: AppError) -> Response:
        return await render_error(error)

    @app.errorhandler(Unauthorized)
    async def unauthorized(_: Unauthorized) -> Response:
        if wants_json():
            return await render_error(AppError("Sign in first.", status=401))
        return navigate(sign_in_url())  # back to the page asked for, once signed in

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = _HTTP_MESSAGES.get(status, error.description or "That did not work.")
        headers = dict(error.get_headers()) if status == 405 else {}
        headers.pop("Content-Type", None)
        return await render_error(AppError(message, status=status, headers=headers))

    @app.errorhandler(RedisError)
    @app.errorhandler(RedisClusterException)
    async def redis_down(error: Exception) -> Response:
        if not redis_unavailable(error):
            raise error  # a mistake, not an outage: the usual 500
        log.warning(
            "Redis unavailable during %s %s: %s: %s",
            request.method,
            request.path,
            type(error).__name__,
            error,
        )
        return await render_error(ServiceUnavailable("The session service"))

    @app.errorhandler(DBConnectionError)
    async def database_down(error: Exception) -> Response:
        log.warning("MySQL unavailable during %s %s: %s", request.method, request.path, error)
        return await render_error(ServiceUnavailable("The account database"))

    @app.errorhandler(InternalServerError)
    async def server_error(error: InternalServerError) -> Response:
        # An exception after the view (an after-request hook, or saving the session)
        # skips the handlers above and reaches Quart's last resort, a 500 that wraps it.
        # An outage there is still an outage: a 503, as anywhere else.
        original = error.original_exception
        if isinstance(original, RedisError | RedisClusterException) and redis_unavailable(original):
            return await redis_down(original)
        if isinstance(original, DBConnectionError):
            return await database_down(original)
        return await http_error(error)

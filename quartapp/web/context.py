"""This request's context object, read directly rather than through Quart's proxies (the hot
paths read it several times a request).

Quart 0.22 keeps a request context of its own; Quart 0.23 keeps the request and the
session on the app context. Both have ``.request`` and ``.session``."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from quart import globals as quart_globals
from quart import has_request_context

# Quart 0.22's request context; Quart 0.23 has one context for the app and the request.
_context: ContextVar[Any] = getattr(quart_globals, "_cv_request", None) or quart_globals._cv_app


def request_context() -> Any | None:
    """The context of the request being handled, or None outside a request."""
    return _context.get() if has_request_context() else None

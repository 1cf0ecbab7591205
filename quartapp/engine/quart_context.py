"""Quart: the request's context objects read directly, not through Quart's proxies.

Replaces reads through ``quart.request``, ``session`` and ``current_app`` on the
pages' paths (the hooks, the views, the template functions read them several times a
request): each attribute read through a proxy first fails on the proxy itself, an
AttributeError made and dropped, before it is looked up on the object. Quart 0.22 keeps a
request context of its own; Quart 0.23 keeps the request and the session on the app
context. Both have ``.app``, ``.request`` and ``.session``.

Private names read: ``quart.globals._cv_request`` (Quart 0.22) and ``quart.globals._cv_app``.

Buys (``bench/instructions.py --stock-gc``, 2026-12-07: how many more instructions a
request costs without it, on Python 3.13 with Quart 0.23.1 / on 3.11 with Quart 0.22):
``GET /home`` +20.1 % / +31.3 %, ``GET /`` +38.4 % / +55.0 %, ``GET /sessions`` +11.1 % /
+15.8 %; the countdown poll, answered in front of Quart, nothing. A read through
Werkzeug's LocalProxy is no longer an exception on 3.13, but still several Python calls.

Delete when: reading through Quart's proxies costs under 3 % of a page (measure with the
functions below returning ``request``, ``session`` and ``current_app``), or Quart drops
``_cv_app`` (then ``tests/test_engine.py`` fails first).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from quart import Quart, Request, current_app, has_request_context
from quart import globals as quart_globals

# Quart 0.22's request context; Quart 0.23 has one context for the app and the request.
_context: ContextVar[Any] = getattr(quart_globals, "_cv_request", None) or quart_globals._cv_app


def request_context() -> Any | None:
    """The context of the request being handled, or None outside a request."""
    return _context.get() if has_request_context() else None


def current_application() -> Quart:
    """The app handling this request (the object, not Quart's ``current_app`` proxy);
    outside a request, whatever ``current_app`` names."""
    context = request_context()
    app: Quart = context.app if context is not None else current_app
    return app


def current_request() -> Request:
    """The request being handled (the object, not Quart's ``request`` proxy: each attribute
    read through the proxy first fails on the proxy itself, an AttributeError made and
    dropped, before it is looked up on the request)."""
    context = request_context()
    if context is None:
        raise RuntimeError("not while a request is handled")
    this: Request = context.request
    return this

"""Who may call a view. Every route is either ``public`` or ``signed_in``; a test checks it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart_auth import login_required

View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


def public(view: View) -> View:
    view.access = "public"  # type: ignore[attr-defined]
    return view


def signed_in(view: View) -> View:
    """Anonymous callers are sent to sign in (HX-Redirect for htmx, 401 for JSON)."""
    guarded = login_required(view)
    guarded.access = "signed_in"  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]

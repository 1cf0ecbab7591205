"""Who may call a view. Every route is either ``public`` or ``signed_in``; a test checks it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart_auth import Unauthorized

from quartapp.sessions.extension import current_record

View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


def public(view: View) -> View:
    view.access = "public"  # type: ignore[attr-defined]
    return view


def signed_in(view: View) -> View:
    """Anonymous callers are sent to sign in (HX-Redirect for htmx, 401 for JSON).

    quart-auth's ``login_required``, asking the request's session directly: it holds a live
    record exactly when ``current_user.is_authenticated`` (``sessions.extension.SessionUser``)."""

    @functools.wraps(view)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_record() is None:
            raise Unauthorized()
        return await view(*args, **kwargs)

    guarded.access = "signed_in"  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]

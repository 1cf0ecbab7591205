"""What kind of answer a request wants, read from its headers in one place."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from quart import Response, redirect, url_for

from quartapp.engine.quart_context import current_request, request_context
from quartapp.web.templating import render_once as render_template_once
from quartapp.web.templating import render_remembered as render_remembered_template
from quartapp.web.templating import render_template


@dataclass(frozen=True, slots=True)
class HtmxDetails:
    """The htmx request headers (https://htmx.org/reference/#request_headers)."""

    request: bool
    boosted: bool
    history_restore: bool
    target: str | None

    @classmethod
    def from_headers(cls, get: Callable[[str], str | None]) -> HtmxDetails:
        """Read from ``get(name)``, a lookup of request headers by (case-blind) name."""
        return cls(
            request=get("HX-Request") == "true",
            boosted=get("HX-Boosted") == "true",
            history_restore=get("HX-History-Restore-Request") == "true",
            target=get("HX-Target"),
        )

    @property
    def wants_fragment(self) -> bool:
        """A partial swap: not a boosted navigation and not a history restore."""
        return self.request and not self.boosted and not self.history_restore


# What a request without htmx headers has.
NOT_HTMX = HtmxDetails(request=False, boosted=False, history_restore=False, target=None)


def htmx() -> HtmxDetails:
    """This request's htmx headers, read once per request."""
    context = request_context()
    assert context is not None, "only while a request is handled"
    this = context.request
    details: HtmxDetails | None = this.__dict__.get("_htmx")
    if details is None:
        # Straight from the ASGI scope (names are lower case there), in one pass.
        found: dict[str, str] = {}
        for name, value in this.scope["headers"]:
            if name[:3] == b"hx-":
                found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        if found:
            details = HtmxDetails.from_headers(lambda name: found.get(name.lower()))
        else:
            details = NOT_HTMX  # most requests: a browser's navigation
        this.__dict__["_htmx"] = details
    return details


def wants_json() -> bool:
    """A JSON client: it sent JSON, or it prefers JSON to HTML."""
    if htmx().request:
        return False
    this = current_request()
    if this.mimetype == "application/json":
        return True
    offered = this.headers.get("Accept", "").lower()
    if "application/json" not in offered and "application/*" not in offered:
        # Only these can rank JSON above HTML (a browser's application/xhtml+xml cannot),
        # so the header is parsed only when one of them is there.
        return False
    accept = this.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json"


def navigate(location: str) -> Response:
    """Send the browser to ``location``: HX-Redirect for htmx, a 303 for everything else."""
    if htmx().request:
        response = Response("", status=204)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, code=303)  # type: ignore[return-value]


def signed_out_url() -> str:
    """The sign-in page, saying "You are signed out" (a fixed message for a flag)."""
    return url_for("auth.sign_in_page", signed_out=1)


async def render(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """``fragment`` alone for an htmx swap, else the whole ``page``, which includes it."""
    template = fragment if htmx().wants_fragment else page
    response = Response(await render_template(template, **context), status=status)
    return _with_error_headers(response, context)


async def render_remembered(
    page: str, fragment: str, per_request: Collection[str], /, **context: Any
) -> Response:
    """``render`` of a page asked for often, from a rendering remembered per shape, with
    the values named in ``per_request`` filled in (``templating.render_remembered``)."""
    template = fragment if htmx().wants_fragment else page
    return Response(await render_remembered_template(template, per_request, **context))


async def render_once(page: str, fragment: str) -> Response:
    """``render`` of a page (or its fragment) that is the same for every visitor but for
    its CSRF token: rendered once and remembered (``templating.render_once``)."""
    template = fragment if htmx().wants_fragment else page
    return Response(await render_template_once(template))


def _with_error_headers(response: Response, context: dict[str, Any]) -> Response:
    error = context.get("error")
    if error is not None:
        response.headers.update(getattr(error, "headers", {}))  # e.g. Retry-After on a 429
    return response

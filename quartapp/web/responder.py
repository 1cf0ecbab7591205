"""One responder: a view returns one typed outcome, and ``respond`` answers every kind of
client from it (a full page, an htmx fragment, a redirect, or JSON), so that no view asks
what kind of client it has. The client's kind is read as everywhere
(``hypermedia.wants_json``, ``hypermedia.htmx``).

- ``Outcome(data=..., status=...)``: JSON clients get ``data`` (a pydantic model, without
  the fields the view left unset) with ``status``; so does everyone when the outcome names
  no page and no redirect. ``data`` may be a function that makes the model, called only
  for a JSON answer, where making it would cost a page more than it should pay for
  nothing (the sessions list's five models: about 300k instructions of a 2.2M request).
- ``Outcome(..., page=Page(...))``: browsers get the page (with the page's own status, a
  200 unless it says otherwise: a 202 for JSON clients is a page like any other), htmx its
  fragment.
- ``Outcome(..., redirect=url)``: browsers go there (a 303; htmx an ``HX-Redirect``).
- ``Outcome(..., page=Page(...), redirect=url)``: an htmx swap gets the page's fragment in
  place, and a browser without JavaScript (or a boosted htmx navigation) goes to ``url``
  (a form that updates its part of the page, and without htmx goes back to the page it
  was on).
- ``page`` may be a coroutine function that makes the page, awaited only when the answer is
  the page: what only the page shows (a list htmx swaps in) is read only for it.
- ``Refused(error, page)``: a form refused. JSON clients get the error (``error_body``,
  through the app's error handler); browsers get the form again, with the error next to
  its fields and the status of the error (or ``page_status``: a live hint that says it
  has paused is a 200, which it shows in its place).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from quart import Response, jsonify

from quartapp.web.errors import AppError
from quartapp.web.hypermedia import htmx, navigate, render, render_remembered, wants_json


@dataclass(frozen=True, slots=True)
class Page:
    """A template for browsers, and the part of it an htmx swap gets (the whole page when
    there is none), with its status: a page's own, as the outcome's is its JSON answer's
    (an address change is 202 Accepted for JSON, and its page a 200 like any page)."""

    template: str
    fragment: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    status: int = 200
    # The names in ``context`` that change from one request to the next, for a page
    # rendered once per shape and filled in (``templating.render_remembered``); empty: the
    # page is rendered in full.
    per_request: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a view decided, for every kind of client."""

    data: BaseModel | Callable[[], BaseModel] | None = None
    status: int = 200
    page: Page | Callable[[], Awaitable[Page]] | None = None
    redirect: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused form: the error for JSON clients, the form again for browsers (or, with
    ``redirect`` instead of a page, another page to go to: a step that has ended)."""

    error: AppError
    page: Page | None = None
    page_status: int | None = None
    redirect: str | None = None


async def respond(outcome: Outcome | Refused) -> Response:
    """The answer to this request for ``outcome``."""
    if isinstance(outcome, Refused):
        if wants_json():
            raise outcome.error  # the app's error handler answers every error alike
        if outcome.redirect is not None:
            return navigate(outcome.redirect)
        refused = outcome.page
        assert refused is not None, "a refusal names a page or a redirect"
        return await render(
            refused.template,
            refused.fragment or refused.template,
            outcome.error.status if outcome.page_status is None else outcome.page_status,
            error=outcome.error,
            **refused.context,
        )
    browser_answer = outcome.page is not None or outcome.redirect is not None
    if outcome.data is not None and (not browser_answer or wants_json()):
        data = outcome.data if isinstance(outcome.data, BaseModel) else outcome.data()
        response = jsonify(data.model_dump(mode="json", exclude_unset=True))
        response.status_code = outcome.status
        return response
    if outcome.redirect is not None and (outcome.page is None or not htmx().wants_fragment):
        return navigate(outcome.redirect)
    assert outcome.page is not None, "an outcome names data, a page or a redirect"
    page = outcome.page if isinstance(outcome.page, Page) else await outcome.page()
    fragment = page.fragment or page.template
    if page.per_request:
        return await render_remembered(page.template, fragment, page.per_request, **page.context)
    return await render(page.template, fragment, page.status, **page.context)

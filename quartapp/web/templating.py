"""Rendering the templates, and how times and durations read on pages and in JSON (the
template filters), in one place.

Times are Redis-clock milliseconds (every deadline comes from Redis's ``TIME``). A page
writes each absolute time as a ``<time>`` whose ``datetime`` is UTC ("...Z") and whose text
says UTC; ``static/app.js`` rewrites the text (or the title) in the reader's own time zone,
as ``data-local`` (or ``data-local-title``) asks: "datetime" or "time" (hours and minutes).
Without JavaScript the page stays in UTC, labelled so."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape
from quart import Quart, current_app

from quartapp.engine.jinja_pages import compile_pages
from quartapp.engine.quart_context import current_application, request_context
from quartapp.web.remembered_pages import RememberedPages, fillable

READABLE = "%d %b %Y, %H:%M:%S UTC"


def clock(seconds: int) -> str:
    """Seconds as ``mm:ss`` (or ``h:mm:ss`` from an hour up): two digits for the minutes,
    so that the countdown (in tabular figures) keeps its width from 10:00 to 09:59."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _moment(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def utc_stamp(moment: datetime) -> str:
    """A UTC time as a ``<time datetime>`` holds it, to the second: 2026-12-07T17:04:38Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_time(milliseconds: int) -> str:
    """A time as ISO 8601, to the second (for JSON)."""
    return _moment(milliseconds).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=4096)  # a page shows its session's start on every load
def timestamp(milliseconds: int) -> Markup:
    """A time as a ``<time>`` element, in the reader's time zone where scripts run."""
    moment = _moment(milliseconds)
    return Markup('<time datetime="{}" data-local="datetime">{}</time>').format(
        utc_stamp(moment), moment.strftime(READABLE)
    )


def clock_time(milliseconds: int) -> Markup:
    """A time as a ``<time>`` element reading hours and minutes ("14:05 UTC"), in the
    reader's time zone where scripts run."""
    return _clock_time(milliseconds // 1000)


# The end of a session is a second a few minutes ahead: every page and poll in that
# second shows the same one (formatting it costs a /home request about 3 %).
@functools.lru_cache(maxsize=64)
def _clock_time(seconds: int) -> Markup:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    # Digits and the ISO form only: nothing to escape.
    return Markup(  # noqa: S704
        f'<time datetime="{utc_stamp(moment)}" data-local="time">'
        f"{moment.hour:02d}:{moment.minute:02d} UTC</time>"
    )


def how_long_ago(milliseconds: int) -> str:
    """A duration as people say it: "just now", "5 min ago", "2 h 10 min ago", "3 days ago"."""
    minutes = max(0, milliseconds) // 60_000
    if minutes < 1:
        return "just now"  # last active moves once a minute at most anyway
    if minutes < 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"
    days = hours // 24
    return f"{days} day{'s' if days != 1 else ''} ago"


@functools.lru_cache(maxsize=4096)  # the sessions page shows the same times on every load
def _time_opening(milliseconds: int) -> Markup:
    moment = _moment(milliseconds)
    return Markup('<time datetime="{}" title="{}" data-local-title="datetime">').format(
        utc_stamp(moment), moment.strftime(READABLE)
    )


_TIME_CLOSING = Markup("</time>")


def ago(milliseconds: int, now: int) -> Markup:
    """A time as a ``<time>`` reading "5 min ago" (as of ``now``), exact in its tooltip."""
    # One Markup made of the parts: two are Markup, the middle one is escaped here.
    text = escape(how_long_ago(now - milliseconds))
    return Markup("".join((_time_opening(milliseconds), text, _TIME_CLOSING)))  # noqa: S704


EXTENSION = "quartapp.templates"
REMEMBERED = "quartapp.remembered_pages"


async def render_template(name: str, **context: Any) -> str:
    """The template ``name`` rendered with ``context`` and nothing else, on every call.

    Quart's ``render_template`` also runs the template context processors (one of them a
    synchronous one that each blueprint adds, which Quart runs in a worker thread) and
    sends two signals, on every render. The templates use neither ``request``, ``session``
    nor ``g``, and nothing listens to the signals. They await nothing either, so they are
    rendered synchronously (``templates``), not through Jinja's async generators."""
    this = request_context()  # the request's, not Quart's current_app proxy
    environment = templates(this.app if this is not None else current_app)
    urls = environment.globals["url_for"]
    if this is not None and "url_for" not in context and isinstance(urls, RememberedUrls):
        context["url_for"] = urls.at(this.request.root_path)
    return environment.get_template(name).render(context)


async def render_remembered(name: str, per_request: Collection[str], /, **context: Any) -> str:
    """The template ``name`` rendered with ``context``, as ``render_template`` renders it,
    from a rendering remembered per shape: the values named in ``per_request`` (and the
    CSRF token) are filled in on each call, everything else in ``context`` picks which
    remembered rendering (so it must be hashable, and take few values).

    For a page asked for often whose per-request values are only written, not tested or
    computed with, in the template (``remembered_pages`` says what they may do, and what
    happens when they do more: the page is then rendered in full, and still right)."""
    return _remembered(name, per_request, context)


async def render_once(name: str) -> str:
    """The template ``name`` without context, rendered once per script root and
    remembered; each call fills in its own CSRF token (``render_remembered`` with nothing
    per request).

    For a page the same for every visitor but for its token, such as the anonymous sign-in
    page, and asked for often. Every other page goes through ``render_template`` or
    ``render_remembered``."""
    return _remembered(name, (), {})


def _remembered(name: str, per_request: Collection[str], context: dict[str, Any]) -> str:
    this = request_context()
    if this is None:  # no script root to build URLs under: rendered as it is
        return templates(current_app).get_template(name).render(context)
    pages: RememberedPages = this.app.extensions[REMEMBERED]
    return pages.render(name, this.request.root_path, per_request, context)


def templates(app: Quart) -> Environment:
    """The app's templates, with its filters and globals, compiled for synchronous rendering."""
    environment: Environment = app.extensions[EXTENSION]
    return environment


# The most URLs the templates' url_for remembers per script root; far more than the
# templates build. And the most script roots it keeps URLs for (a deployment has one).
URL_CACHE_SIZE = 1024
ROOTS_REMEMBERED = 16


class RememberedUrls:
    """``url_for`` for templates that builds each URL once per script root: the rules,
    and so the URLs, never change while the app runs. Options (``_external`` and the
    like) and relative endpoints are built every time.

    Called as ``url_for``, it looks up the request's script root on each call. A render
    takes the ``url_for`` of its request's script root once (``at``) and passes it to the
    template, whose dozen URLs then skip that lookup."""

    def __init__(self, build: Callable[..., str]) -> None:
        self._build = build
        self._roots: dict[str, Callable[..., str]] = {}

    def __call__(self, endpoint: str, **values: Any) -> str:
        context = request_context()
        if context is None:
            return self._build(endpoint, **values)
        return self.at(context.request.root_path)(endpoint, **values)

    def at(self, root_path: str) -> Callable[..., str]:
        """``url_for`` for requests under ``root_path``, only while one is handled."""
        bound = self._roots.get(root_path)
        if bound is None:
            if len(self._roots) >= ROOTS_REMEMBERED:
                self._roots.clear()
            bound = self._roots[root_path] = self._remembering()
        return bound

    def _remembering(self) -> Callable[..., str]:
        build = self._build
        cache: dict[Any, str] = {}

        def url_for(endpoint: str, **values: Any) -> str:
            if endpoint[:1] == ".":
                return build(endpoint, **values)
            key: Any = endpoint
            if values:
                for name in values:
                    if name[:1] == "_":
                        return build(endpoint, **values)
                # The arguments in the order given: the same URL asked for in another
                # order is remembered twice, which costs less than sorting them each time.
                key = (endpoint, *values.items())
            url = cache.get(key)
            if url is None:
                url = build(endpoint, **values)
                if len(cache) >= URL_CACHE_SIZE:
                    cache.clear()
                cache[key] = url
            return url

        return url_for


def url_for(endpoint: str, **values: Any) -> str:
    """The templates' url_for (``RememberedUrls``), for views."""
    build: Callable[..., str] = current_application().jinja_env.globals["url_for"]  # type: ignore[assignment]
    return build(endpoint, **values)


def init_app(app: Quart) -> None:
    # Each a filter a page's per-request values may go through (render_remembered).
    app.jinja_env.filters.update(
        clock=fillable(clock), timestamp=fillable(timestamp), ago=fillable(ago)
    )
    app.jinja_env.globals["url_for"] = RememberedUrls(app.url_for)
    # Shares the loader, filters and globals; compiles its own copies of the templates.
    environment = app.jinja_env.overlay(enable_async=False, cache_size=-1)
    compile_pages(environment)
    app.extensions[EXTENSION] = environment
    app.extensions[REMEMBERED] = RememberedPages(environment, urls=app.jinja_env.globals["url_for"])

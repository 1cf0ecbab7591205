"""Pages rendered once per shape and remembered, with each request's own values filled in.

A signed-in page such as ``/home`` is the same for every request but for a few values: the
user's email, the session's id and times, the seconds left, the CSRF token. The rest (the
layout, the navigation, which notice and which countdown phase shows) depends on a few
flags that take a handful of combinations. ``RememberedPages.render`` renders it once per
combination of those flags (its *shape*), with a stand-in (``Hole``) for each per-request
value, and remembers the text cut where the values go. Each later request with the same
shape joins the pieces with its own values, escaped as the template would have escaped
them: far less work than running the template.

Nothing about the template is listed by hand: the remembered rendering is the template's
own output, so an edit to a template shows in the next rendering (at the next start, as
every compiled template does; where templates reload when they change, every request is
rendered in full). What a per-request value may do in a template:

- be written (``{{ value }}``, autoescaped), also inside an attribute;
- have its attributes written (``{{ record.email }}``; but not one named ``through``,
  which is the stand-in's own method);
- go through a filter made with ``fillable`` (``{{ seconds | clock }}``);
- be tested for truth (``{% if value %}``): a value that is false (None, 0, "") is part
  of the shape, and so rendered in, not filled in.

Anything else (comparing it, iterating over it, passing it to another filter or to a
function) raises ``NotFillable`` while the page is rendered for remembering, and that
shape is then rendered in full on every request, with a warning in the log. The first
rendering of each shape is also checked against a full rendering of the same request;
a difference (a filter that turned the stand-in into other text, say) has the same
effect. So a template edit never makes a page wrong; at worst it makes it slower, which
``tests/test_remembered_pages.py`` would show for the pages that rely on this.

The values that make the shape must be hashable, and few: every combination is a
remembered rendering (at most ``CACHE_SIZE`` per app; past that all are forgotten at once
and remembered again as they are asked for). A shape value is told apart by its type too
(``1`` is not ``True``). Globals that read the request (Quart's ``request``, ``session``,
``g``, flashed messages) are unavailable in such a rendering and make it fall back in the
same way; ``url_for`` is bound to the request's script root, which is part of the shape,
and ``csrf_token()`` is always the request's token (``RememberedPages``' ``token``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import secrets
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, TypeVar

from jinja2 import Environment
from jinja2.defaults import DEFAULT_NAMESPACE

from quartapp.engine.markupsafe_escape import escape_output

logger = logging.getLogger(__name__)

# The most shapes remembered per app; more and all are forgotten at once.
CACHE_SIZE = 256
# Globals that read nothing of the request: usable in a remembered rendering.
REQUEST_FREE_GLOBALS = frozenset({*DEFAULT_NAMESPACE, "url_for", "config"})
# Where a value goes in a remembered rendering: a random mark, never in a real page.
_MARK = f"fill-{secrets.token_hex(12)}-"
_MARKS = re.compile(re.escape(_MARK) + r"(\d+)\.")

# A step from a value to what is written: a function and its further arguments
# (``getattr`` for an attribute, read as Jinja reads it where it is missing).
Step = tuple[Callable[..., Any], tuple[Any, ...]]
F = TypeVar("F", bound=Callable[..., Any])


class NotFillable(Exception):
    """A per-request value was used for more than being written into the page."""


class _Csrf:
    """The root of the CSRF token's stand-in: the request's token, not a context value."""


CSRF: Final = _Csrf()


class _Recording:
    """One rendering for remembering: what each mark written in it stands for."""

    def __init__(self) -> None:
        self.sources: list[tuple[str | _Csrf, tuple[Step, ...]]] = []

    def mark(self, root: str | _Csrf, steps: tuple[Step, ...]) -> str:
        self.sources.append((root, steps))
        return f"{_MARK}{len(self.sources) - 1}."


class Hole:
    """Stands in for a per-request value while a page is rendered for remembering."""

    __slots__ = ("_recording", "_root", "_steps")

    def __init__(self, recording: _Recording, root: str | _Csrf, steps: tuple[Step, ...]) -> None:
        self._recording = recording
        self._root = root
        self._steps = steps

    def __html__(self) -> str:
        """Written into the page: a mark, which each request replaces by its value."""
        return self._recording.mark(self._root, self._steps)

    def __getattr__(self, name: str) -> Hole:
        if name.startswith(("_", "jinja")):  # Python's and Jinja's own questions
            raise AttributeError(name)
        return self.through(getattr, name)

    def through(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Hole:
        """This value passed through ``function`` (with further arguments), when filled in."""
        if any(type(value) is Hole for value in (*args, *kwargs.values())):
            raise NotFillable(f"{function.__name__} given two per-request values")
        if kwargs:
            function = functools.partial(function, **kwargs)
        return Hole(self._recording, self._root, (*self._steps, (function, args)))

    def __bool__(self) -> bool:
        if self._steps:
            raise NotFillable(f"the truth of a per-request value's part ({self._describe()})")
        return True  # a false value is part of the shape, never a Hole

    def _describe(self) -> str:
        root = self._root if isinstance(self._root, str) else "csrf_token()"
        return f"{root}, after {len(self._steps)} steps"

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise NotFillable(f"a per-request value used for more than its text ({self._describe()})")

    __str__ = __format__ = __call__ = __iter__ = __len__ = __contains__ = _refuse
    __getitem__ = __int__ = __float__ = __index__ = __round__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _refuse
    __neg__ = __pos__ = __abs__ = _refuse
    __hash__ = object.__hash__


class _Unavailable:
    """A global that reads the request, in a rendering that is remembered for all."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotFillable(f"{self._name} read in a page remembered for every request")

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise NotFillable(f"{self._name} used in a page remembered for every request")

    __call__ = __iter__ = __bool__ = __getitem__ = __html__ = __str__ = _refuse


def fillable(function: F) -> F:
    """A filter that a per-request value may go through: applied when the value is filled
    in. For filters of one value that depend on nothing but their arguments.

    Every rendering calls the filter through this, so a filter of one or two positional
    parameters gets a wrapper of exactly that shape: one taking ``*args, **kwargs`` costs
    about four times as much per call on Python 3.11 (a /sessions page calls its filters
    fifteen times)."""
    parameters = list(inspect.signature(function).parameters.values())
    positional = all(
        parameter.kind is parameter.POSITIONAL_OR_KEYWORD and parameter.default is parameter.empty
        for parameter in parameters
    )
    through: Callable[..., Any]
    if positional and len(parameters) == 1:

        def through(value: Any) -> Any:
            if type(value) is Hole:
                return value.through(function)
            return function(value)

    elif positional and len(parameters) == 2:

        def through(value: Any, argument: Any) -> Any:
            if type(value) is Hole:
                return value.through(function, argument)
            return function(value, argument)

    else:

        def through(value: Any, *args: Any, **kwargs: Any) -> Any:
            if type(value) is Hole:
                return value.through(function, *args, **kwargs)
            return function(value, *args, **kwargs)

    return functools.update_wrapper(through, function)  # type: ignore[return-value]


class Skeleton:
    """A remembered rendering: its text, cut where the values go, and what each value is."""

    __slots__ = ("_environment", "_sources", "_texts", "_where")

    def __init__(self, html: str, recording: _Recording, environment: Environment) -> None:
        pieces = _MARKS.split(html)
        self._environment = environment
        self._texts = pieces[0::2]
        # Each value once (a page writes its CSRF token in every form), and where it goes.
        self._sources: list[tuple[str | _Csrf, tuple[Step, ...]]] = []
        self._where: list[int] = []
        known: dict[Any, int] = {}
        for index in pieces[1::2]:
            source = recording.sources[int(index)]
            try:
                position = known.setdefault(source, len(self._sources))
            except TypeError:  # a filter's argument that cannot be hashed
                position = len(self._sources)
            if position == len(self._sources):
                self._sources.append(source)
            self._where.append(position)

    def fill(self, values: Mapping[str, Any], token: Callable[[], str]) -> str:
        """The page, with ``values`` (and the request's CSRF token) written in."""
        written = []
        for root, steps in self._sources:
            value = token() if root is CSRF else values[root]  # type: ignore[index]
            try:
                for function, args in steps:
                    value = function(value, *args)
            except AttributeError:  # read as the template reads it: Jinja's Undefined
                value = self._slowly(root, steps, values)
            written.append(escape_output(value))
        texts = self._texts
        out = [texts[0]]
        for position, text in zip(self._where, texts[1:], strict=True):
            out.append(written[position])
            out.append(text)
        return "".join(out)

    def _slowly(self, root: str | _Csrf, steps: tuple[Step, ...], values: Mapping[str, Any]) -> Any:
        value = values[root]  # type: ignore[index]
        for function, args in steps:
            if function is getattr:
                value = self._environment.getattr(value, *args)
            else:
                value = function(value, *args)
        return value


def _shape(
    name: str, root_path: str, per_request: Collection[str], context: dict[str, Any]
) -> tuple[Any, ...]:
    """What picks a remembered rendering: the template, the script root and every value of
    ``context`` but those ``per_request``; a per-request value that is false (None, "") is
    written as it is, not filled in, so it is part of the shape too."""
    shape: tuple[Any, ...] = (name, root_path)
    if context:
        shape += tuple(
            [
                (key, type(value), value) if key not in per_request or not value else key
                for key, value in context.items()
            ]
        )
    return shape


def _no_token() -> str:
    raise NotFillable("csrf_token() without CSRF protection")


class RememberedPages:
    """An app's remembered renderings: shape -> its skeleton, or None where that shape is
    rendered in full."""

    def __init__(
        self,
        environment: Environment,
        token: Callable[[], str] | None = None,
        urls: Any = None,
    ) -> None:
        """``token``: the request's CSRF token; by default the environment's
        ``csrf_token`` global, as the templates call it. ``urls``: the templates'
        ``url_for``, whose ``at(root_path)`` gives the one for a script root
        (``templating.RememberedUrls``); a rendering uses it unless its context has one."""
        self.environment = environment
        self._urls = urls
        self._skeletons: dict[tuple[Any, ...], Skeleton | None] = {}
        self._token = token
        self._unhashable: set[str] = set()

    def shapes(self, name: str) -> list[bool]:
        """For each shape of ``name`` rendered so far: filled in (True) or rendered in full."""
        return [
            skeleton is not None for shape, skeleton in self._skeletons.items() if shape[0] == name
        ]

    def render(
        self, name: str, root_path: str, per_request: Collection[str], context: dict[str, Any]
    ) -> str:
        """The template ``name`` rendered with ``context``, from the skeleton of its shape:
        all of ``context`` but the values named in ``per_request`` (which are filled in),
        plus the script root its URLs are built under. Renders in full where templates
        reload when they change."""
        environment = self.environment
        if environment.auto_reload:
            return self._in_full(name, root_path, context)
        shape = _shape(name, root_path, per_request, context)
        skeletons = self._skeletons
        try:
            skeleton = skeletons[shape]
        except TypeError:
            if name not in self._unhashable:
                self._unhashable.add(name)
                logger.warning("%s: a value of its shape is not hashable; rendered in full", name)
            return self._in_full(name, root_path, context)
        except KeyError:
            if len(skeletons) >= CACHE_SIZE:
                skeletons.clear()
            whole = self._whole_context(root_path, context)
            html, skeleton = _remember(environment, name, per_request, whole)
            skeletons[shape] = skeleton
            return html
        if skeleton is None:
            return self._in_full(name, root_path, context)
        return skeleton.fill(context, self._token or self._csrf_token())

    def filled(
        self,
        name: str,
        root_path: str,
        per_request: Collection[str],
        context: dict[str, Any],
        token: Callable[[], str],
    ) -> str | None:
        """What ``render`` gives for the same arguments, with ``token`` for ``csrf_token()``,
        when a request handled before has remembered this shape; else None (a shape not yet
        rendered, or one rendered in full, or templates that reload). For an answer made
        outside Quart's request cycle, which cannot run a template that reads the request."""
        if self.environment.auto_reload:
            return None
        try:
            skeleton = self._skeletons.get(_shape(name, root_path, per_request, context))
        except TypeError:  # a value of the shape that cannot be hashed
            return None
        return skeleton.fill(context, token) if skeleton is not None else None

    def _csrf_token(self) -> Callable[[], str]:
        token = self._token
        if token is None:
            token = self._token = self.environment.globals.get("csrf_token", _no_token)  # type: ignore[assignment]
            assert token is not None
        return token

    def _whole_context(self, root_path: str, context: dict[str, Any]) -> dict[str, Any]:
        """What a full rendering sees: the request's CSRF token and ``url_for`` as well."""
        whole = {**context, "csrf_token": self._csrf_token()}
        if self._urls is not None and "url_for" not in context:
            whole["url_for"] = self._urls.at(root_path)
        return whole

    def _in_full(self, name: str, root_path: str, context: dict[str, Any]) -> str:
        whole = self._whole_context(root_path, context)
        return self.environment.get_template(name).render(whole)


def _remember(
    environment: Environment, name: str, per_request: Collection[str], context: dict[str, Any]
) -> tuple[str, Skeleton | None]:
    """This request's page, and the skeleton of its shape if it fills in to that page.
    ``context`` is the whole context, its CSRF token function included."""
    template = environment.get_template(name)
    html = template.render(context)
    token = context["csrf_token"]
    recording = _Recording()
    stand_ins: dict[str, Any] = {
        global_name: _Unavailable(global_name)
        for global_name in environment.globals
        if global_name not in REQUEST_FREE_GLOBALS
    }
    stand_ins.update(context)
    stand_ins["csrf_token"] = lambda: Hole(recording, CSRF, ())
    for key in per_request:
        if stand_ins.get(key):
            stand_ins[key] = Hole(recording, key, ())
    try:
        skeleton = Skeleton(template.render(stand_ins), recording, environment)
        filled = skeleton.fill(context, token)
    except Exception as error:  # whatever the template did with a value: rendered in full
        logger.warning("%s is rendered in full on every request of this shape: %s", name, error)
        return html, None
    if filled != html:
        logger.warning(
            "%s is rendered in full on every request of this shape: its remembered"
            " rendering, filled in, differs from the page (a value went through a filter"
            " that is not fillable?)",
            name,
        )
        return html, None
    return html, skeleton

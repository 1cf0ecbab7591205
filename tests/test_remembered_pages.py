"""Pages rendered once per shape, with each request's values filled in
(``web.remembered_pages``), are byte for byte what Jinja renders; what a template does
with a per-request value beyond writing it makes that shape render in full, still right."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import DictLoader, Environment
from jinja2.compiler import CodeGenerator
from markupsafe import Markup
from quart import Quart
from quart.testing import QuartClient

from quartapp import create_app
from quartapp.accounts.queries import find_user, mark_email_verified
from quartapp.blueprints.home import PER_REQUEST, PHASES, countdown_context
from quartapp.engine.jinja_pages import ESCAPE_OUTPUT
from quartapp.sessions.store import WHY_ENDED, SessionRecord
from quartapp.web.remembered_pages import RememberedPages
from quartapp.web.templating import REMEMBERED, templates

from .conftest import DATABASE_URL, Auth
from .conftest import test_config as settings_of
from .support.http import COUNTDOWN_HEADERS

HOME = "home/home.html"
COUNTDOWN = "home/_countdown.html"
# Text that HTML escaping changes, and text it does not.
UNSAFE = st.text(alphabet=st.sampled_from("<>&\"'a1 @.é\u2028"), min_size=1, max_size=12)
TEXT = st.one_of(UNSAFE, st.text(min_size=1, max_size=30))


@pytest.fixture(scope="module")
def pages() -> Environment:
    """The app's page environment (its compiler, filters and templates); nothing served."""
    return templates(create_app(settings_of(DATABASE_URL, "quartapp-test:unused:")))


def plain_jinja(environment: Environment) -> Environment:
    """The same templates compiled and rendered by Jinja's own code alone."""
    plain = environment.overlay()
    plain.code_generator_class = CodeGenerator
    plain.template_class = jinja2.Template
    delattr(plain, ESCAPE_OUTPUT)
    return plain


def fake_url_for(endpoint: str, **values: Any) -> str:
    query = "&".join(f"{name}={value}" for name, value in values.items())
    return f"/{endpoint.replace('.', '/')}" + (f"?{query}" if query else "")


class Tokens:
    """A CSRF token per request, as CsrfProtection.token gives: the same all through it."""

    def __init__(self) -> None:
        self.current = ""

    def __call__(self) -> str:
        return self.current


@st.composite
def home_contexts(draw: st.DrawFn) -> dict[str, Any]:
    """What the /home view passes its template, for any session and page state."""
    read_at = draw(st.integers(1_600_000_000_000, 2_000_000_000_000))
    expires_at = read_at + draw(st.integers(-5_000, 900_000))
    record = SessionRecord(
        key_id=draw(TEXT),
        tag="t",
        user_id=1,
        email=draw(TEXT),
        created_at=read_at - draw(st.integers(0, 10**8)),
        absolute_deadline=expires_at + draw(st.sampled_from([0, 1, 60_000, 10**7])),
        expires_at=expires_at,
        read_at=read_at,
    )
    shown = draw(st.sampled_from([None, "", *PHASES]))
    widget = countdown_context(
        record,
        warning_at=draw(st.sampled_from([60, 600])),
        shown=shown,
        extending=draw(st.booleans()),
        ended=draw(st.sampled_from([None, *WHY_ENDED])),
    )
    sent = draw(
        st.sampled_from([None, "We sent a new link.", "Your email address is verified. Thank you."])
    )
    return {"record": record, "verified": draw(st.booleans()), "sent": sent, **widget}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(home_contexts(), UNSAFE), min_size=1, max_size=6))
def test_home_filled_in_is_what_jinja_renders(
    pages: Environment, requests: list[tuple[dict[str, Any], str]]
) -> None:
    """Every shape of /home and of the countdown (verified or not, each notice, each
    countdown phase, whether the page asked for updates), with values that need escaping,
    is the page Jinja's own compiler renders; and each shape is filled in, none rendered
    in full."""
    tokens = Tokens()
    remembered = RememberedPages(pages, token=tokens)
    plain = plain_jinja(pages)
    for context, token in requests:
        tokens.current = token
        # The page, and the countdown alone (the poll's answer), without the page's own.
        widget = {k: v for k, v in context.items() if k not in ("record", "verified", "sent")}
        for name, values in ((HOME, context), (COUNTDOWN, widget)):
            expected = plain.get_template(name).render(
                values, url_for=fake_url_for, csrf_token=tokens
            )
            got = remembered.render(name, "", PER_REQUEST, {**values, "url_for": fake_url_for})
            assert got == expected
    assert all(remembered.shapes(HOME))
    assert all(remembered.shapes(COUNTDOWN))


def test_a_shape_is_rendered_once_and_filled_in_after(pages: Environment) -> None:
    environment = pages.overlay(loader=DictLoader({"p.html": "{{ a }}|{{ b }}"}))
    remembered = RememberedPages(environment, token=Tokens())
    rendered: list[str] = []
    original = jinja2.Template.render

    def counting(template: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        rendered.append(str(template.name))
        return original(template, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jinja2.Template, "render", counting)
        assert remembered.render("p.html", "", {"b"}, {"a": "x", "b": "<1>"}) == "x|&lt;1&gt;"
        assert remembered.render("p.html", "", {"b"}, {"a": "x", "b": "2"}) == "x|2"
        assert remembered.render("p.html", "", {"b"}, {"a": "x", "b": Markup("<i>")}) == "x|<i>"
        # Once for the page, once with stand-ins; then no more for this shape.
        assert rendered == ["p.html", "p.html"]
        # Another shape value, or a false per-request value, is another shape.
        assert remembered.render("p.html", "", {"b"}, {"a": 1, "b": "3"}) == "1|3"
        assert remembered.render("p.html", "", {"b"}, {"a": True, "b": "3"}) == "True|3"
        assert remembered.render("p.html", "", {"b"}, {"a": "x", "b": None}) == "x|None"
        assert remembered.render("p.html", "", {"b"}, {"a": "x", "b": 0}) == "x|0"
        assert remembered.render("p.html", "", {"b"}, {"a": "x", "b": ""}) == "x|"
        assert remembered.render("p.html", "/root", {"b"}, {"a": "x", "b": "4"}) == "x|4"
    assert remembered.shapes("p.html") == [True] * 7


def test_filled_gives_only_what_a_rendering_remembered(
    probes: tuple[RememberedPages, Environment, Tokens],
) -> None:
    """``filled`` (for answers made outside Quart) never renders: None until ``render``
    has remembered the shape, and for a shape rendered in full."""
    remembered, _, _ = probes

    def token() -> str:
        return "<given>"

    context = {"v": "<x>"}
    assert remembered.filled("token.html", "", {"v"}, dict(context), token) is None
    remembered.render("token.html", "", {"v"}, dict(context))
    filled = remembered.filled("token.html", "", {"v"}, {"v": "y"}, token)
    assert filled == "&lt;given&gt;<i>&lt;given&gt;</i>y"
    assert remembered.filled("token.html", "/root", {"v"}, {"v": "y"}, token) is None
    remembered.render("compare.html", "", {"v"}, {"v": 5})
    assert remembered.shapes("compare.html") == [False]
    assert remembered.filled("compare.html", "", {"v"}, {"v": 5}, token) is None
    assert remembered.filled("iterate.html", "", set(), {"v": ["a"]}, token) is None


TEMPLATES = {
    # Filled in: written, attributes, fillable filters, tests of truth.
    "attributes.html": "<b title='{{ r.email }}'>{{ r.email }}</b>{{ r.missing }}{{ n | clock }}",
    "truth.html": "{% if v %}[{{ v }}]{% else %}none{% endif %}{{ v or 'x' }}{{ v | e }}",
    "token.html": "{{ csrf_token() }}<i>{{ csrf_token() }}</i>{{ v }}",
    # Rendered in full: the value is compared, iterated, joined, or goes through a filter
    # that is not fillable, or the page reads the request.
    "compare.html": "{% if v > 3 %}big{% endif %}{{ v }}",
    "iterate.html": "{% for x in v %}{{ x }}{% endfor %}",
    "filter.html": "{{ v | upper }}",
    "joined.html": "{{ v ~ '!' }}{{ [v, 1] | join(',') }}",
    "part_truth.html": "{% if r.email %}{{ r.email }}{% endif %}",
    "length.html": "{{ v | length }}",
    "request.html": "{{ v }}{{ request.path }}",
    "autoescape_off.html": "{% autoescape false %}{{ v }}{% endautoescape %}",
}


class Record:
    def __init__(self, email: str) -> None:
        self.email = email


@pytest.fixture
def probes(pages: Environment) -> tuple[RememberedPages, Environment, Tokens]:
    tokens = Tokens()
    environment = pages.overlay(loader=DictLoader(TEMPLATES))
    return RememberedPages(environment, token=tokens), plain_jinja(environment), tokens


@pytest.mark.parametrize(
    ("name", "values", "filled"),
    [
        ("attributes.html", [{"r": Record("<a&b>"), "n": 75}, {"r": Record("'c'"), "n": 5}], True),
        ("truth.html", [{"v": "<x>"}, {"v": "y"}, {"v": ""}, {"v": None}], True),
        ("token.html", [{"v": "a"}, {"v": "b"}], True),
        ("compare.html", [{"v": 5}, {"v": 2}], False),
        ("iterate.html", [{"v": ["<", ">"]}, {"v": ["a"]}], False),
        ("filter.html", [{"v": "ab"}, {"v": "<c>"}], False),
        ("joined.html", [{"v": "<a>"}, {"v": "b"}], False),
        ("part_truth.html", [{"r": Record("a")}, {"r": Record("")}], False),
        ("length.html", [{"v": "abc"}, {"v": "<"}], False),
        ("autoescape_off.html", [{"v": "<a>"}, {"v": "b"}], False),
    ],
)
def test_what_a_template_does_with_a_value_decides_if_it_is_filled_in(
    probes: tuple[RememberedPages, Environment, Tokens],
    name: str,
    values: list[dict[str, Any]],
    filled: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    remembered, plain, tokens = probes
    for number, context in enumerate(values * 2):
        tokens.current = f"token-{number}-<&>"
        expected = plain.get_template(name).render(context, csrf_token=tokens)
        assert remembered.render(name, "", set(context), dict(context)) == expected
    shapes = remembered.shapes(name)
    if filled:
        assert all(shapes)
    else:
        assert False in shapes
        assert "is rendered in full on every request of this shape" in caplog.text


async def test_a_page_that_reads_the_request_is_rendered_in_full(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    environment = templates(app).overlay(loader=DictLoader(TEMPLATES))
    remembered = RememberedPages(environment, token=lambda: "t")
    for path in ("/a", "/b"):
        async with app.test_request_context(path):
            page = remembered.render("request.html", "", {"v"}, {"v": "<v>"})
            assert page == f"&lt;v&gt;{path}"
    assert remembered.shapes("request.html") == [False]
    assert "request read in a page remembered for every request" in caplog.text


def test_a_shape_that_cannot_be_hashed_is_rendered_in_full(
    probes: tuple[RememberedPages, Environment, Tokens], caplog: pytest.LogCaptureFixture
) -> None:
    remembered, _, _ = probes
    context = {"v": ["a", "<b>"]}
    assert remembered.render("iterate.html", "", set(), dict(context)) == "a&lt;b&gt;"
    assert remembered.render("iterate.html", "", set(), dict(context)) == "a&lt;b&gt;"
    assert remembered.shapes("iterate.html") == []
    assert caplog.text.count("not hashable") == 1


@pytest.fixture
def spied(app: Quart, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pages rendered from a remembered shape, each checked against a full rendering
    of the same context: in its own request, or, for those the front door fills in outside
    Quart, with the same token and URLs built under no script root."""
    names: list[str] = []
    render = RememberedPages.render
    filled = RememberedPages.filled
    environment = templates(app)
    urls = app.url_map.bind("localhost")

    def checked(self: RememberedPages, name: str, *args: Any) -> str:
        page = render(self, name, *args)
        context = args[-1]
        assert page == environment.get_template(name).render(context), name
        names.append(name)
        return page

    def checked_filled(
        self: RememberedPages, name: str, root_path: str, per_request: Any, context: Any, token: Any
    ) -> str | None:
        signed: list[str] = []

        def once() -> str:  # signed to the second: the same one for the full rendering
            if not signed:
                signed.append(token())
            return signed[0]

        page = filled(self, name, root_path, per_request, context, once)
        if page is not None:
            whole = {
                **context,
                "csrf_token": once,
                "url_for": lambda endpoint, **values: urls.build(endpoint, values),
            }
            assert page == environment.get_template(name).render(whole), name
            names.append(name)
        return page

    monkeypatch.setattr(RememberedPages, "render", checked)
    monkeypatch.setattr(RememberedPages, "filled", checked_filled)
    return names


async def test_home_is_served_filled_in_for_every_notice_and_user(
    app: Quart, client: QuartClient, auth: Auth, spied: list[str]
) -> None:
    await auth.sign_up("o'hara&co@example.com")
    for path in ("/home", "/home", "/home?sent=1", "/home?verified=1", "/home?sent=1"):
        response = await client.get(path)
        assert response.status_code == 200
        assert "o&#39;hara&amp;co@example.com" in await response.get_data(as_text=True)
    boosted = await client.get("/home", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert boosted.status_code == 200
    user = await find_user("o'hara&co@example.com")
    assert user is not None
    await mark_email_verified(user.id, user.email)
    verified = Auth(app.test_client())
    await verified.sign_in("o'hara&co@example.com")
    for _ in range(2):
        page = await verified.client.get("/home")
        assert "send the link again" not in await page.get_data(as_text=True)
    remembered: RememberedPages = app.extensions[REMEMBERED]
    assert spied.count(HOME) == 8
    # Unverified: no flag, sent, verified; the boosted page; verified.
    assert remembered.shapes(HOME) == [True] * 5


async def test_the_countdown_poll_is_served_filled_in(
    app: Quart, client: QuartClient, auth: Auth, spied: list[str]
) -> None:
    await auth.sign_up()
    for _ in range(3):
        poll = await client.get("/session/countdown", headers=COUNTDOWN_HEADERS)
        assert poll.status_code == 200
        assert 'data-phase="live"' in await poll.get_data(as_text=True)
    remembered: RememberedPages = app.extensions[REMEMBERED]
    assert spied.count(COUNTDOWN) == 3
    assert remembered.shapes(COUNTDOWN) == [True]

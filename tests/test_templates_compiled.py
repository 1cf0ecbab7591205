"""The pages' templates compiled with their includes in place (web.templating.PageCompiler)
render exactly what Jinja's own includes render: every render while the app is used is
rendered again, in the same request, by the same templates compiled the plain way."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader
from markupsafe import Markup, escape
from quart import Quart
from quart.testing import QuartClient

from quartapp.engine.jinja_pages import ESCAPE_OUTPUT, PageTemplate, ReloadingPageCompiler
from quartapp.engine.markupsafe_escape import escape_output
from quartapp.web.templating import RememberedUrls, render_once, render_template, templates

from .conftest import Auth

HTMX = {"HX-Request": "true"}


@pytest.fixture
def rendered(app: Quart, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates rendered and found equal to their plain compilation."""
    pages = templates(app)
    plain = pages.overlay()
    plain.code_generator_class = ReloadingPageCompiler  # includes stay includes
    plain.template_class = jinja2.Template  # and each render's names gathered as Jinja does
    delattr(plain, ESCAPE_OUTPUT)  # and values escaped by Jinja's own escape
    render = jinja2.Template.render
    names: list[str] = []

    def compare(template: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        html = render(template, *args, **kwargs)
        if template.environment is pages and template.name is not None:
            expected = render(plain.get_template(template.name), *args, **kwargs)
            assert html == expected, template.name
            names.append(template.name)
        return html

    monkeypatch.setattr(jinja2.Template, "render", compare)
    return names


async def test_every_page_renders_as_with_jinja_s_includes(
    app: Quart, client: QuartClient, auth: Auth, rendered: list[str]
) -> None:
    for path in ("/", "/register", "/password/forgot", "/no-such-page"):
        await client.get(path)
        await client.get(path, headers=HTMX)
    await auth.sign_up()
    await Auth(app.test_client()).sign_in()  # a second session, for the sessions list
    for path in ("/home", "/sessions", "/account/password", "/account/email", "/account/delete"):
        assert (await client.get(path)).status_code == 200, path
        await client.get(path, headers=HTMX)
    await client.get("/session/countdown", headers={**HTMX, "X-Countdown-Shown": "warning"})
    await client.get("/logout")
    refused = await auth.post("/account/password", {"current_password": "x", "new_password": "y"})
    assert refused.status_code in (400, 401, 403, 422)
    await auth.post("/logout")
    for name in (
        "home/home.html",
        "account/sessions.html",
        "account/password.html",
        "auth/sign_in.html",
        "auth/sign_up.html",
        "home/_countdown.html",
    ):
        assert name in rendered, name


def test_a_template_with_blocks_is_included_as_jinja_includes_it(app: Quart) -> None:
    environment = templates(app).overlay(
        loader=jinja2.DictLoader(
            {
                "page.html": "<p>{% set a = 1 %}{% include 'part.html' %}{{ a }}</p>",
                "part.html": "{% set a = 2 %}{{ a }}{% include 'blocks.html' %}",
                "blocks.html": "{% block b %}[{{ a }}]{% endblock %}",
                "loop.html": "{% include 'loop.html' ignore missing %}",
            }
        )
    )
    # The included template's own ``a`` stays its own; a template with a block is not
    # compiled in place (and still renders); a template including itself is left alone.
    assert environment.get_template("page.html").render() == "<p>2[2]1</p>"
    source = environment.compile(
        environment.loader.get_source(environment, "page.html")[0], raw=True
    )  # type: ignore[union-attr]
    assert "blocks.html" in source
    assert "part.html" not in source


@pytest.mark.parametrize("template_class", [jinja2.Template, PageTemplate])
def test_a_render_sees_its_values_over_its_template_s_globals_over_the_environment_s(
    template_class: type[jinja2.Template],
) -> None:
    environment = jinja2.Environment(autoescape=True)
    environment.template_class = template_class
    environment.globals.update(a="environment", b="environment", c="environment")
    template = environment.from_string(
        "{{ a }} {{ b }} {{ c }} {{ d }}", globals={"a": "template", "b": "template"}
    )
    assert template.render(b="value", d="value") == "template value environment value"
    environment.globals["c"] = "changed"  # the environment's globals are read at each render
    assert template.render() == "template template changed "


class Html:
    def __init__(self, html: str) -> None:
        self.html = html

    def __html__(self) -> str:
        return self.html


@given(
    st.one_of(
        st.text(),
        st.text().map(Markup),
        st.text().map(Html),
        st.integers(),
        st.floats(allow_nan=False),
        st.none(),
        st.booleans(),
    )
)
def test_a_value_is_written_as_markupsafe_escapes_it(value: object) -> None:
    assert escape_output(value) == str(escape(value))
    assert isinstance(escape_output(value), str)


async def test_urls_are_remembered_per_script_root(app: Quart) -> None:
    urls = templates(app).globals["url_for"]
    assert isinstance(urls, RememberedUrls)
    for root in ("", "/prefix", ""):
        async with app.test_request_context("/home", root_path=root):
            bound = urls.at(root)
            assert urls("home.home") == bound("home.home") == app.url_for("home.home")
            assert app.url_for("home.home") == f"{root}/home"
            css = bound("static", filename="app.css")
            assert css == app.url_for("static", filename="app.css")
            assert css.startswith(f"{root}/static/")
            # Options are built each time, as Quart builds them.
            assert bound("home.home", _external=True) == app.url_for("home.home", _external=True)


async def test_a_render_without_arguments_is_rendered_anew_and_once_only_when_asked(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``render_template(name)`` renders on every call, whatever its arguments; only
    ``render_once`` remembers a page, and still fills in each request's CSRF token."""
    pages = templates(app)
    probe = DictLoader(
        {
            "probe.html": "{{ config.MOTTO }}",
            "probe_form.html": "{{ config.MOTTO }}|{{ csrf_token() }}",
        }
    )
    monkeypatch.setattr(pages, "loader", ChoiceLoader([probe, pages.loader]))
    monkeypatch.setitem(app.config, "MOTTO", "first")
    async with app.test_request_context("/"):
        assert await render_template("probe.html") == "first"
        first_form = await render_once("probe_form.html")
    monkeypatch.setitem(app.config, "MOTTO", "second")
    async with app.test_request_context("/"):
        assert await render_template("probe.html") == "second"
        again = await render_once("probe_form.html")
    motto, _, token = first_form.partition("|")
    assert motto == "first"
    assert token
    motto, _, other_token = again.partition("|")
    assert motto == "first"  # remembered, as asked
    assert other_token
    assert other_token != token

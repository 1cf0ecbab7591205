"""An error page (a 404, a 405, a 500, a 403) shows a signed-in visitor the navigation of
the signed-in pages and the way back home, as every other page does; a visitor who is not
signed in gets the page without it, and the way to the start page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp.web.access import public

from .conftest import Auth

NAVIGATION = '<ul id="account-nav">'
SIGN_OUT = 'action="/logout"'
BACK_HOME = '<a href="/home">Back home</a>'
START_PAGE = '<a href="/">Go to the start page</a>'


@pytest.fixture
async def failing_app(make_app: Callable[..., Any]) -> Quart:
    """The app with one more route, which fails as a mistake in a view would."""
    app: Quart = await make_app()

    @public
    async def fail() -> str:
        raise RuntimeError("a mistake")

    app.add_url_rule("/test-only/fail", view_func=fail)
    return app


async def error_pages(client: QuartClient) -> dict[int, str]:
    """Each error's page, by its status."""
    pages = {}
    for method, path, status in (
        ("GET", "/no-such-page", 404),
        ("GET", "/email/verify/resend", 405),  # a POST-only route
        ("GET", "/test-only/fail", 500),
        ("POST", "/password/forgot", 403),  # no CSRF token
    ):
        response = await client.open(path, method=method, headers={"Accept": "text/html"})
        assert response.status_code == status, path
        pages[status] = await response.get_data(as_text=True)
    return pages


async def test_a_signed_in_visitor_s_error_pages_have_the_navigation(failing_app: Quart) -> None:
    client = failing_app.test_client()
    assert (await Auth(client).sign_up()).status_code == 303
    for status, html in (await error_pages(client)).items():
        assert html.count(NAVIGATION) == 1, status
        assert SIGN_OUT in html, status
        assert BACK_HOME in html, status
        assert START_PAGE not in html, status
        assert 'aria-current="' not in html, status  # no part of the site is the page


async def test_a_signed_out_visitor_s_error_pages_have_none(failing_app: Quart) -> None:
    for client in (failing_app.test_client(), await signed_out_client(failing_app)):
        for status, html in (await error_pages(client)).items():
            assert NAVIGATION not in html, status
            assert SIGN_OUT not in html, status
            assert START_PAGE in html, status
            assert BACK_HOME not in html, status


async def signed_out_client(app: Quart) -> QuartClient:
    """A client whose session was signed out (its browser dropped the cookie)."""
    client = app.test_client()
    auth = Auth(client)
    assert (await auth.sign_up("grace@example.com")).status_code == 303
    assert (await auth.post("/logout")).status_code == 303
    return client

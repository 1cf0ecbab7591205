"""Back to where you were going, in a real browser: a signed-out visit to /sessions (where
every security mail links) signs in and lands on /sessions, through a wrong password first,
with JavaScript (htmx posts the form) and without it (a plain form post)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .conftest import Account, Browse, Server
from .pages import fill_credentials, path_of

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
def test_a_signed_out_visit_lands_on_its_page_after_sign_in(
    browse: Browse, server: Server, make_account: Callable[..., Account], javascript: bool
) -> None:
    account = make_account(server)
    page = browse(server, javascript=javascript)
    page.goto("/sessions")
    assert path_of(page) == "/"
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    fill_credentials(page, account.email, "not the password at all")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("Incorrect email or password.")).to_be_visible()

    fill_credentials(page, account.email, account.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: url.split("?")[0].endswith("/sessions"))  # not /?next=
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
    assert path_of(page) == "/sessions"


def test_a_link_to_another_site_lands_on_home(
    browse: Browse, server: Server, make_account: Callable[..., Account]
) -> None:
    account = make_account(server)
    page = browse(server)
    page.goto("/?next=/%5Cevil.example/")
    fill_credentials(page, account.email, account.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/home")
    assert page.url.startswith(server.base_url)

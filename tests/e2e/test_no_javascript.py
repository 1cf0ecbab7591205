"""Everything works with JavaScript off: plain forms, full pages and 303 redirects."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, expect

from .conftest import Account, Browse, Server
from .pages import assert_signed_out, clock, fill_credentials, path_of, seconds

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]


def answer_to(method: str, path: str) -> Callable[[Response], bool]:
    return lambda r: r.request.method == method and r.url.endswith(path)


def submit(page: Page, button: str, path: str, lands_on: str) -> Response:
    """Click a form's button, wait for the page at ``lands_on`` and return the server's
    first answer to the POST."""
    with page.expect_response(answer_to("POST", path)) as answered:
        page.get_by_role("button", name=button).click()
    page.wait_for_url(f"**{lands_on}")
    return answered.value


def expect_home(page: Page, email: str) -> None:
    """/home without JavaScript: no clock that would stand still, but the time the session
    ends, which stays true, and a word that the page does not count down."""
    assert path_of(page) == "/home"
    expect(page.locator("h1 .email")).to_have_text(email)
    expect(clock(page)).to_be_hidden()
    assert 590 <= seconds(clock(page).text_content() or "") <= 600
    ends = page.locator("#countdown-clock .ends-at")
    expect(ends).to_be_visible()
    expect(page.locator("#countdown-clock .no-script")).to_have_text(
        "This page does not update by itself. Using the app moves the end later."
    )
    until = ends.locator("time")
    expect(until).to_have_text(re.compile(r"^\d\d:\d\d UTC$"))
    moment = datetime.fromisoformat(until.get_attribute("datetime") or "")
    left = (moment - datetime.now(UTC)).total_seconds()
    assert 580 <= left <= 601, f"the session ends in {left} s, says the page"
    assert until.inner_text() == moment.strftime("%H:%M UTC")


def test_sign_up_in_and_out_without_javascript(
    browse: Browse, server: Server, fresh_email: Callable[..., str], screenshot: Screenshot
) -> None:
    page = browse(server, javascript=False)
    account = Account(fresh_email("nojs"))

    # A bad password: the whole page comes back with the error, the email kept.
    page.goto("/register")
    fill_credentials(page, account.email, "short")
    answer = submit(page, "Create account", "/register", "/register")
    assert answer.status == 422
    assert answer.request.headers.get("hx-request") is None
    assert path_of(page) == "/register", "a reload would post the form again"
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    expect(page.locator("#password-error.field-error")).to_have_text("Use at least 8 characters.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_have_value(account.email)
    screenshot(page, "sign-up-error")

    # Correct it: a 303 to /home, which shows the time left (without polling it).
    page.get_by_label("Password").fill(account.password)
    answer = submit(page, "Create account", "/register", "/home")
    assert answer.status == 303
    assert answer.headers["location"] == "/home"
    expect_home(page, account.email)
    screenshot(page, "home-after-sign-up")

    # Sign out with the form in the header: POST /logout, 303 to /, which says so.
    answer = submit(page, "Sign out", "/logout", "/?signed_out=1")
    assert answer.status == 303
    assert answer.headers["location"] == "/?signed_out=1"
    assert path_of(page) == "/"
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    screenshot(page, "signed-out")

    # A wrong password is a full page with the message, then the right one signs in.
    fill_credentials(page, account.email, "wrong password")
    with page.expect_response(answer_to("POST", "/")) as answered:
        page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()
    answer = answered.value
    assert answer.status == 401
    assert path_of(page) == "/", "a reload would post the form again"
    expect(page.get_by_text("You are signed out.")).to_have_count(0)
    expect(page.locator(".form-error")).to_have_text("Incorrect email or password.")
    expect(page.get_by_label("Email")).to_have_value(account.email)
    screenshot(page, "sign-in-error")
    page.get_by_label("Password").fill(account.password)
    answer = submit(page, "Sign in", "/", "/home")
    assert answer.status == 303
    expect_home(page, account.email)

    # GET /logout asks first, with one button.
    page.goto("/logout")
    expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()
    expect(page.get_by_role("button")).to_have_count(1)
    screenshot(page, "sign-out-confirm")
    answer = submit(page, "Sign out", "/logout", "/?signed_out=1")
    assert answer.status == 303
    assert path_of(page) == "/"
    assert_signed_out(page, "a signed-out browser still sees /home")

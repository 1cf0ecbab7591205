"""Signing up, in and out in a real browser, the way htmx drives the forms."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from .conftest import Account, Browse, Server
from .pages import (
    assert_signed_out,
    clock,
    fill_credentials,
    open_signed_in,
    path_of,
    seconds,
    wait_until_signed_out,
)

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]


def is_post(path: str) -> Callable[[Request], bool]:
    return lambda request: request.method == "POST" and request.url.endswith(path)


def mark_document(page: Page) -> None:
    """Tag this document; a navigation would load a new one without the tag."""
    page.evaluate("() => { window.__e2eSameDocument = true; }")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("() => window.__e2eSameDocument === true"))


def test_sign_up_with_htmx_lands_on_home(
    browse: Browse, server: Server, fresh_email: Callable[..., str], screenshot: Screenshot
) -> None:
    page = browse(server)
    page.goto("/register")
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    email = fresh_email("signup")
    fill_credentials(page, email, Account(email).password)
    screenshot(page, "sign-up-filled")

    with page.expect_request(is_post("/api/v1/signup")) as posted:
        page.get_by_role("button", name="Create account").click()
    request = posted.value
    assert request.headers.get("hx-request") == "true", "the form was not sent by htmx"
    response = request.response()
    assert response is not None
    assert response.status == 204
    assert response.headers.get("hx-redirect") == "/home"

    page.wait_for_url("**/home")
    expect(page.locator("h1 .email")).to_have_text(email)
    public_id = page.locator(".session-facts code").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", public_id), public_id
    expect(clock(page)).to_have_text(re.compile(r"^\d+:\d{2}$"))
    assert 590 <= seconds(clock(page).inner_text()) <= 600
    screenshot(page, "home")

    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session = cookies["quartapp_session"]
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    assert public_id not in session["value"], "the page shows part of the session token"


def test_typing_a_password_judges_it_live_without_console_errors(
    browse: Browse, server: Server, screenshot: Screenshot
) -> None:
    """The strength hint's request goes from the password field, which must not inherit the
    form's hx-disabled-elt (htmx would log that "find button" matches nothing there). Any
    console error fails the test (see PageMonitor)."""
    page = browse(server)
    page.goto("/register")
    page.get_by_label("Email").fill("ada@example.com")
    password = page.get_by_label("Password")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/password-strength")):
        password.press_sequentially("password1", delay=20)
    expect(page.locator("#password-strength")).to_contain_text("Strength:")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/password-strength")):
        password.press_sequentially(" with a long tail of words", delay=20)
    expect(page.locator("#password-strength .strength-ok")).to_be_visible()
    expect(page.get_by_role("button", name="Create account")).to_be_enabled()
    page.wait_for_timeout(300)  # console messages may arrive just after the swap
    screenshot(page, "strength")


def test_sign_up_errors_show_inline_without_navigation(
    browse: Browse, server: Server, fresh_email: Callable[..., str], screenshot: Screenshot
) -> None:
    page = browse(server)
    page.goto("/register")
    mark_document(page)
    email = fresh_email("inline")

    fill_credentials(page, email, "short")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/signup")) as answered:
        page.get_by_role("button", name="Create account").click()
    assert answered.value.status == 422
    assert "<html" not in answered.value.text(), "htmx got a whole page, not the form"
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error.field-error")).to_have_text("Use at least 8 characters.")
    expect(password).to_have_attribute("aria-describedby", "password-error password-strength")
    expect(page.get_by_label("Email")).to_have_value(email)
    expect(page.get_by_label("Email")).not_to_have_attribute("aria-invalid", "true")
    assert path_of(page) == "/register"
    assert same_document(page), "the page navigated instead of swapping the form"
    screenshot(page, "short-password")

    # The swapped-in form works too: htmx processed it and its CSRF token is good.
    fill_credentials(page, "not-an-email", "long enough password")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/signup")) as answered:
        page.get_by_role("button", name="Create account").click()
    assert answered.value.status == 422
    expect(page.locator("#email-error.field-error")).to_contain_text(
        "This is not a valid email address"
    )
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_have_value("not-an-email")
    expect(page.locator("#password-error")).to_have_count(0)
    assert path_of(page) == "/register"
    assert same_document(page), "the page navigated instead of swapping the form"
    screenshot(page, "invalid-email")


def test_sign_in_with_a_wrong_password_shows_inline_error(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(server)
    page = browse(server)
    page.goto("/")
    mark_document(page)
    fill_credentials(page, account.email, "not the password")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/signin")) as answered:
        page.get_by_role("button", name="Sign in", exact=True).click()
    assert answered.value.status == 401
    expect(page.locator("#sign-in-form .form-error")).to_have_text("Incorrect email or password.")
    expect(page.get_by_role("alert").filter(has_text="Incorrect")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(account.email)
    expect(page.get_by_label("Password")).to_have_value("")
    assert path_of(page) == "/"
    assert same_document(page)
    screenshot(page, "wrong-password")

    # Correcting the password in the swapped form signs in.
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/home")
    expect(page.locator("h1 .email")).to_have_text(account.email)


def test_sign_out_ends_the_session(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = open_signed_in(browse, server, make_account(server))
    screenshot(page, "home")
    session_cookie = next(c for c in page.context.cookies() if c["name"] == "quartapp_session")

    with page.expect_request(is_post("/logout")) as posted:
        page.get_by_role("button", name="Sign out").click()
    assert posted.value.headers.get("hx-request") == "true"
    wait_until_signed_out(page, server)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "quartapp_session"]
    screenshot(page, "signed-out")

    # Back does not show the signed-in page from a cache: it asks again, and is sent away.
    page.go_back()
    page.wait_for_url(server.url("/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.locator(".email").count() == 0

    assert_signed_out(page, "a signed-out browser still sees /home")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # A copy of the old cookie is dead too: the session is gone on the server.
    copy = browse(server)
    copy.context.add_cookies([session_cookie])  # type: ignore[list-item]
    assert_signed_out(copy, "the signed-out session's cookie still opens /home")


def test_sign_out_when_the_session_already_ended_goes_to_sign_in(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = open_signed_in(browse, server, make_account(server))
    # The confirmation page does not poll, so its form outlives the session.
    page.goto("/logout")
    other_tab = page.context.new_page()
    other_tab.goto("/home")
    other_tab.get_by_role("button", name="Sign out").click()
    wait_until_signed_out(other_tab, server)
    other_tab.close()

    with page.expect_response(lambda r: r.url.endswith("/logout")) as answered:
        page.get_by_role("button", name="Sign out").click()
    screenshot(page, "after-sign-out")
    assert answered.value.status != 403, (
        f"Sign out answered 403: {page.locator('#alerts').inner_text()!r}"
    )
    page.wait_for_url(server.url("/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

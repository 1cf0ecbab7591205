"""The second factor in a real browser: turning it on (the QR code as an inline SVG under
the unchanged Content Security Policy, the secret as text, the recovery codes with Copy and
Download), and signing in with a code typed at the keyboard, with and without JavaScript,
at a phone's width (390 px) and a desktop's. axe (WCAG 2.2 AA) checks every page on the
way; the browse fixture fails any test that caused a CSP report or a page error.

The app runs in its own process on the real clock: enrolment is confirmed with the code of
now, and the sign-in's code is made for the step after now, which is within the one step
either side the server accepts and later than the confirming code's, however the steps
fall."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from .conftest import Account, Browse, Server
from .pages import assert_accessible, assert_fits, assert_focus_rings, fill_credentials, sign_in

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1000, "height": 700}


def current_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time())


def next_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30)


def enrol(
    page: Page,
    account: Account,
    what: str,
    *,
    check: bool = True,
    screenshot: Callable[..., Path] | None = None,
) -> tuple[str, list[str]]:
    """From the account page to the recovery codes, keyboard first; the secret and codes.
    ``check``: run axe on each page (it needs JavaScript in the page)."""
    page.goto("/account")
    page.get_by_role("link", name="Set up a second factor").click()
    page.wait_for_url("**/account/two-factor")
    if check:
        assert_accessible(page, f"the second factor, off ({what})")
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret_text = page.locator("#totp-secret")
    expect(secret_text).to_be_visible()
    secret = secret_text.inner_text().strip()
    qr = page.locator("svg.qr")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None
    assert box["width"] >= 150, "the QR code is drawn too small to scan"
    assert box["width"] <= page.viewport_size["width"]  # type: ignore[index]
    if screenshot is not None:
        screenshot(page, "enrolment")
    if check:
        assert_accessible(page, f"enrolment ({what})")
    assert_fits(page, f"enrolment ({what})")
    code_field = page.get_by_label("The six-digit code the app shows now")
    expect(code_field).to_have_attribute("autocomplete", "one-time-code")
    expect(code_field).to_have_attribute("inputmode", "numeric")
    code_field.focus()
    page.keyboard.type(current_code(secret))
    page.keyboard.press("Enter")
    codes = page.locator(".recovery-code")
    expect(codes).to_have_count(10)
    if screenshot is not None:
        screenshot(page, "recovery-codes")
    if check:
        assert_accessible(page, f"the recovery codes ({what})")
    assert_fits(page, f"the recovery codes ({what})")
    return secret, [code.strip() for code in codes.all_inner_texts()]


def type_the_code(page: Page, code: str) -> None:
    """At the code form: the field has the focus on arrival; type and press Enter."""
    field = page.locator("#code")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("autocomplete", "one-time-code")
    expect(field).to_have_attribute("inputmode", "numeric")
    page.keyboard.type(code)
    page.keyboard.press("Enter")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "desktop"])
def test_turn_it_on_and_sign_in_with_the_keyboard(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Callable[..., Path],
    viewport: dict[str, int],
) -> None:
    account = make_account(server, "tfa")
    page = browse(server, viewport=viewport)
    sign_in(page, account)
    secret, codes = enrol(page, account, f"{viewport['width']} px", screenshot=screenshot)
    assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){5}", code) for code in codes)
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    # The secret is not shown again.
    page.goto("/account/two-factor")
    expect(page.locator("#two-factor-state")).to_contain_text("on")
    assert secret not in page.content()

    other = browse(server, viewport=viewport)
    other.goto("/")
    fill_credentials(other, account.email, account.password)
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url("**/signin/two-factor")
    screenshot(other, "code-form")
    assert_accessible(other, "the code form")
    assert_fits(other, "the code form")
    other.locator("#code").fill("000000")
    other.keyboard.press("Enter")
    expect(other.locator("#code-error")).to_be_visible()
    expect(other.locator("#code")).to_have_attribute("aria-invalid", "true")
    assert_accessible(other, "the code form, refused")
    other.locator("#code").fill("")
    other.locator("#code").focus()
    other.keyboard.type(next_code(secret))
    other.keyboard.press("Enter")
    other.wait_for_url("**/home")
    other.goto("/sessions")
    expect(other.locator('#sessions tr[aria-current="true"]')).to_contain_text("password + code")


def test_without_javascript_download_the_codes_and_sign_in_with_one(
    browse: Browse, server: Server, make_account: Callable[..., Account]
) -> None:
    account = make_account(server, "tfa")
    page = browse(server, javascript=False)
    sign_in(page, account)
    _, codes = enrol(page, account, "no JavaScript", check=False)
    # No script, no Copy button; Download is a plain form post answering a text file (sent
    # here as the form would send it, with this browser's cookies).
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()
    form = page.locator("form", has=page.get_by_role("button", name="Download"))
    fields = {
        name: form.locator(f'input[name="{name}"]').get_attribute("value") or ""
        for name in ("csrf_token", "codes")
    }
    answer = page.request.post(form.get_attribute("action") or "", form=fields)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert 'filename="quartapp-recovery-codes.txt"' in answer.headers["content-disposition"]
    assert all(code in answer.text() for code in codes)

    other = browse(server, javascript=False)
    other.goto("/")
    fill_credentials(other, account.email, account.password)
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url("**/signin/two-factor")
    other.get_by_text("Use a recovery code").click()  # a <details>, no script needed
    other.get_by_label("Recovery code").fill(codes[0].lower())
    other.get_by_role("button", name="Sign in with a recovery code").click()
    other.wait_for_url("**/account/two-factor?done=recovery_code")
    expect(other.get_by_role("status")).to_contain_text("9 unused recovery codes left")


def test_the_second_factor_pages_keep_visible_focus_and_read_in_the_dark(
    browse: Browse, server: Server, make_account: Callable[..., Account]
) -> None:
    account = make_account(server, "tfa")
    page = browse(server, color_scheme="dark")
    sign_in(page, account)
    secret, _ = enrol(page, account, "dark")
    page.goto("/account/two-factor")
    assert_focus_rings(page, "the second factor, on")
    assert_accessible(page, "the second factor, on (dark)")
    other = browse(server, color_scheme="dark")
    other.goto("/")
    fill_credentials(other, account.email, account.password)
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url("**/signin/two-factor")
    # Open "Use a recovery code", so that every control of the page is in the Tab order.
    other.get_by_text("Use a recovery code").click()
    assert_focus_rings(other, "the code form")
    other.goto("/signin/two-factor")
    type_the_code(other, next_code(secret))
    other.wait_for_url("**/home")

"""Every page and state of the widget, as people with other screens and other means use
it: axe-core (WCAG 2.2 AA) in the light and the dark scheme, a visible focus ring on every
control reached with Tab, and phone widths (390 and 320 px) without sideways scrolling or
controls off the screen. The screenshots for the docs are taken here too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import Account, Browse, Server
from .pages import (
    assert_accessible,
    assert_fits,
    assert_focus_rings,
    countdown,
    countdown_poll,
    fill_credentials,
    fill_password_change,
    sign_in,
)

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]


@dataclass
class Setup:
    """Opens a page on the right server and brings it to the state under test."""

    request: pytest.FixtureRequest
    browse: Browse
    make_account: Callable[..., Account]

    def page(self, server_fixture: str = "server") -> tuple[Page, Server]:
        server: Server = self.request.getfixturevalue(server_fixture)
        return self.browse(server), server

    def signed_in(self, server_fixture: str = "server") -> Page:
        page, _ = self.signed_in_as(server_fixture)
        return page

    def signed_in_as(self, server_fixture: str = "server") -> tuple[Page, Account]:
        """A page signed in as a new account, and that account."""
        page, server = self.page(server_fixture)
        account = self.make_account(server, "ada", digits=4)
        sign_in(page, account)
        return page, account


def sign_in_page(setup: Setup) -> Page:
    page, _ = setup.page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    return page


def sign_in_error(setup: Setup) -> Page:
    page, server = setup.page()
    account = setup.make_account(server)
    page.goto("/")
    fill_credentials(page, account.email, "not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".form-error")).to_be_visible()
    return page


def sign_up_page(setup: Setup) -> Page:
    page, _ = setup.page()
    page.goto("/register")
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    return page


def sign_up_errors(setup: Setup) -> Page:
    page = sign_up_page(setup)
    fill_credentials(page, "not-an-email", "short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".field-error")).to_have_count(2)
    return page


def home_live(setup: Setup) -> Page:
    page = setup.signed_in()
    expect(countdown_poll(page)).to_have_attribute("hx-trigger", "every 1s")
    return page


def home_warning(setup: Setup) -> Page:
    page = setup.signed_in("warning_server")
    expect(page.get_by_role("button", name="Stay signed in")).to_be_visible()
    return page


def session_expired(setup: Setup) -> Page:
    page = setup.signed_in("short_idle_server")
    expect(countdown(page)).to_contain_text("Your session has expired.", timeout=9000)
    return page


def sign_out_confirm(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/logout")
    expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()
    return page


def sessions_page(setup: Setup) -> Page:
    page, server = setup.page()
    account = setup.make_account(server, "ada", digits=4)
    sign_in(setup.browse(server), account)
    sign_in(page, account)
    page.goto("/sessions")
    expect(page.locator('#sessions tr[aria-current="true"]')).to_be_visible()
    # End one in place, so the status region has news too.
    page.locator("#sessions tbody tr:not([aria-current])").first.get_by_role("button").click()
    expect(page.locator("#sessions-status")).to_contain_text("ended.")
    return page


def change_password_errors(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/account/password")
    fill_password_change(page, "not the password", "short")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".field-error")).to_have_count(1)
    return page


def password_changed(setup: Setup) -> Page:
    page, account = setup.signed_in_as()
    page.goto("/account/password")
    fill_password_change(page, account.password, "a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password has been changed")).to_be_visible()
    return page


def delete_account_error(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/account/delete")
    page.get_by_label("Your password").fill("not the password")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator(".field-error")).to_be_visible()
    return page


def account_deleted(setup: Setup) -> Page:
    page, account = setup.signed_in_as()
    page.goto("/account/delete")
    page.get_by_label("Your password").fill(account.password)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Your account has been deleted")).to_be_visible()
    return page


def signed_out(setup: Setup) -> Page:
    page = setup.signed_in()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    return page


def home_extended(setup: Setup) -> Page:
    page = home_warning(setup)
    page.get_by_role("button", name="Stay signed in").click()
    expect(page.locator("#countdown-status")).to_have_text("Your session has been extended.")
    return page


def account_page(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/account")
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()
    return page


def password_page(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/account/password")
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    return page


def email_page(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/account/email")
    expect(page.get_by_role("heading", name="Change your email address")).to_be_visible()
    return page


def change_email_errors(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/account/email")
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New email address").fill("not an address")
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator(".field-error")).to_have_count(1)
    return page


def delete_page(setup: Setup) -> Page:
    page = setup.signed_in()
    page.goto("/account/delete")
    expect(page.get_by_role("heading", name="Delete your account")).to_be_visible()
    return page


def passkeys_page(setup: Setup) -> Page:
    page = setup.signed_in("passkey_server")  # passkeys need the site's own name
    page.goto("/account/passkeys")
    expect(page.get_by_role("heading", name="Passkeys", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Add a passkey")).to_be_visible()  # the script's
    return page


def not_found(setup: Setup) -> Page:
    page, _ = setup.page()
    response = page.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_text("There is no page at this address.")).to_be_visible()
    return page


def not_found_signed_in(setup: Setup) -> Page:
    page = setup.signed_in()
    response = page.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def passkey_sign_in_page(setup: Setup) -> Page:
    page, _ = setup.page("passkey_server")
    page.goto("/")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    return page


STATES = {
    "sign-in": sign_in_page,
    "passkey-sign-in": passkey_sign_in_page,
    "sign-in-error": sign_in_error,
    "signed-out": signed_out,
    "sign-up": sign_up_page,
    "sign-up-errors": sign_up_errors,
    "home": home_live,
    "home-warning": home_warning,
    "home-extended": home_extended,
    "session-expired": session_expired,
    "sign-out-confirm": sign_out_confirm,
    "sessions": sessions_page,
    "account": account_page,
    "password": password_page,
    "change-password-errors": change_password_errors,
    "password-changed": password_changed,
    "email": email_page,
    "change-email-errors": change_email_errors,
    "delete-account": delete_page,
    "delete-account-error": delete_account_error,
    "account-deleted": account_deleted,
    "passkeys": passkeys_page,
    "not-found": not_found,
    "not-found-signed-in": not_found_signed_in,
}
# The pages the docs show, at every width and in both schemes.
DOCS = {"sign-in", "home", "sessions", "account"}
PHONES = (390, 320)
DESKTOP = {"width": 1280, "height": 800}
SCHEMES = ("light", "dark")


@pytest.mark.parametrize("state", STATES)
def test_every_page_state(
    state: str,
    request: pytest.FixtureRequest,
    browse: Browse,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = STATES[state](Setup(request, browse, make_account))
    docs = state in DOCS
    for scheme in SCHEMES:
        # Reduced motion: no colour transitions half-way through when axe looks.
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        page.set_viewport_size(DESKTOP)
        assert_accessible(page, f"{state} ({scheme})")
        assert_focus_rings(page, f"{state} ({scheme})")
        screenshot(
            page,
            f"{state}-1280-{scheme}",
            docs=f"{state}-1280-{scheme}.png" if docs else None,
            docs_full_page=True,
        )
        for width in PHONES:
            page.set_viewport_size({"width": width, "height": 740})
            assert_fits(page, f"{state} at {width} px ({scheme})")
            screenshot(
                page,
                f"{state}-{width}-{scheme}",
                docs=f"{state}-{width}-{scheme}.png" if docs else None,
                docs_full_page=True,
            )
    page.emulate_media(color_scheme="light")

"""Passkeys in Debian's Chromium, with a virtual authenticator (the DevTools protocol's
WebAuthn domain, through Playwright's CDP session): a platform authenticator that keeps
discoverable credentials and verifies its user, as a phone or a laptop's fingerprint
reader does. The app is reached as http://localhost:<port>, its public URL: WebAuthn
refuses IP addresses.

Adding a passkey (after the password), signing out and in with it (the button, and the
browser's autofill on the email field), removing it, two passkeys, another account's
passkey refused, and a cloned authenticator (its counter going back) refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import CDPSession, Page, expect

from .conftest import Account, Browse, Server
from .pages import assert_accessible, assert_fits, assert_focus_rings, path_of, sign_in

pytestmark = pytest.mark.e2e

PASSKEYS = "/account/passkeys"


@dataclass
class VirtualAuthenticator:
    """A virtual authenticator on one page, driven through the DevTools protocol."""

    cdp: CDPSession
    id: str

    @classmethod
    def on(cls, page: Page) -> VirtualAuthenticator:
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        added = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        return cls(cdp, added["authenticatorId"])

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        credentials: list[dict[str, Any]] = found["credentials"]
        return credentials

    def add(self, credential: dict[str, Any]) -> None:
        self.cdp.send(
            "WebAuthn.addCredential", {"authenticatorId": self.id, "credential": credential}
        )

    def remove(self, credential_id: str) -> None:
        self.cdp.send(
            "WebAuthn.removeCredential",
            {"authenticatorId": self.id, "credentialId": credential_id},
        )


# Chromium answers a conditional request (the autofill's) at once from a virtual
# authenticator that holds a passkey for the site: the sign-in page would sign in as it
# loads. Tests of the button take the autofill away, as a browser without it would.
NO_AUTOFILL = "PublicKeyCredential.isConditionalMediationAvailable = async () => false;"


def open_with_authenticator(
    browse: Browse, server: Server, *, autofill: bool = False
) -> tuple[Page, VirtualAuthenticator]:
    page = browse(server)
    if not autofill:
        page.context.add_init_script(script=NO_AUTOFILL)
    page.goto("/register")  # a page of the app first: the authenticator is the tab's
    return page, VirtualAuthenticator.on(page)


def add_passkey(page: Page, account: Account, name: str = "") -> None:
    """Add a passkey on the passkeys page, the way a user does."""
    page.goto(PASSKEYS)
    form = page.locator("#passkey-add-form")
    expect(form).to_be_visible()
    form.get_by_label("Current password").fill(account.password)
    if name:
        form.get_by_label("Name (optional").fill(name)
    form.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url("**/account/passkeys?added=1")
    expect(page.get_by_text("Your passkey has been added.")).to_be_visible()


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the element ``selector`` names has the focus."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector} on {page.url}")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url("**/?signed_out=1")


def passkey_names(page: Page) -> list[str]:
    return [name.strip() for name in page.locator(".passkey-name").all_inner_texts()]


def wait_until_forgotten(page: Page, authenticator: VirtualAuthenticator) -> None:
    """Wait (a bounded while) until the authenticator holds no passkey: the Signals API's
    calls do not say when the authenticator has acted on them."""
    for _ in range(100):
        if authenticator.credentials() == []:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the authenticator still holds {authenticator.credentials()}")


def sign_in_with_passkey(page: Page) -> None:
    page.goto("/")
    page.get_by_role("button", name="Sign in with a passkey").click()


@pytest.fixture
def ada(passkey_server: Server, make_account: Callable[..., Account]) -> Account:
    return make_account(passkey_server, "ada", digits=6)


def test_add_a_passkey_sign_out_and_sign_in_with_it(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    page, authenticator = open_with_authenticator(browse, passkey_server)
    sign_in(page, ada)
    add_passkey(page, ada, "Laptop")
    assert passkey_names(page) == ["Laptop"]
    expect(page.locator(".passkey-times")).to_contain_text("Not used to sign in yet.")
    (credential,) = authenticator.credentials()
    assert credential["isResidentCredential"] is True
    assert credential["rpId"] == "localhost"
    sign_out(page)

    sign_in_with_passkey(page)
    page.wait_for_url("**/home")
    expect(page.locator("h1 .email")).to_have_text(ada.email)
    # The sessions page says how this session was signed in.
    page.goto("/sessions")
    expect(page.locator("tr[aria-current] .device")).to_contain_text("(signed in: passkey)")
    page.goto(PASSKEYS)
    expect(page.locator(".passkey-times")).to_contain_text("Last used")


def test_with_the_keyboard_alone(passkey_server: Server, browse: Browse, ada: Account) -> None:
    page, _ = open_with_authenticator(browse, passkey_server)
    sign_in(page, ada)
    page.goto("/account")
    tab_to(page, "a[href='/account/passkeys']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/account/passkeys")
    tab_to(page, "#current_password")
    page.keyboard.type(ada.password)
    tab_to(page, "#passkey-new-name")
    page.keyboard.type("Keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url("**/account/passkeys?added=1")
    assert passkey_names(page) == ["Keyboard"]
    sign_out(page)
    tab_to(page, "#passkey-sign-in button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/home")
    expect(page.locator("h1 .email")).to_have_text(ada.email)


def test_after_a_password_sign_in_home_offers_a_passkey_only_to_an_account_without_one(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    page, _ = open_with_authenticator(browse, passkey_server)
    asked: list[str] = []
    page.on(
        "request",
        lambda request: (
            asked.append(request.url)
            if request.url.endswith("/api/v1/passkeys/registration/options")
            else None
        ),
    )
    sign_in(page, ada)
    expect(page.locator("#passkey-offer")).to_be_attached()
    add_passkey(page, ada)
    asked.clear()  # the passkeys page asked for its own options
    page.goto("/home")
    expect(page.locator("#passkey-offer")).to_have_count(0)
    sign_out(page)
    # Signed in with the password again: the account has a passkey, so /home neither
    # offers one nor asks the server for options it would refuse (409 passkey_exists).
    sign_in(page, ada)
    expect(page.locator("#passkey-offer")).to_have_count(0)
    expect(page.locator("script[src*='passkeys.js']")).to_have_count(0)
    assert asked == []


def test_the_password_is_asked_again_before_a_passkey_is_added(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    page, authenticator = open_with_authenticator(browse, passkey_server)
    sign_in(page, ada)
    page.goto(PASSKEYS)
    form = page.locator("#passkey-add-form")
    form.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#passkey-add-error")).to_have_text("Enter your current password.")
    form.get_by_label("Current password").fill("not the password")
    form.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#passkey-add-error")).to_have_text("This is not your current password.")
    expect(form.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    assert authenticator.credentials() == []
    expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()


def test_remove_a_passkey_and_the_browser_forgets_it(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    page, authenticator = open_with_authenticator(browse, passkey_server)
    sign_in(page, ada)
    add_passkey(page, ada, "Laptop")
    (held,) = authenticator.credentials()
    page.get_by_role("button", name="Remove passkey Laptop").click()
    page.wait_for_url("**/account/passkeys?removed=1")
    expect(page.get_by_text("The passkey has been removed.")).to_be_visible()
    expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
    # The page told the browser (the Signals API), and the authenticator dropped it.
    wait_until_forgotten(page, authenticator)
    sign_out(page)
    # A copy kept elsewhere is refused, and forgotten there too.
    authenticator.add(held)
    sign_in_with_passkey(page)
    expect(page.locator("#passkey-sign-in-error")).to_have_text(
        "This passkey is not registered here any more. Sign in with your password."
    )
    assert path_of(page) == "/"
    wait_until_forgotten(page, authenticator)


def test_the_browsers_autofill_signs_in_with_a_passkey(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    page, _ = open_with_authenticator(browse, passkey_server, autofill=True)
    sign_in(page, ada)  # no passkey yet: the autofill waits, the password signs in
    add_passkey(page, ada)
    page.get_by_role("button", name="Sign out").first.click()
    # The sign-in page's autofill (conditional mediation) answers at once here.
    page.wait_for_url("**/home")
    expect(page.locator("h1 .email")).to_have_text(ada.email)
    page.goto("/sessions")
    expect(page.locator("tr[aria-current] .device")).to_contain_text("(signed in: passkey)")


def test_two_passkeys_each_sign_in_and_renaming_one(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    laptop, laptop_key = open_with_authenticator(browse, passkey_server)
    sign_in(laptop, ada)
    add_passkey(laptop, ada, "Laptop")
    phone, phone_key = open_with_authenticator(browse, passkey_server)
    sign_in(phone, ada)
    add_passkey(phone, ada, "Phone")
    assert passkey_names(phone) == ["Laptop", "Phone"]
    # A second passkey on the same authenticator for the same account is refused.
    phone.locator("#passkey-add-form").get_by_label("Current password").fill(ada.password)
    phone.get_by_role("button", name="Add a passkey").click()
    expect(phone.locator("#passkey-add-error")).to_have_text(
        "This device already has a passkey for your account."
    )
    assert len(phone_key.credentials()) == 1
    # Renaming, with the keyboard alone.
    name = phone.get_by_label("Name of passkey Laptop")
    name.focus()
    name.fill("Work laptop")
    phone.keyboard.press("Tab")
    expect(phone.get_by_role("button", name="Rename passkey Laptop")).to_be_focused()
    phone.keyboard.press("Enter")
    phone.wait_for_url("**/account/passkeys?renamed=1")
    assert passkey_names(phone) == ["Work laptop", "Phone"]
    for page in (laptop, phone):
        sign_out(page)
        sign_in_with_passkey(page)
        page.wait_for_url("**/home")
        expect(page.locator("h1 .email")).to_have_text(ada.email)
    assert len(laptop_key.credentials()) == 1


def test_another_accounts_passkey_is_refused(
    passkey_server: Server, browse: Browse, make_account: Callable[..., Account]
) -> None:
    ada = make_account(passkey_server, "ada", digits=6)
    grace = make_account(passkey_server, "grace", digits=6)
    page, authenticator = open_with_authenticator(browse, passkey_server)
    sign_in(page, grace)
    add_passkey(page, grace)
    (graces,) = authenticator.credentials()
    sign_out(page)
    sign_in(page, ada)
    add_passkey(page, ada)
    (adas,) = [
        c for c in authenticator.credentials() if c["credentialId"] != graces["credentialId"]
    ]
    sign_out(page)
    # Grace's key presented under Ada's user handle: the signature checks out, the account
    # does not.
    authenticator.remove(adas["credentialId"])
    authenticator.remove(graces["credentialId"])
    authenticator.add({**graces, "userHandle": adas["userHandle"]})
    sign_in_with_passkey(page)
    expect(page.locator("#passkey-sign-in-error")).to_have_text(
        "This passkey could not sign you in. Try again, or sign in with your password."
    )
    assert path_of(page) == "/"


def test_a_cloned_authenticator_is_refused(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    page, authenticator = open_with_authenticator(browse, passkey_server)
    sign_in(page, ada)
    add_passkey(page, ada)
    sign_out(page)
    sign_in_with_passkey(page)
    page.wait_for_url("**/home")
    (used,) = authenticator.credentials()
    assert used["signCount"] >= 1
    sign_out(page)
    # The same key with an older counter: a copy made before the last use.
    authenticator.remove(used["credentialId"])
    authenticator.add({**used, "signCount": 0})
    sign_in_with_passkey(page)
    expect(page.locator("#passkey-sign-in-error")).to_have_text(
        "This passkey could not sign you in. Try again, or sign in with your password."
    )
    assert path_of(page) == "/"


def test_the_passkeys_page_on_a_phone_and_a_desktop_in_both_schemes(
    passkey_server: Server, browse: Browse, ada: Account, screenshot: Callable[..., Path]
) -> None:
    page, _ = open_with_authenticator(browse, passkey_server)
    sign_in(page, ada)
    add_passkey(page, ada, "A passkey with a rather long name for a narrow screen")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        page.set_viewport_size({"width": 1280, "height": 800})
        assert_accessible(page, f"passkeys ({scheme})")
        assert_focus_rings(page, f"passkeys ({scheme})")
        screenshot(page, f"passkeys-1280-{scheme}")
        for width in (390, 320):
            page.set_viewport_size({"width": width, "height": 740})
            assert_fits(page, f"passkeys at {width} px ({scheme})")
            screenshot(page, f"passkeys-{width}-{scheme}")


def test_without_javascript_passwords_work_and_passkeys_are_listed_renamed_and_removed(
    passkey_server: Server, browse: Browse, ada: Account
) -> None:
    # A passkey added where JavaScript runs...
    page, _ = open_with_authenticator(browse, passkey_server)
    sign_in(page, ada)
    add_passkey(page, ada, "Laptop")
    # ...is looked after from a browser without it, with plain forms.
    plain = browse(passkey_server, javascript=False)
    plain.goto("/")
    expect(plain.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
    sign_in(plain, ada)
    plain.goto(PASSKEYS)
    expect(plain.get_by_text("Adding a passkey needs JavaScript")).to_be_visible()
    expect(plain.get_by_role("button", name="Add a passkey")).to_be_hidden()
    plain.get_by_label("Name of passkey Laptop").fill("Old laptop")
    plain.get_by_role("button", name="Rename passkey Laptop").click()
    plain.wait_for_url("**/account/passkeys?renamed=1")
    assert passkey_names(plain) == ["Old laptop"]
    plain.get_by_role("button", name="Remove passkey Old laptop").click()
    plain.wait_for_url("**/account/passkeys?removed=1")
    expect(plain.get_by_text("You have no passkeys yet.")).to_be_visible()

"""The pages mailed links lead to, in a real browser: forgot → reset, verifying an
address, and undoing an address change. axe-core (WCAG 2.2 AA) in the light and the dark
scheme on each state; the browser fixture fails a test on any CSP violation or console
error. Mail goes to a real SMTP server (aiosmtpd) through a real mail worker, as in
tests/test_mail.py; the links in the mails start with PUBLIC_URL, so the tests open their
paths on the test server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.message import Message

import pytest
from playwright.sync_api import Page, expect

from ..support.mail_servers import MailCatcher, link_in, start_worker, to
from .conftest import Account, Browse, Server
from .pages import assert_accessible, path_of, sign_in

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "lantern orchard velvet"
SCHEMES = ("light", "dark")


@pytest.fixture(scope="module")
def catcher(
    database: str, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MailCatcher]:
    """An SMTP server and one mail worker for the test server's queue."""
    mail = MailCatcher(tmp_path_factory.mktemp("e2e-mail") / "maildir")
    mail.start()
    worker = start_worker(
        database,
        secret_key=server.secret_key,
        redis_prefix=server.redis_prefix,
        name="e2e",
        MAIL_URL=mail.url,
    )
    yield mail
    worker.stop()
    mail.stop()


def accessible_in_both_schemes(page: Page, what: str) -> None:
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        assert_accessible(page, f"{what} ({scheme})")
    page.emulate_media(color_scheme="light")


def newest(catcher: MailCatcher, matches: Callable[[Message], bool]) -> Message:
    return catcher.wait_for(matches)[-1]


def forgot_and_reset(page: Page, account: Account, catcher: MailCatcher, *, check: bool) -> None:
    page.goto("/password/forgot")
    expect(page.get_by_role("button", name="Send me a link")).to_be_visible()
    if check:
        accessible_in_both_schemes(page, "forgot")
    page.get_by_label("Email").fill(account.email)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_text("If an account exists for that address")).to_be_visible()
    if check:
        accessible_in_both_schemes(page, "forgot, sent")
    path = link_in(newest(catcher, to(account.email, "Reset your")), "/password/reset/")
    page.goto(path)
    expect(page.get_by_role("button", name="Set the new password")).to_be_visible()
    if check:
        accessible_in_both_schemes(page, "reset")
    page.get_by_label("New password").fill("password")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator(".field-error")).to_be_visible()
    if check:
        accessible_in_both_schemes(page, "reset, too weak")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_text("Your password has been reset")).to_be_visible()
    assert path_of(page) == "/"
    if check:
        accessible_in_both_schemes(page, "signed out after a reset")
    # A used link: the 410 page, with the way to ask again.
    page.goto(path)
    expect(page.get_by_role("link", name="Ask for a new password link")).to_be_visible()
    if check:
        accessible_in_both_schemes(page, "dead link")


def test_forgot_and_reset_pages(
    browse: Browse, server: Server, make_account: Callable[..., Account], catcher: MailCatcher
) -> None:
    account = make_account(server, "forgot")
    forgot_and_reset(browse(server), account, catcher, check=True)


def test_forgot_and_reset_without_javascript(
    browse: Browse, server: Server, make_account: Callable[..., Account], catcher: MailCatcher
) -> None:
    account = make_account(server, "nojs-forgot")
    forgot_and_reset(browse(server, javascript=False), account, catcher, check=False)


def test_the_verify_page(
    browse: Browse, server: Server, make_account: Callable[..., Account], catcher: MailCatcher
) -> None:
    account = make_account(server, "verify")
    page = browse(server)
    path = link_in(newest(catcher, to(account.email, "Confirm your email")), "/email/verify/")
    page.goto(path)
    expect(page.get_by_role("button", name="Confirm my address")).to_be_visible()
    accessible_in_both_schemes(page, "verify")
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_text("Your email address is verified")).to_be_visible()
    accessible_in_both_schemes(page, "verified")
    # Used now: not signed in, the way on is to sign in and send a new one.
    page.goto(path)
    expect(page.get_by_role("link", name="Sign in to send a new verification link")).to_be_visible()
    expect(page.get_by_role("link", name="Ask for a new password link")).to_have_count(0)
    accessible_in_both_schemes(page, "dead verification link, signed out")


def test_a_dead_verification_link_sends_a_new_one_when_signed_in(
    browse: Browse, server: Server, make_account: Callable[..., Account], catcher: MailCatcher
) -> None:
    account = make_account(server, "dead-verify")
    page = browse(server)
    sign_in(page, account)
    page.goto("/email/verify/" + "A" * 43)  # a link's shape, naming no live link
    expect(page.get_by_role("link", name="Back home")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_have_count(0)
    accessible_in_both_schemes(page, "dead verification link, signed in")
    page.get_by_role("button", name="Send a new verification link").click()
    page.wait_for_url("**/home?sent=1")
    assert len(catcher.wait_for(to(account.email, "Confirm your email"), count=2)) == 2


def test_the_undo_page_after_an_address_change(
    browse: Browse, server: Server, make_account: Callable[..., Account], catcher: MailCatcher
) -> None:
    """Someone who knows the password moves the account away; the owner follows the undo
    link mailed to the old address, lands on the reset form and sets a new password."""
    account = make_account(server, "undo")
    thief = browse(server)
    verify = link_in(newest(catcher, to(account.email, "Confirm your email")), "/email/verify/")
    thief.goto(verify)
    thief.get_by_role("button", name="Confirm my address").click()
    expect(thief.get_by_text("Your email address is verified")).to_be_visible()
    sign_in(thief, account)
    new_email = f"moved.{account.email}"
    thief.goto("/account/email")
    thief.get_by_label("Current password").fill(account.password)
    thief.get_by_label("New email address").fill(new_email)
    thief.get_by_role("button", name="Send the link").click()
    expect(thief.get_by_text("We sent a link to your new address")).to_be_visible()
    thief.goto(link_in(newest(catcher, to(new_email, "Confirm your new")), "/email/change/"))
    thief.get_by_role("button", name="Change my address").click()
    thief.wait_for_url("**/account/email?changed=1")

    owner = browse(server)
    undo = link_in(newest(catcher, to(account.email, "address was changed")), "/email/undo/")
    owner.goto(undo)
    expect(owner.get_by_role("button", name="Undo the change")).to_be_visible()
    accessible_in_both_schemes(owner, "undo")
    owner.get_by_role("button", name="Undo the change").click()
    expect(owner.get_by_role("button", name="Set the new password")).to_be_visible()
    expect(owner.locator("#reset-form .email")).to_have_text(account.email)
    owner.get_by_label("New password").fill(NEW_PASSWORD)
    owner.get_by_role("button", name="Set the new password").click()
    expect(owner.get_by_text("Your password has been reset")).to_be_visible()
    # The link worked once: the 410 page says what else to do.
    owner.goto(undo)
    expect(owner.get_by_text("contact the people who run this site")).to_be_visible()
    accessible_in_both_schemes(owner, "dead undo link")
    # The thief was signed out with every other session.
    thief.goto("/home")
    assert path_of(thief) == "/"

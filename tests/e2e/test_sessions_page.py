"""Your sessions and your account in a real browser: two browsers of one user, one ending
the other, signing out everywhere else, a new password, deleting the account, and all of it
without JavaScript too."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from .conftest import Account, Browse, Server
from .pages import (
    assert_signed_out,
    countdown,
    countdown_poll,
    fill_password_change,
    open_signed_in,
    path_of,
)
from .test_content_security_policy import policy_of

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]
COUNTDOWN_PATH = "/session/countdown"
NEW_PASSWORD = "a brand new passphrase"
ENDED_ELSEWHERE = "You were signed out from another device."
ENDED_BY_CHANGE = "You were signed out because your password or email address was changed."


def rows(page: Page) -> Locator:
    return page.locator("#sessions tbody tr")


def row(page: Page, public_id: str) -> Locator:
    return page.locator(f'#sessions tbody tr[data-session="{public_id}"]')


def this_row(page: Page) -> Locator:
    return page.locator('#sessions tbody tr[aria-current="true"]')


def is_post(path: str) -> Callable[[Response], bool]:
    return lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith(path)


class Polls:
    """When the countdown's poll answers arrived on a page."""

    def __init__(self, page: Page) -> None:
        self.times: list[float] = []
        page.on("response", self._seen)

    def _seen(self, response: Response) -> None:
        if response.url.endswith(COUNTDOWN_PATH):
            self.times.append(time.monotonic())

    def since(self, moment: float) -> int:
        return sum(1 for seen in self.times if seen > moment)


def public_id(page: Page) -> str:
    """The session id that /home shows."""
    page.goto("/home")
    return page.locator(".session-facts code").inner_text()


# Every account here also has the session its sign-up through the JSON API started.


def test_ending_a_session_from_another_browser_expires_its_countdown(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(server)
    first = open_signed_in(browse, server, account)
    polls = Polls(first)
    expect(countdown_poll(first)).to_have_attribute("hx-trigger", "every 1s")
    first_id = first.locator(".session-facts code").inner_text()

    second = open_signed_in(browse, server, account)
    second.get_by_role("link", name="Sessions", exact=True).click()
    second.wait_for_url("**/sessions")
    expect(rows(second)).to_have_count(3)
    expect(this_row(second)).to_contain_text("This device")
    expect(this_row(second)).to_contain_text("Headless Chrome")
    expect(this_row(second)).to_contain_text("127.0.0.1")
    expect(row(second, first_id)).not_to_have_attribute("aria-current", "true")
    screenshot(second, "sessions")

    with second.expect_response(is_post(f"/sessions/{first_id}/revoke")) as answered:
        row(second, first_id).get_by_role("button", name=f"End session {first_id}").click()
    ended_at = time.monotonic()
    assert answered.value.status == 200
    assert answered.value.request.headers.get("hx-request") == "true"
    expect(row(second, first_id)).to_have_count(0)  # the row went, in place
    expect(rows(second)).to_have_count(2)
    expect(second.locator("#sessions-status")).to_have_text(f"Session {first_id} ended.")
    assert path_of(second) == "/sessions"
    screenshot(second, "one-session")

    # The tab says why, not "expired"; so does the sign-in page its link leads to.
    expect(countdown(first)).to_contain_text(ENDED_ELSEWHERE, timeout=5000)
    expect(countdown(first)).not_to_contain_text("expired")
    assert polls.since(ended_at) <= 2, "the widget took more than two polls to expire"
    assert countdown_poll(first).get_attribute("hx-trigger") is None
    screenshot(first, "ended-elsewhere")
    first.get_by_role("link", name="Sign in again").click()
    first.wait_for_url("**/?ended=elsewhere")
    expect(first.locator("#sign-in-form [role=status]")).to_have_text(ENDED_ELSEWHERE)
    screenshot(first, "sign-in-after-ended-elsewhere")
    assert_signed_out(first, "the ended session still opens /home")


def test_sign_out_everywhere_else(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(server)
    others = [open_signed_in(browse, server, account) for _ in range(2)]
    page = open_signed_in(browse, server, account)
    page.goto("/sessions")
    expect(rows(page)).to_have_count(4)

    with page.expect_response(is_post("/sessions/revoke-others")) as answered:
        page.get_by_role("button", name="Sign out everywhere else").click()
    assert answered.value.status == 200
    expect(rows(page)).to_have_count(1)
    expect(this_row(page)).to_contain_text("This device")
    expect(page.locator("#sessions-status")).to_have_text("Signed out 3 other sessions.")
    expect(page.get_by_text("This is your only session.")).to_be_visible()
    screenshot(page, "signed-out-elsewhere")
    for other in others:
        expect(countdown(other)).to_contain_text(ENDED_ELSEWHERE, timeout=5000)

    # This one goes on.
    page.goto("/home")
    assert path_of(page) == "/home"


def test_change_password_then_delete_the_account(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(server)
    other = open_signed_in(browse, server, account)
    page = open_signed_in(browse, server, account)
    page.goto("/sessions")
    page.get_by_role("link", name="Change your password").first.click()
    page.wait_for_url("**/account/password")
    current = page.get_by_label("Current password", exact=True)

    # A wrong current password: the error shows next to the field, nothing else changes.
    fill_password_change(page, "not the password", NEW_PASSWORD)
    with page.expect_response(is_post("/account/password")) as answered:
        page.get_by_role("button", name="Change password").click()
    assert answered.value.status == 403
    expect(page.locator("#current_password-error")).to_have_text(
        "This is not your current password."
    )
    expect(current).to_have_attribute("aria-invalid", "true")
    assert path_of(page) == "/account/password"
    screenshot(page, "wrong-current-password")

    fill_password_change(page, account.password, NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/account/password?changed=1")
    expect(page.get_by_text("Your password has been changed")).to_be_visible()
    screenshot(page, "password-changed")
    expect(countdown(other)).to_contain_text(ENDED_BY_CHANGE, timeout=5000)
    other.goto("/sessions")
    expect(other.get_by_text(ENDED_BY_CHANGE)).to_be_visible()  # the sign-in page says it too
    assert path_of(other) == "/"

    # The page carries a token for the new session: the next action works.
    page.goto("/account/delete")
    page.get_by_label("Your password").fill(account.password)
    with page.expect_response(is_post("/account/delete")) as answered:
        page.get_by_role("button", name="Delete my account").click()
    assert answered.value.status == 403  # the old password is no more
    expect(page.locator("#password-error")).to_have_text("This is not your current password.")
    page.get_by_label("Your password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    page.wait_for_url("**/account/deleted")
    expect(page.get_by_role("heading", name="Your account has been deleted")).to_be_visible()
    screenshot(page, "deleted")
    assert_signed_out(page)


def submit(page: Page, button: Locator, path: str) -> Response:
    with page.expect_response(is_post(path)) as answered:
        button.click()
    page.wait_for_load_state()
    return answered.value


def test_sessions_and_password_without_javascript(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(server)
    other = open_signed_in(browse, server, account, javascript=False)
    other_id = public_id(other)
    page = open_signed_in(browse, server, account, javascript=False)

    page.goto("/sessions")
    expect(rows(page)).to_have_count(3)
    answer = submit(page, row(page, other_id).get_by_role("button"), "/revoke")
    assert answer.status == 303
    assert answer.request.headers.get("hx-request") is None
    page.wait_for_url("**/sessions")
    expect(rows(page)).to_have_count(2)
    expect(row(page, other_id)).to_have_count(0)
    screenshot(page, "ended")
    assert_signed_out(other)

    page.goto("/account/password")
    fill_password_change(page, "wrong password", "short")
    answer = submit(page, page.get_by_role("button", name="Change password"), "/account/password")
    assert answer.status == 422
    expect(page.locator("#new_password-error")).to_have_text("Use at least 8 characters.")
    fill_password_change(page, account.password, NEW_PASSWORD)
    answer = submit(page, page.get_by_role("button", name="Change password"), "/account/password")
    assert answer.status == 303
    page.wait_for_url("**/account/password?changed=1")
    expect(page.get_by_text("Your password has been changed")).to_be_visible()
    screenshot(page, "password-changed")

    # This session's own row signs it out.
    page.goto("/sessions")
    answer = submit(page, this_row(page).get_by_role("button"), "/revoke")
    assert answer.status == 303
    page.wait_for_url("**/?signed_out=1")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_new_pages_send_the_strict_policy(
    browse: Browse, server: Server, make_account: Callable[..., Account]
) -> None:
    """Each page is watched for violations anyway (see PageMonitor); here its policy too."""
    page = open_signed_in(browse, server, make_account(server))
    for path in ("/sessions", "/account/password", "/account/delete", "/account/deleted"):
        policy = policy_of(page, path)
        assert policy["script-src"] == ["'self'"], (path, policy)
        assert policy["style-src"] == ["'self'"], (path, policy)
        assert policy["default-src"] == ["'none'"], (path, policy)
    monitor = browse.monitor(page)
    assert not monitor.problems, monitor.problems


def test_ending_the_last_other_session_takes_its_button_away(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    """With two sessions, ending the other leaves no "Sign out everywhere else" behind
    (it would only say there were none), and the keyboard focus lands on the list."""
    account = make_account(server)  # its sign-up's session is the other one
    page = open_signed_in(browse, server, account)
    page.goto("/sessions")
    expect(rows(page)).to_have_count(2)
    everywhere_else = page.get_by_role("button", name="Sign out everywhere else")
    expect(everywhere_else).to_be_visible()

    end = page.locator("#sessions tbody tr:not([aria-current])").get_by_role("button")
    end.focus()
    with page.expect_response(is_post("/revoke")) as answered:
        page.keyboard.press("Enter")
    assert answered.value.status == 200
    expect(rows(page)).to_have_count(1)
    expect(everywhere_else).to_have_count(0)
    expect(page.get_by_text("This is your only session.")).to_be_visible()
    expect(page.locator("#sessions-status")).to_contain_text("ended.")
    expect(page.locator("#sessions-heading")).to_be_focused()
    screenshot(page, "only-session")


FOCUSED_ID = "() => document.activeElement && document.activeElement.id"


def test_the_list_shows_new_sessions_without_a_reload_and_keeps_the_focus(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(server)
    page = open_signed_in(browse, server, account)
    page.goto("/sessions")
    expect(rows(page)).to_have_count(2)
    page.evaluate("() => { window.__e2eSameDocument = true; }")
    for _ in range(30):  # the keyboard only, to "Sign out everywhere else"
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED_ID) == "end-others":
            break
    assert page.evaluate(FOCUSED_ID) == "end-others"

    second = open_signed_in(browse, server, account)  # another browser signs in
    second_id = public_id(second)
    expect(row(page, second_id)).to_have_count(1, timeout=20_000)  # polled every 10 s
    expect(rows(page)).to_have_count(3)
    assert page.evaluate("() => window.__e2eSameDocument === true"), "the page was reloaded"
    assert page.evaluate(FOCUSED_ID) == "end-others", "the poll moved the keyboard focus"
    expect(page.locator("#sessions-status")).to_have_text("")  # nothing announced
    screenshot(page, "new-session-appeared")

    # And an ended one goes without a reload too; the focus stays.
    second.goto("/sessions")
    this_row(second).get_by_role("button", name="Sign out").click()
    second.wait_for_url("**/?signed_out=1")
    expect(row(page, second_id)).to_have_count(0, timeout=20_000)
    assert page.evaluate(FOCUSED_ID) == "end-others"

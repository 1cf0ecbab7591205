"""What the browser tests do on the app's pages, written once."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from playwright.sync_api import Locator, Page, expect

from .conftest import AXE_SOURCE, Account, Browse, Server

CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")
LIVE_CLOCK = re.compile(r"^(?:\d+:)?\d{1,2}:\d{2}$")


def seconds(clock: str) -> int:
    """``m:ss`` or ``h:mm:ss`` as seconds."""
    match = CLOCK.match(clock.strip())
    assert match, f"not a clock: {clock!r}"
    hours, minutes, secs = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)


def path_of(page: Page) -> str:
    """The page's address without scheme, host and port."""
    match = re.match(r"^https?://[^/]+(/[^?#]*)", page.url)
    assert match, page.url
    return match.group(1)


def countdown(page: Page) -> Locator:
    """The countdown widget: the polled clock, the status region and the actions."""
    return page.locator("#session-countdown")


def countdown_poll(page: Page) -> Locator:
    """The widget's polled part, which carries hx-get and hx-trigger while it is live."""
    return page.locator("#countdown-clock")


def countdown_status(page: Page) -> Locator:
    """The widget's live region."""
    return page.locator("#countdown-status")


def clock(page: Page) -> Locator:
    return page.locator("#session-countdown .clock")


def time_left(page: Page) -> int:
    """The seconds the countdown shows now."""
    text = clock(page).inner_text(timeout=2000)
    return seconds(text)


def fill_credentials(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)


def sign_in(page: Page, account: Account) -> None:
    """Sign in through the form on ``/`` and wait for /home."""
    page.goto("/")
    fill_credentials(page, account.email, account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home")
    expect(page.locator("h1 .email")).to_have_text(account.email)


def wait_until_signed_out(page: Page, server: Server) -> None:
    """Wait for the sign-in page that says "You are signed out"."""
    page.wait_for_url(server.url("/?signed_out=1"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def open_signed_in(
    browse: Browse, server: Server, account: Account, *, javascript: bool = True
) -> Page:
    """A new browser context on ``server``, signed in as ``account`` through the form."""
    page = browse(server, javascript=javascript)
    sign_in(page, account)
    return page


def assert_signed_out(page: Page, why: str = "/home opens without a live session") -> None:
    """Ask for /home: a browser without a live session is sent back to sign in on ``/``."""
    page.goto("/home")
    assert path_of(page) == "/", why


def fill_password_change(page: Page, current: str, new: str) -> None:
    """Fill in the form on ``/account/password``."""
    page.get_by_label("Current password", exact=True).fill(current)
    page.get_by_label("New password", exact=True).fill(new)


# --- accessibility -------------------------------------------------------------------


@cache
def axe_source() -> str:
    return AXE_SOURCE.read_text(encoding="utf-8")


# The countdown replaces itself every second; swaps are held back while axe looks at the
# page so that it never inspects an element that has just left the document.
HOLD_SWAPS = """(hold) => {
  if (!window.__e2eSwapGuard) {
    window.__e2eSwapGuard = true;
    document.addEventListener("htmx:beforeSwap", (event) => {
      if (window.__e2eHoldSwaps) event.detail.shouldSwap = false;
    });
  }
  window.__e2eHoldSwaps = hold;
}"""

RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target, html: n.html, summary: n.failureSummary})),
  }));
}"""


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f" <{violation['helpUrl']}>"
        )
        for node in violation["nodes"]:
            lines.append(f"    {json.dumps(node['target'])}: {node['html']}")
            for detail in (node["summary"] or "").splitlines():
                lines.append(f"        {detail}")
    return "\n".join(lines)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now.

    axe is evaluated through the DevTools protocol, which the page's Content Security
    Policy does not govern, so the policy stays on exactly as users get it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    page.evaluate(HOLD_SWAPS, True)
    try:
        violations: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    finally:
        page.evaluate(HOLD_SWAPS, False)
    return violations


def assert_accessible(page: Page, what: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe found problems on {what} ({page.url}):\n{describe(violations)}"

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
    page.get_by_role("button", name="Sign in", exact=True).click()
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

# The WCAG 2.2 AA rule set (colour contrast included), and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    resultTypes: ["violations"], runOnly: {type: "tag", values: tags},
  });
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
        violations: list[dict[str, Any]] = page.evaluate(RUN_AXE, AXE_TAGS)
    finally:
        page.evaluate(HOLD_SWAPS, False)
    return violations


def assert_accessible(page: Page, what: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe found problems on {what} ({page.url}):\n{describe(violations)}"


# --- focus and small screens -----------------------------------------------------------

CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"

# The focused element's ring (its outline) and the colour behind it: the nearest
# ancestor's background, composed over those under it down to the page.
FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const parse = (text) => {
    const m = text.match(/rgba?\\(([\\d.]+),\\s*([\\d.]+),\\s*([\\d.]+)(?:,\\s*([\\d.]+))?\\)/);
    return m ? [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]] : null;
  };
  const layers = [];
  for (let node = element.parentElement; node; node = node.parentElement) {
    const colour = parse(getComputedStyle(node).backgroundColor);
    if (colour && colour[3] > 0) layers.push(colour);
    if (colour && colour[3] === 1) break;
  }
  let behind = [255, 255, 255];
  for (const [r, g, b, a] of layers.reverse()) {
    behind = [0, 1, 2].map((i) => [r, g, b][i] * a + behind[i] * (1 - a));
  }
  const style = getComputedStyle(element);
  const box = element.getBoundingClientRect();
  return {
    what: element.outerHTML.slice(0, 120),
    key: element.__e2eKey || (element.__e2eKey = Math.random().toString(36).slice(2)),
    outlineStyle: style.outlineStyle,
    outlineWidth: parseFloat(style.outlineWidth),
    outline: parse(style.outlineColor),
    behind,
    colour: parse(style.color),
    background: parse(style.backgroundColor),
    visible: box.width > 0 && box.height > 0,
  };
}"""

# Moves the keyboard's starting point to the top of the page, as a fresh load has it: a
# focused element that leaves the document leaves the starting point where it was.
START_OVER = """() => {
  const mark = document.createElement("span");
  mark.tabIndex = -1;
  document.body.prepend(mark);
  mark.focus();
  mark.remove();
  window.scrollTo(0, 0);
}"""

REACHABLE = """(selector) => [...document.querySelectorAll(selector)].filter((element) => {
  if (element.tabIndex < 0) return false;
  const box = element.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== "hidden";
}).map((element) => element.outerHTML.slice(0, 120))"""


def luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(value) for value in rgb[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: list[float], other: list[float]) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def assert_focus_rings(page: Page, what: str) -> None:
    """Tab through the page: every control gets the focus, and shows a solid ring of at
    least 2 px with a contrast of at least 3:1 against what is behind it; a focused
    control with a background of its own keeps its text at 4.5:1 on it."""
    page.evaluate(START_OVER)
    page.evaluate(HOLD_SWAPS, True)
    try:
        expected = page.evaluate(REACHABLE, CONTROLS)
        seen: list[str] = []
        problems: list[str] = []
        for _ in range(len(expected) + 5):
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
            if focused is None or focused["key"] in seen:
                break
            seen.append(focused["key"])
            ring = focused["outline"]
            if focused["outlineStyle"] in ("none", "hidden") or focused["outlineWidth"] < 2:
                problems.append(f"no focus ring on {focused['what']}")
            elif ring is None or ring[3] < 1:
                problems.append(f"a translucent focus ring on {focused['what']}")
            else:
                ratio = contrast(ring, focused["behind"])
                if ratio < 3:
                    problems.append(f"focus ring {ratio:.2f}:1 on {focused['what']}")
            # A focused button takes its hover colours: its text must still read (4.5:1).
            background = focused["background"]
            if background is not None and background[3] == 1 and focused["colour"]:
                ratio = contrast(focused["colour"], background)
                if ratio < 4.5:
                    problems.append(f"focused text {ratio:.2f}:1 on {focused['what']}")
    finally:
        page.evaluate(HOLD_SWAPS, False)
    assert not problems, f"focus on {what} ({page.url}):\n" + "\n".join(problems)
    assert len(seen) >= len(expected), (
        f"Tab reached {len(seen)} of the {len(expected)} controls on {what}: {expected}"
    )


FITS = """(selector) => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const outside = [...document.querySelectorAll(selector)].filter((element) => {
    const box = element.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) return false;
    return box.left < -0.5 || box.right > width + 0.5;
  }).map((element) => element.outerHTML.slice(0, 120));
  return {scrollWidth: root.scrollWidth, clientWidth: width, outside};
}"""


def assert_fits(page: Page, what: str) -> None:
    """Nothing scrolls sideways, and every control lies within the viewport's width."""
    fit = page.evaluate(FITS, CONTROLS)
    assert fit["scrollWidth"] <= fit["clientWidth"], (
        f"{what} scrolls sideways: {fit['scrollWidth']} px wide in {fit['clientWidth']} px"
    )
    assert not fit["outside"], f"controls off the screen on {what}: {fit['outside']}"

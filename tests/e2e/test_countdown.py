"""The live countdown of the session's time left: polling, extending, expiring."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from .conftest import Account, Browse, Server
from .pages import (
    assert_signed_out,
    clock,
    countdown,
    countdown_poll,
    countdown_status,
    open_signed_in,
    sign_in,
    time_left,
)

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]
COUNTDOWN_PATH = "/session/countdown"


def test_countdown_runs_down_without_extending_the_session(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    # Short enough to fit the heading on one line in the docs screenshots.
    account = make_account(server, "ada", digits=4)
    page = browse(server)
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")
    sign_in(page, account)

    widget = countdown(page)
    poll = countdown_poll(page)
    expect(poll).to_have_attribute("hx-get", COUNTDOWN_PATH)
    expect(poll).to_have_attribute("hx-trigger", "every 1s")
    expect(widget).to_contain_text("Time left in this session")
    expect(poll.locator(".ends-at time")).to_have_text(re.compile(r"^\d\d:\d\d UTC$"))
    expect(poll.locator(".no-script")).to_be_hidden()  # the clock counts down here
    first = time_left(page)
    assert 590 <= first <= 600, f"a new session shows {first} s left"
    screenshot(page, "home")

    # The widget polls, and reading the time left never extends it.
    with page.expect_request(lambda r: r.url.endswith(COUNTDOWN_PATH)):
        page.wait_for_timeout(2500)
    second = time_left(page)
    assert second < first, f"the countdown did not go down: {first} s, then {second} s"
    assert first - second <= 4, f"the countdown jumped from {first} s to {second} s"
    expect(poll).to_have_attribute("hx-get", COUNTDOWN_PATH)
    expect(poll).to_have_attribute("hx-trigger", "every 1s")
    expect(widget.get_by_role("button", name="Stay signed in")).to_have_count(0)


def test_stay_signed_in_extends_the_session(
    browse: Browse,
    warning_server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = open_signed_in(browse, warning_server, make_account(warning_server))
    widget = countdown(page)
    stay = widget.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_visible()
    expect(countdown_poll(page)).to_have_attribute("data-phase", "warning")
    expect(countdown_status(page)).to_have_text("Your session is about to end.")

    # Let some time run off first, so that the extension shows.
    expect(clock(page)).to_have_text(re.compile(r"^09:(5[0-7]|[0-4]\d)$"), timeout=6000)
    before = time_left(page)
    screenshot(page, "warning")

    with page.expect_response(
        lambda r: r.url.endswith("/session/extend") and r.request.method == "POST"
    ) as answered:
        stay.click()
    response = answered.value
    assert response.status == 200, response.text()
    assert response.request.headers.get("hx-request") == "true"
    fragment = response.text()
    assert 'id="countdown-clock"' in fragment
    assert f'hx-get="{COUNTDOWN_PATH}"' in fragment, "the extended widget stopped polling"
    extended = re.search(r'<time datetime="PT(\d+)S">', fragment)
    assert extended, fragment
    assert int(extended.group(1)) > before, f"extend answered {extended.group(1)} s"

    # Re-rendered and still live: the time left is back above what it was (at most 9:57).
    expect(clock(page)).to_have_text(re.compile(r"^(10:00|09:59|09:58)$"), timeout=3000)
    expect(countdown_poll(page)).to_have_attribute("hx-get", COUNTDOWN_PATH)
    expect(countdown_poll(page)).to_have_attribute("hx-trigger", "every 1s")
    expect(widget.get_by_role("button", name="Stay signed in")).to_be_visible()
    screenshot(page, "extended")


def test_session_expires_and_polling_stops(
    browse: Browse,
    short_idle_server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(short_idle_server)
    page = browse(short_idle_server)
    polls: list[float] = []

    def count(request: Request) -> None:
        if request.url.endswith(COUNTDOWN_PATH):
            polls.append(time.monotonic())

    page.on("request", count)
    sign_in(page, account)
    widget = countdown(page)
    assert time_left(page) <= 5
    screenshot(page, "live")

    expired = widget.get_by_text("Your session has expired.")
    expect(expired).to_be_visible(timeout=9000)
    seen_at = time.monotonic()
    assert polls, "the widget never polled"
    again = widget.get_by_role("link", name="Sign in again")
    expect(again).to_have_attribute("href", "/")
    expect(again).to_be_focused()  # what had the focus has left the page
    poll = countdown_poll(page)
    assert poll.get_attribute("hx-get") is None
    assert poll.get_attribute("hx-trigger") is None
    expect(poll).to_have_attribute("data-phase", "expired")
    # The navigation no longer offers to sign out a session that has ended.
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(page.get_by_role("navigation").get_by_role("link", name="Sign in")).to_be_visible()
    screenshot(page, "expired")

    polls_when_expired = len(polls)
    page.wait_for_timeout(3000)
    late = [round(t - seen_at, 2) for t in polls[polls_when_expired:]]
    assert not late, f"the expired widget still polled, at +{late} s"

    page.get_by_role("link", name="Sign in again").click()
    page.wait_for_url(short_idle_server.url("/"))
    assert_signed_out(page, "an expired session still opens /home")


# Marks the focused element, so that a test can tell the same element from a new copy.
MARK_FOCUSED = "() => { document.activeElement.__e2eMarked = true; }"
STILL_FOCUSED = """() => ({
  same: document.activeElement.__e2eMarked === true,
  text: document.activeElement.textContent.trim(),
  tag: document.activeElement.tagName,
})"""


def tab_to(page: Page, name: str, limit: int = 20) -> None:
    """Press Tab until the control called ``name`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == name:
            return
    pytest.fail(f"Tab never reached {name!r}")


def test_stay_signed_in_keeps_the_keyboard_focus(
    browse: Browse,
    warning_server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = open_signed_in(browse, warning_server, make_account(warning_server))
    expect(page.get_by_role("button", name="Stay signed in")).to_be_visible()
    polls: list[float] = []
    page.on(
        "response", lambda r: polls.append(time.monotonic()) if COUNTDOWN_PATH in r.url else None
    )
    tab_to(page, "Stay signed in")
    page.evaluate(MARK_FOCUSED)

    # Several polls go by; the focus stays on that very button.
    started = time.monotonic()
    page.wait_for_timeout(3500)
    assert sum(1 for t in polls if t > started) >= 2, "the countdown did not poll"
    focused = page.evaluate(STILL_FOCUSED)
    assert focused == {"same": True, "text": "Stay signed in", "tag": "BUTTON"}, focused
    screenshot(page, "focused")

    # Let time run off, then extend from the keyboard: Enter, then Space.
    expect(clock(page)).to_have_text(re.compile(r"^09:(5[0-5]|[0-4]\d)$"), timeout=8000)
    for key in ("Enter", " "):
        before = time_left(page)
        with page.expect_response(
            lambda r: r.url.endswith("/session/extend") and r.request.method == "POST"
        ) as answered:
            page.keyboard.press(key)
        assert answered.value.status == 200
        expect(clock(page)).to_have_text(re.compile(r"^(10:00|09:59|09:58)$"), timeout=3000)
        assert time_left(page) > before
        focused = page.evaluate(STILL_FOCUSED)
        assert focused == {"same": True, "text": "Stay signed in", "tag": "BUTTON"}, (key, focused)
        if key == "Enter":
            page.wait_for_timeout(3000)  # let some time run off again before Space
    page.wait_for_timeout(2500)
    assert page.evaluate(STILL_FOCUSED)["same"], "a poll after the extension took the focus"
    screenshot(page, "extended")


# Every change of the live region, and every swap of the clock, in the order they came.
WATCH_STATUS = """() => {
  window.__e2eLog = [];
  const region = document.getElementById("countdown-status");
  new MutationObserver(() => {
    window.__e2eLog.push({kind: "status", text: region.textContent});
  }).observe(region, {childList: true, subtree: true, characterData: true});
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "countdown-clock") window.__e2eLog.push({kind: "poll"});
  });
}"""


def test_the_live_region_waits_in_the_page_and_speaks_once_per_change(
    browse: Browse,
    threshold_server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    """The status region is in the page, empty, before the warning; it changes when the
    warning begins and when the session expires, and not on the polls in between."""
    page = open_signed_in(browse, threshold_server, make_account(threshold_server))
    status = countdown_status(page)
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_text("")
    expect(countdown_poll(page)).to_have_attribute("data-phase", "live")
    page.evaluate(WATCH_STATUS)
    screenshot(page, "before-the-warning")

    expect(status).to_have_text("Your session is about to end.", timeout=9000)
    screenshot(page, "warning")
    expect(status).to_have_text("Your session has expired.", timeout=9000)
    log: list[dict[str, str]] = page.evaluate("() => window.__e2eLog")

    changes = [entry["text"] for entry in log if entry["kind"] == "status"]
    texts = [text for i, text in enumerate(changes) if i == 0 or text != changes[i - 1]]
    assert texts == ["Your session is about to end.", "Your session has expired."], changes
    warned = next(i for i, e in enumerate(log) if e.get("text") == texts[0])
    expired = next(i for i, e in enumerate(log) if e.get("text") == texts[1])
    between = log[warned + 1 : expired]
    assert sum(1 for e in between if e["kind"] == "poll") >= 2, log
    assert all(e["kind"] == "poll" for e in between), f"the region changed on polls: {log}"


# Each text the clock shows, with its width, as the polls swap it in.
WATCH_CLOCK = """() => {
  window.__e2eClock = [];
  const note = () => {
    const clock = document.querySelector("#session-countdown .clock");
    if (clock) window.__e2eClock.push([clock.textContent, clock.getBoundingClientRect().width]);
  };
  note();
  document.body.addEventListener("htmx:afterSettle", note);
}"""


def test_the_clock_keeps_its_width_below_ten_minutes(
    browse: Browse,
    past_ten_server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = open_signed_in(browse, past_ten_server, make_account(past_ten_server))
    page.evaluate(WATCH_CLOCK)
    expect(clock(page)).to_have_text(re.compile(r"^09:5\d$"), timeout=9000)
    screenshot(page, "below-ten-minutes")
    seen: list[list[Any]] = page.evaluate("() => window.__e2eClock")
    texts = [text for text, _ in seen]
    assert any(text.startswith("10:") for text in texts), texts
    assert any(text.startswith("09:") for text in texts), texts
    widths = {round(width, 1) for _, width in seen}
    assert len(widths) == 1, f"the clock changed its width: {seen}"
    assert (
        page.locator("#session-countdown .clock").evaluate(
            "(clock) => getComputedStyle(clock).fontVariantNumeric"
        )
        == "tabular-nums"
    )


def test_the_tab_title_shows_the_time_left_during_the_warning(
    browse: Browse,
    threshold_server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = open_signed_in(browse, threshold_server, make_account(threshold_server))
    expect(page).to_have_title("Home · quartapp")
    expect(countdown_poll(page)).to_have_attribute("data-phase", "warning", timeout=9000)
    expect(page).to_have_title(re.compile(r"^00:0[0-6] left · Home · quartapp$"))
    first = page.title()
    expect(page).not_to_have_title(first, timeout=3000)  # it follows the clock
    expect(page).to_have_title(re.compile(r"^00:0[0-5] left · Home · quartapp$"))
    screenshot(page, "warning-title")

    page.get_by_role("button", name="Stay signed in").click()
    expect(countdown_poll(page)).to_have_attribute("data-phase", "extended")
    expect(page).to_have_title("Home · quartapp")

"""The live countdown of the session's time left: polling, extending, expiring."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Request, expect

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
    # Short enough to fit the heading on one line in docs/images/home.png.
    account = make_account(server, "ada", digits=4)
    page = browse(server)
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in", docs="sign-in.png")
    sign_in(page, account)

    widget = countdown(page)
    poll = countdown_poll(page)
    expect(poll).to_have_attribute("hx-get", COUNTDOWN_PATH)
    expect(poll).to_have_attribute("hx-trigger", "every 1s")
    expect(widget).to_contain_text("Time left in this session")
    expect(poll.locator(".ends-at time")).to_have_text(re.compile(r"^\d\d:\d\d UTC$"))
    first = time_left(page)
    assert 590 <= first <= 600, f"a new session shows {first} s left"
    screenshot(page, "home", docs="home.png")

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
    expect(clock(page)).to_have_text(re.compile(r"^9:(5[0-7]|[0-4]\d)$"), timeout=6000)
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
    expect(clock(page)).to_have_text(re.compile(r"^(10:00|9:59|9:58)$"), timeout=3000)
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
    expect(widget.get_by_role("link", name="Sign in again")).to_have_attribute("href", "/")
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

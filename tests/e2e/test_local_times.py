"""Times in the reader's time zone: every absolute time on a page is a <time datetime="...Z">
in UTC, which static/app.js shows in the browser's own zone; without JavaScript it stays
UTC, labelled so."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import Account, Browse, Server
from .pages import sign_in

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]
ZONE = "America/New_York"  # never UTC, whatever the machine's zone
UTC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def moment_of(time: Locator) -> datetime:
    stamp = time.get_attribute("datetime") or ""
    assert UTC_STAMP.match(stamp), stamp
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def local(moment: datetime, pattern: str) -> str:
    return moment.astimezone(ZoneInfo(ZONE)).strftime(pattern)


def open_in(browse: Browse, server: Server, account: Account, **options: object) -> Page:
    page = browse(server, timezone_id=ZONE, locale="en-GB", **options)
    sign_in(page, account)
    return page


def test_times_read_in_the_browsers_time_zone(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    account = make_account(server)
    page = open_in(browse, server, account)

    signed_in = page.locator(".session-facts time")
    started = moment_of(signed_in)
    zone = local(started, "%Z")  # EST or EDT
    expect(signed_in).to_have_text(re.compile(rf"\b{local(started, '%H:%M:%S')} {zone}$"))
    expect(signed_in).to_contain_text(local(started, "%Y"))

    # The countdown's end, rewritten on every poll as it is swapped in.
    until = page.locator(".ends-at time")
    ends = moment_of(until)
    expect(until).to_have_text(f"{local(ends, '%H:%M')} {zone}")
    page.wait_for_timeout(1500)  # a poll or two later, still local
    expect(until).to_have_text(re.compile(rf"^\d\d:\d\d {zone}$"))
    assert "UTC" not in (page.locator("main").text_content() or "")
    screenshot(page, "home")

    # The sessions list: "5 min ago", its exact time in the title, local too.
    page.goto("/sessions")
    first = page.locator("#sessions tbody tr time[data-local-title]").first
    when = moment_of(first)
    expect(first).to_have_attribute("title", re.compile(rf"\b{local(when, '%H:%M:%S')} {zone}$"))
    screenshot(page, "sessions")


def test_without_javascript_times_stay_utc_and_say_so(
    browse: Browse, server: Server, make_account: Callable[..., Account]
) -> None:
    account = make_account(server)
    page = open_in(browse, server, account, javascript=False)
    signed_in = page.locator(".session-facts time")
    started = moment_of(signed_in)
    expect(signed_in).to_have_text(started.strftime("%d %b %Y, %H:%M:%S UTC"))
    until = page.locator(".ends-at time")
    expect(until).to_have_text(moment_of(until).strftime("%H:%M UTC"))

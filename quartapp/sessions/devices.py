"""A short, readable name for the device behind a User-Agent, such as "Firefox 128 on Linux".

Only what a person needs to recognise their own sessions: the browser family with its major
version, and the operating system. The name is stored in every session record, so it stays
short, and the raw header is never kept. Rules are checked in order, because browsers
borrow each other's tokens: Edge, Opera and Samsung Internet all say "Chrome", Chrome says
"Safari", and every iPhone says "like Mac OS X".
"""

from __future__ import annotations

import re

UNKNOWN_BROWSER = "Unknown browser"
# Enough for every real browser; a longer header is cut before any pattern reads it.
_MAX_LENGTH = 512

_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("Edge", r"\b(?:Edg|Edge|EdgA|EdgiOS)/(\d+)"),
        ("Samsung Internet", r"\bSamsungBrowser/(\d+)"),
        ("Opera", r"\b(?:OPR|OPT|OPiOS)/(\d+)"),
        ("Opera", r"^Opera/.*\bVersion/(\d+)"),
        ("Firefox", r"\b(?:Firefox|FxiOS)/(\d+)"),
        ("Headless Chrome", r"\bHeadlessChrome/(\d+)"),
        ("Chromium", r"\bChromium/(\d+)"),
        ("Chrome", r"\b(?:Chrome|CriOS)/(\d+)"),
        ("Safari", r"\bVersion/(\d+)[\d.]* (?:Mobile/\w+ )?Safari/"),
        ("Internet Explorer", r"\bMSIE (\d+)|\bTrident/.*\brv:(\d+)"),
    )
)

_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("Windows", r"\bWindows\b"),
        ("iPadOS", r"\biPad\b"),
        ("iOS", r"\b(?:iPhone|iPod)\b"),
        ("ChromeOS", r"\bCrOS\b"),
        ("Android", r"\bAndroid\b"),
        ("macOS", r"\bMac OS X\b|\bMacintosh\b"),
        ("Linux", r"\bLinux\b|\bX11\b"),
    )
)


def _browser(agent: str) -> str | None:
    for name, pattern in _BROWSERS:
        match = pattern.search(agent)
        if match:
            version = next((group for group in match.groups() if group), "")
            # A version of five digits or more is no browser's: leave it out of the name.
            return f"{name} {int(version)}" if 0 < len(version) <= 4 else name
    return None


def _system(agent: str) -> str | None:
    return next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)


def describe_device(user_agent: str | None) -> str:
    """A name such as "Chrome 131 on Windows", "Safari 17 on iOS" or "Unknown browser"."""
    agent = (user_agent or "")[:_MAX_LENGTH]
    browser = _browser(agent) or UNKNOWN_BROWSER
    system = _system(agent)
    return f"{browser} on {system}" if system else browser

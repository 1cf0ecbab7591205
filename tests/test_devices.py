"""Readable device names from real User-Agent headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartapp.sessions.devices import describe_device

AGENTS = {
    # Chrome
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36": "Chrome 131 on Windows",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36": "Chrome 130 on macOS",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36": "Chrome 129 on Linux",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36": "Chrome 131 on Android",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1": "Chrome 131 on iOS",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36": "Chrome 131 on ChromeOS",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.6778.33 Safari/537.36": "Headless Chrome 131 on Linux",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Ubuntu Chromium/37.0.2062.94 Chrome/37.0.2062.94 Safari/537.36": "Chromium 37 on Linux",
    # Edge
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.51": "Edge 131 on Windows",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582": "Edge 18 on Windows",
    "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.39 Mobile Safari/537.36 EdgA/131.0.2903.48": "Edge 131 on Android",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 EdgiOS/131.2903.45 Mobile/15E148 "
    "Safari/605.1.15": "Edge 131 on iOS",
    # Firefox
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 "
    "Firefox/133.0": "Firefox 133 on Windows",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
    "Firefox/128.0": "Firefox 128 on Linux",
    "Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:133.0) Gecko/20100101 "
    "Firefox/133.0": "Firefox 133 on Linux",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 "
    "Firefox/133.0": "Firefox 133 on macOS",
    "Mozilla/5.0 (Android 15; Mobile; rv:133.0) Gecko/133.0 "
    "Firefox/133.0": "Firefox 133 on Android",
    "Mozilla/5.0 (iPad; CPU OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "FxiOS/133.0 Mobile/15E148 Safari/605.1.15": "Firefox 133 on iPadOS",
    # Safari
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15": "Safari 18 on macOS",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1": "Safari 18 on iOS",
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Mobile/15E148 Safari/604.1": "Safari 17 on iPadOS",
    "Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1": "Safari 12 on iOS",
    # Opera
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36 OPR/114.0.0.0": "Opera 114 on Windows",
    "Mozilla/5.0 (Linux; Android 10; VOG-L29) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Mobile Safari/537.36 OPR/85.0.0.0": "Opera 85 on Android",
    "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.229 Version/11.62": "Opera 11 on Windows",
    # Samsung Internet
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36": "Samsung Internet 26 on Android",
    # Internet Explorer
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko": (
        "Internet Explorer 11 on Windows"
    ),
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)": (
        "Internet Explorer 8 on Windows"
    ),
    # Not a browser we know
    "curl/8.11.0": "Unknown browser",
    "python-httpx/0.28.1": "Unknown browser",
    "Mozilla/5.0 (X11; Linux x86_64) SomeNewBrowser/1.0": "Unknown browser on Linux",
    "": "Unknown browser",
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/" + "9" * 50: "Chrome on Linux",
}


@pytest.mark.parametrize(("agent", "expected"), AGENTS.items())
def test_describe_device(agent: str, expected: str) -> None:
    assert describe_device(agent) == expected


def test_no_header() -> None:
    assert describe_device(None) == "Unknown browser"


@given(st.text(max_size=2000))
def test_any_header_gives_a_short_name(agent: str) -> None:
    name = describe_device(agent)
    assert name
    assert len(name) <= 60
    assert "\n" not in name


def test_a_huge_header_is_cut_before_matching() -> None:
    agent = "Mozilla/5.0 (Windows NT 10.0) " + "x" * 100_000 + " Chrome/131.0"
    assert describe_device(agent) == "Unknown browser on Windows"

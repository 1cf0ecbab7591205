"""The countdown poll's fast path answers exactly as the Quart route would, or steps aside."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart, request_started
from quart.testing import QuartClient

from .conftest import Auth

# A poll from a page that shows the live phase, as the polled element sends it.
HTMX = {"HX-Request": "true", "X-Countdown-Shown": "live"}
IGNORED_HEADERS = {"content-length", "date", "server"}


class QuartRequests:
    """Counts the requests that went through Quart's request cycle."""

    def __init__(self, app: Quart) -> None:
        self.count = 0
        request_started.connect(self._started, app)

    async def _started(self, *_: Any, **__: Any) -> None:
        self.count += 1


def comparable(text: str) -> str:
    text = re.sub(r"PT\d+S\">\d+:\d\d", 'PT_S">_', text)
    return re.sub(
        r'datetime="[\d:TZ+-]+" data-local="time">\d\d:\d\d UTC', 'datetime="_">_ UTC', text
    )


def headers_of(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in IGNORED_HEADERS}


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_live_poll_skips_quart_and_matches_the_route(
    app: Quart, client: QuartClient, auth: Auth, scheme: str
) -> None:
    await auth.sign_up()
    quart = QuartRequests(app)
    fast = await client.get("/session/countdown", headers=HTMX, scheme=scheme)
    assert quart.count == 0
    # Not htmx: the Quart route answers.
    slow = await client.get("/session/countdown", scheme=scheme)
    assert quart.count == 1
    assert ("strict-transport-security" in headers_of(fast)) == (scheme == "https")
    assert fast.status_code == slow.status_code == 200
    fast_text = await fast.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in fast_text
    assert "hx-swap-oob" not in fast_text, "the live phase goes on: nothing else changes"
    assert comparable(fast_text) == comparable(await slow.get_data(as_text=True))
    assert headers_of(fast) == headers_of(slow)
    assert int(fast.headers["Content-Length"]) == len(fast_text.encode())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HX-Request": "true", "HX-Boosted": "true"},
        {"HX-Request": "true", "HX-History-Restore-Request": "true"},
        {"HX-Request": "false"},
        # Only a page that shows the live phase can stay in it without other updates.
        {"HX-Request": "true"},
        {"HX-Request": "true", "X-Countdown-Shown": "warning"},
        {"HX-Request": "true", "X-Countdown-Shown": "nonsense"},
    ],
)
async def test_other_requests_go_to_quart(
    app: Quart, client: QuartClient, auth: Auth, headers: dict[str, str]
) -> None:
    await auth.sign_up()
    quart = QuartRequests(app)
    assert (await client.get("/session/countdown", headers=headers)).status_code == 200
    assert quart.count == 1


async def test_anonymous_and_forged_cookies_go_to_quart(app: Quart, client: QuartClient) -> None:
    quart = QuartRequests(app)
    anonymous = await client.get("/session/countdown", headers=HTMX)
    assert "Your session has expired." in await anonymous.get_data(as_text=True)
    client.set_cookie("localhost", "quartapp_session", "forged")
    forged = await client.get("/session/countdown", headers=HTMX)
    assert "Your session has expired." in await forged.get_data(as_text=True)
    assert any("quartapp_session=;" in c for c in forged.headers.getlist("Set-Cookie"))
    assert quart.count == 2


async def test_warning_state_with_its_form_comes_from_quart(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(SESSION_WARNING_AT=600)
    client = app.test_client()
    await Auth(client).sign_up()
    quart = QuartRequests(app)
    text = await (await client.get("/session/countdown", headers=HTMX)).get_data(as_text=True)
    assert "Stay signed in" in text
    assert 'name="csrf_token"' in text
    assert quart.count == 1


async def test_other_paths_and_methods_are_untouched(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    quart = QuartRequests(app)
    await client.get("/home", headers=HTMX)
    response = await client.post("/session/countdown", headers=HTMX)
    assert response.status_code == 405
    assert quart.count == 2


async def test_a_page_that_showed_the_warning_hears_the_session_was_extended(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    """Activity elsewhere brought the session back above the threshold: the status says so
    once, and the "Stay signed in" button is left in place (it may have the focus)."""
    await auth.sign_up()
    headers = {"HX-Request": "true", "X-Countdown-Shown": "warning"}
    text = await (await client.get("/session/countdown", headers=headers)).get_data(as_text=True)
    assert 'data-phase="extended"' in text
    assert '<p id="countdown-status" hx-swap-oob="innerHTML">' in text
    assert "Your session has been extended." in text
    assert 'id="countdown-actions"' not in text
    headers["X-Countdown-Shown"] = "extended"
    text = await (await client.get("/session/countdown", headers=headers)).get_data(as_text=True)
    assert 'data-phase="extended"' in text
    assert "hx-swap-oob" not in text, "nothing to announce again"


async def test_the_warning_is_sent_once_then_only_the_clock(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(SESSION_WARNING_AT=600)
    client = app.test_client()
    await Auth(client).sign_up()
    poll = {"HX-Request": "true", "X-Countdown-Shown": "live"}
    text = await (await client.get("/session/countdown", headers=poll)).get_data(as_text=True)
    assert "Your session is about to end." in text
    assert "Stay signed in" in text
    poll["X-Countdown-Shown"] = "warning"
    text = await (await client.get("/session/countdown", headers=poll)).get_data(as_text=True)
    assert 'data-phase="warning"' in text
    assert "hx-swap-oob" not in text
    assert "Stay signed in" not in text, "the button stays as it is, focus and all"


async def test_the_expired_answer_stops_polling_and_updates_the_page(
    app: Quart, client: QuartClient
) -> None:
    poll = {"HX-Request": "true", "X-Countdown-Shown": "warning"}
    text = await (await client.get("/session/countdown", headers=poll)).get_data(as_text=True)
    assert "hx-get" not in text.split("</div>")[0]
    assert "hx-trigger" not in text
    assert "Your session has expired." in text
    assert "Sign in again" in text
    assert '<ul id="account-nav" hx-swap-oob="outerHTML">' in text
    assert "Sign out" not in text

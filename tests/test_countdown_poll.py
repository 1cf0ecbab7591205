"""The countdown poll's fast path answers exactly as the Quart route would, or steps aside."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart, request_started
from quart.testing import QuartClient

from .conftest import Auth

HTMX = {"HX-Request": "true"}
IGNORED_HEADERS = {"content-length", "date", "server"}


class QuartRequests:
    """Counts the requests that went through Quart's request cycle."""

    def __init__(self, app: Quart) -> None:
        self.count = 0
        request_started.connect(self._started, app)

    async def _started(self, *_: Any, **__: Any) -> None:
        self.count += 1


def comparable(text: str) -> str:
    return re.sub(r"PT\d+S\">\d+:\d\d", 'PT_S">_', text)


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

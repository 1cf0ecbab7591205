"""Oversized Cookie headers are refused at the app's entry point, before any route or
middleware parses them (quartapp/web/cookie_limit.py). The same over real sockets is in
tests/test_attacks.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp.web import cookie_limit

from .conftest import Auth, session_cookie
from .support.http import COUNTDOWN_HEADERS

LIMIT = 8 * 1024
# About what the black-box attack sent: 390 KB of cookies.
HUGE = "; ".join(f"c{n}={'x' * 1000}" for n in range(390))


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/", {}),
        ("GET", "/home", {}),
        ("GET", "/session/countdown", COUNTDOWN_HEADERS),
        ("POST", "/api/v1/signin", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
)
async def test_an_oversized_cookie_header_is_a_431_on_every_route(
    client: QuartClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await client.open(path, method=method, headers={**headers, "Cookie": HUGE})
    assert response.status_code == 431
    body = await response.get_data(as_text=True)
    assert body == cookie_limit.MESSAGE.format(limit=LIMIT)
    assert response.headers["Cache-Control"] == "no-store"


async def test_json_clients_get_the_431_as_json(client: QuartClient) -> None:
    response = await client.get("/healthz", headers={"Cookie": HUGE, "Accept": "application/json"})
    assert response.status_code == 431
    assert (await response.get_json()) == {
        "code": "cookies_too_large",
        "message": cookie_limit.API_MESSAGE.format(limit=LIMIT),
    }
    assert "browser" not in cookie_limit.API_MESSAGE  # API wording, not the page's


async def test_the_limit_counts_every_cookie_header_and_spares_what_fits(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    assert (await auth.sign_up()).status_code == 303
    session = f"quartapp_session={session_cookie(client)}"
    fits = f"{session}; pad={'x' * (LIMIT - len(session) - 6)}"
    assert len(fits) == LIMIT
    copy = app.test_client(use_cookies=False)
    assert (await copy.get("/home", headers={"Cookie": fits})).status_code == 200
    assert (await copy.get("/home", headers={"Cookie": fits + "x"})).status_code == 431
    # Split over two headers (as HTTP/2 sends cookies), they count together.
    split = [("Cookie", session), ("Cookie", f"pad={'x' * LIMIT}")]
    assert (await copy.get("/home", headers=split)).status_code == 431
    # Refused, the session is untouched: without the padding it works as before.
    assert (await copy.get("/home", headers={"Cookie": session})).status_code == 200


async def test_the_limit_is_a_setting(make_app: Callable[..., Any]) -> None:
    app: Quart = await make_app(COOKIE_HEADER_MAX_BYTES=2048)
    client = app.test_client()
    assert (await client.get("/healthz", headers={"Cookie": "a=" + "x" * 2046})).status_code == 200
    refused = await client.get("/healthz", headers={"Cookie": "a=" + "x" * 2047})
    assert refused.status_code == 431
    assert "2048 bytes" in await refused.get_data(as_text=True)

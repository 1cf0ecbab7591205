"""Redis or MySQL going away: a clear 503, the process stays up, and it recovers by itself.

The services are real; a TCP proxy in front of each one is what goes down and comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from quart import Quart
from quart.testing import QuartClient
from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError

from quartapp.accounts.models import User

from .conftest import PASSWORD, REDIS_URL, Auth, csrf_from
from .support.tcp_proxy import TcpProxy

HTMX = {"HX-Request": "true"}
JSON = {"Accept": "application/json"}
# Far longer than any answer should take: only here so a hang fails instead of stalling CI.
HANG = 30


async def _proxy(url: str) -> TcpProxy:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    await proxy.start()
    return proxy


def _through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = proxy.url_host
    return parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    proxy = await _proxy(REDIS_URL)
    yield proxy
    await proxy.stop()


@pytest.fixture
async def mysql_proxy(database: str) -> AsyncIterator[TcpProxy]:
    proxy = await _proxy(database)
    yield proxy
    await proxy.stop()


async def get(client: QuartClient, path: str, **headers: str) -> Any:
    return await asyncio.wait_for(client.get(path, headers=headers), HANG)


async def readyz_details(client: QuartClient) -> Any:
    """/readyz as a monitor on this machine gets it: with each service's answer."""
    local = {"client": ("127.0.0.1", 50000)}
    return await asyncio.wait_for(client.get("/readyz", scope_base=local), HANG)


async def test_redis_down_gives_503_everywhere_and_recovers(
    make_app: Callable[..., Any], redis_proxy: TcpProxy
) -> None:
    app: Quart = await make_app(REDIS_URL=_through(REDIS_URL, redis_proxy))
    client = app.test_client()
    auth = Auth(client)
    await auth.sign_up()
    await redis_proxy.stop()

    page = await get(client, "/home")
    assert page.status_code == 503
    assert "The session service is not answering" in await page.get_data(as_text=True)
    assert page.headers["Retry-After"] == "5"

    fragment = await get(client, "/session/countdown", **HTMX)
    assert fragment.status_code == 503
    text = await fragment.get_data(as_text=True)
    assert 'hx-swap-oob="true"' in text
    assert "<html" not in text

    api = await get(client, "/home", **JSON)
    assert api.status_code == 503
    assert "session service" in (await api.get_json())["message"]

    ready = await readyz_details(client)
    assert ready.status_code == 503
    assert (await ready.get_json())["redis"].startswith("unavailable")
    assert (await get(client, "/healthz")).status_code == 200

    await redis_proxy.start()
    assert (await get(client, "/home")).status_code == 200  # the same session, still valid
    assert (await get(client, "/readyz")).status_code == 200


async def test_sign_up_with_redis_down_leaves_no_user(
    make_app: Callable[..., Any], redis_proxy: TcpProxy
) -> None:
    app: Quart = await make_app(REDIS_URL=_through(REDIS_URL, redis_proxy))
    client = app.test_client()
    token = await csrf_from(client, "/register")
    await redis_proxy.stop()
    response = await asyncio.wait_for(
        client.post(
            "/api/v1/signup",
            form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
        ),
        HANG,
    )
    assert response.status_code == 503
    assert "not answering" in await response.get_data(as_text=True)
    assert await User.filter(email="ada@example.com").count() == 0


async def test_a_sign_in_while_redis_is_down_is_a_503_whatever_the_password(
    make_app: Callable[..., Any], redis_proxy: TcpProxy
) -> None:
    """No sign-in can start a session while Redis is away, so none is answered about its
    credentials: a right password, a wrong one and an unknown address all get the same
    503, before any password is checked. (With the sign-in rules off, as here, the first
    Redis call used to come after the check: a wrong password or an account that had just
    gone read as 401 "Incorrect email or password" during an outage.)"""
    app: Quart = await make_app(REDIS_URL=_through(REDIS_URL, redis_proxy))
    assert (await Auth(app.test_client()).sign_up()).status_code == 303
    checked: list[str] = []
    hasher = app.extensions["quartapp.passwords"]
    original = hasher.verify

    async def verify(password: str, *args: Any, **kwargs: Any) -> bool:
        checked.append(password)
        return bool(await original(password, *args, **kwargs))

    hasher.verify = verify
    visitor = Auth(app.test_client())
    token = await csrf_from(visitor.client, "/")  # the sign-in page needs no Redis
    await redis_proxy.stop()
    for email, password in [
        ("ada@example.com", PASSWORD),
        ("ada@example.com", "not the password"),
        ("nobody@example.com", PASSWORD),
    ]:
        for headers in ({}, JSON):
            response = await asyncio.wait_for(
                visitor.client.post(
                    "/api/v1/signin",
                    form={"email": email, "password": password, "csrf_token": token},
                    headers=headers,
                ),
                HANG,
            )
            assert response.status_code == 503, (email, password, headers)
            assert "session service" in (await response.get_data(as_text=True)).lower()
    assert checked == []  # refused before any bcrypt work
    await redis_proxy.start()
    assert (await asyncio.wait_for(visitor.sign_in(), HANG)).status_code == 303


async def test_hung_redis_times_out_into_503(
    make_app: Callable[..., Any], redis_proxy: TcpProxy
) -> None:
    app: Quart = await make_app(REDIS_URL=_through(REDIS_URL, redis_proxy), REDIS_TIMEOUT=0.5)
    client = app.test_client()
    auth = Auth(client)
    await auth.sign_up()
    await redis_proxy.stop()
    redis_proxy.blackhole = True
    await redis_proxy.start()
    assert (await get(client, "/home")).status_code == 503
    await redis_proxy.stop()
    redis_proxy.blackhole = False
    await redis_proxy.start()
    assert (await get(client, "/home")).status_code == 200


async def test_mysql_down_keeps_signed_in_pages_and_recovers(
    make_app: Callable[..., Any], mysql_proxy: TcpProxy, database: str
) -> None:
    app: Quart = await make_app(DATABASE_URL=_through(database, mysql_proxy))
    client = app.test_client()
    auth = Auth(client)
    await auth.sign_up()
    visitor = Auth(app.test_client())
    await mysql_proxy.stop()

    assert (await get(client, "/home")).status_code == 200  # needs no MySQL
    assert (await get(client, "/session/countdown", **HTMX)).status_code == 200

    response = await asyncio.wait_for(visitor.sign_in(), HANG)
    assert response.status_code == 503
    assert "account database" in await response.get_data(as_text=True)
    response = await asyncio.wait_for(visitor.sign_up("grace@example.com"), HANG)
    assert response.status_code == 503
    ready = await readyz_details(client)
    assert ready.status_code == 503
    assert (await ready.get_json())["mysql"].startswith("unavailable")

    await mysql_proxy.start()
    response = await asyncio.wait_for(visitor.sign_in(), HANG)
    assert response.status_code == 303
    assert (await get(client, "/readyz")).status_code == 200


async def test_sign_ins_refused_by_a_mysql_outage_count_against_nobody(
    make_app: Callable[..., Any], mysql_proxy: TcpProxy, database: str
) -> None:
    """Only wrong passwords count: a 503 gives its reserved attempt back, so an outage
    does not lock anyone out once MySQL is back."""
    app: Quart = await make_app(
        DATABASE_URL=_through(database, mysql_proxy), THROTTLE_SIGN_IN_PER_ACCOUNT_IP=[2, 600]
    )
    await Auth(app.test_client()).sign_up()
    visitor = Auth(app.test_client())
    await mysql_proxy.stop()
    for _ in range(4):
        assert (await asyncio.wait_for(visitor.sign_in(), HANG)).status_code == 503
    await mysql_proxy.start()
    assert (await asyncio.wait_for(visitor.sign_in(), HANG)).status_code == 303


@pytest.mark.parametrize(
    "outage",
    [ClusterDownError("The cluster is down"), RedisConnectionError("Connection refused")],
    ids=["cluster down", "connection refused"],
)
async def test_an_outage_while_the_session_is_saved_is_a_503(
    app: Quart, client: QuartClient, monkeypatch: pytest.MonkeyPatch, outage: Exception
) -> None:
    """Saving the session runs after the view, past the app's error handlers: Quart wraps
    what it raises in a 500. A Redis outage there (a Cluster failing over while someone
    signs in) is still a 503, as anywhere else."""
    auth = Auth(client)
    await auth.sign_up()
    await auth.post("/logout")

    async def save_data(*args: Any, **kwargs: Any) -> None:
        raise outage

    # Signing in to an unverified account notes that in the new session's data.
    monkeypatch.setattr(app.extensions["quartapp.sessions"].store, "save_data", save_data)
    response = await auth.sign_in(**JSON)
    assert response.status_code == 503
    assert "session service" in (await response.get_data(as_text=True)).lower()

"""The server-side session: cookie, Redis record, deadlines, countdown and extension."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart, session
from quart.testing import QuartClient
from redis.asyncio import Redis
from tortoise import connections

from quartapp.sessions.store import TAG_LENGTH, key_id_for

from .conftest import PASSWORD, Auth, csrf_from, session_cookie

HTMX = {"HX-Request": "true"}


def set_cookie_headers(response: Any) -> list[str]:
    return list(response.headers.getlist("Set-Cookie"))


async def live_keys(redis: Redis, prefix: str) -> dict[str, str]:
    """The session records and bucket indexes under ``prefix`` (not the throttle's keys)."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}{{*")]
    session_keys = [key for key in keys if re.search(r"\}(s:|ix$)", key)]
    return {key: await redis.type(key) for key in session_keys}


async def record_pttl(app: Quart, client: QuartClient, redis: Redis) -> int:
    token = app.extensions["QUART_AUTH"][0].load_token(session_cookie(client), app)
    store = get_sessions_store(app)
    return int(await redis.pttl(store.record_key_for(token)))


def get_sessions_store(app: Quart) -> Any:
    return app.extensions["quartapp.sessions"].store


async def test_cookie_is_http_only_lax_and_holds_no_user_id(auth: Auth) -> None:
    response = await auth.sign_up()
    [cookie] = [c for c in set_cookie_headers(response) if c.startswith("quartapp_session=")]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Max-Age" not in cookie  # a browser-session cookie; Redis decides when it ends
    assert "Secure" not in cookie  # this test app runs with COOKIE_SECURE off


async def test_secure_cookie_uses_host_prefix(make_app: Callable[..., Any]) -> None:
    app = await make_app(COOKIE_SECURE=True)
    client = app.test_client()
    page = await client.get("/register", scheme="https")
    [csrf_cookie] = set_cookie_headers(page)
    assert csrf_cookie.startswith("__Host-quartapp_csrf=")
    assert "Secure" in csrf_cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))
    assert token
    response = await client.post(
        "/api/v1/signup",
        form={"email": "ada@example.com", "password": "a long password", "csrf_token": token[1]},
        scheme="https",
    )
    assert response.status_code == 303
    cookies = [c for c in set_cookie_headers(response) if c.startswith("__Host-quartapp_session=")]
    assert len(cookies) == 1
    assert "Secure" in cookies[0]
    assert "Path=/" in cookies[0]
    assert "Domain" not in cookies[0]


async def test_redis_never_sees_the_token(
    app: Quart,
    client: QuartClient,
    auth: Auth,
    redis: Redis,
    raw_redis: Redis,
    redis_prefix: str,
) -> None:
    await auth.sign_up()
    token = app.extensions["QUART_AUTH"][0].load_token(session_cookie(client), app)
    random_part = token[TAG_LENGTH:]
    assert len(random_part) == 43  # 256 bits, base64url
    keys = await live_keys(redis, redis_prefix)
    assert sorted(keys.values()) == ["hash", "string"]
    for key, kind in keys.items():
        assert random_part not in key
        value = await raw_redis.dump(key)
        assert value is not None
        assert random_part.encode() not in value
        if kind == "string":
            assert key == get_sessions_store(app).record_key(token[:TAG_LENGTH], key_id_for(token))
            assert key_id_for(token) == base64.urlsafe_b64encode(
                hashlib.sha256(token.encode()).digest()[:16]
            ).decode().rstrip("=")
    home = await (await client.get("/home")).get_data(as_text=True)
    assert token not in home


async def test_every_sign_in_gets_a_new_token_and_ends_the_old_one(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    first = session_cookie(client)
    token = await csrf_from(client, "/home")  # signing in again from a signed-in page
    response = await client.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    second = session_cookie(client)
    assert first
    assert second
    assert first != second
    replay = app.test_client()
    replay.set_cookie("localhost", "quartapp_session", first)
    assert (await replay.get("/home")).status_code == 303


async def test_copied_cookie_dies_at_sign_out(app: Quart, client: QuartClient, auth: Auth) -> None:
    await auth.sign_up()
    thief = app.test_client()
    thief.set_cookie("localhost", "quartapp_session", session_cookie(client) or "")
    assert (await thief.get("/home")).status_code == 200
    await auth.post("/logout")
    response = await thief.get("/home")
    assert response.status_code == 303
    # and the dead cookie is removed from the browser
    assert any(
        c.startswith("quartapp_session=;") or "Max-Age=0" in c for c in set_cookie_headers(response)
    )


async def test_tampered_cookie_is_refused_and_dropped(app: Quart, client: QuartClient) -> None:
    client.set_cookie("localhost", "quartapp_session", "forged.value.signature")
    response = await client.get("/home")
    assert response.status_code == 303
    assert any("quartapp_session=;" in c for c in set_cookie_headers(response))


async def test_ttl_is_the_smaller_of_idle_and_absolute(
    make_app: Callable[..., Any], redis: Redis
) -> None:
    app = await make_app(SESSION_IDLE_TIMEOUT=600, SESSION_ABSOLUTE_TIMEOUT=5)
    client = app.test_client()
    await Auth(client).sign_up()
    assert 4000 < await record_pttl(app, client, redis) <= 5000
    countdown = await (await client.get("/session/countdown")).get_data(as_text=True)
    assert "0:05" in countdown or "0:04" in countdown


async def test_countdown_reads_without_extending_and_pages_slide(
    make_app: Callable[..., Any], redis: Redis
) -> None:
    app = await make_app(SESSION_IDLE_TIMEOUT=3)
    client = app.test_client()
    await Auth(client).sign_up()
    await asyncio.sleep(1.2)
    response = await client.get("/session/countdown", headers=HTMX)
    assert response.headers["Cache-Control"] == "no-store"
    assert await record_pttl(app, client, redis) < 2000
    await client.get("/home")
    assert await record_pttl(app, client, redis) > 2800


async def test_static_files_and_unknown_pages_do_not_slide(
    make_app: Callable[..., Any], redis: Redis
) -> None:
    """Only real page loads and posts count as activity: a stylesheet, a favicon or a 404
    does not keep a session alive."""
    app = await make_app(SESSION_IDLE_TIMEOUT=3)
    client = app.test_client()
    await Auth(client).sign_up()
    await asyncio.sleep(1.2)
    for path in ("/static/app.css", "/static/favicon.svg", "/no-such-page", "/static/nope.js"):
        await client.get(path)
    assert await record_pttl(app, client, redis) < 2000
    await client.get("/home")
    assert await record_pttl(app, client, redis) > 2800


async def test_sessions_per_account_are_capped_ending_the_oldest(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(SESSION_MAX_PER_USER=3)
    clients = [app.test_client() for _ in range(5)]
    await Auth(clients[0]).sign_up()
    for client in clients[1:]:
        assert (await Auth(client).sign_in()).status_code == 303
    alive = [
        (await client.get("/home", headers={"Accept": "application/json"})).status_code
        for client in clients
    ]
    assert alive == [401, 401, 200, 200, 200]
    listed = await clients[-1].get("/sessions", headers={"Accept": "application/json"})
    assert len((await listed.get_json())["sessions"]) == 3


async def test_extend_slides_up_to_the_absolute_limit(
    make_app: Callable[..., Any], redis: Redis
) -> None:
    app = await make_app(SESSION_IDLE_TIMEOUT=2, SESSION_ABSOLUTE_TIMEOUT=3, SESSION_WARNING_AT=60)
    client = app.test_client()
    auth = Auth(client)
    signing_up = time.monotonic()
    await auth.sign_up()
    home = await (await client.get("/home")).get_data(as_text=True)
    assert "Stay signed in" in home
    token = await csrf_from(client, "/home")  # the last page load: 2 s from here
    await asyncio.sleep(1.1)
    sent = time.monotonic()
    response = await client.post(
        "/session/extend", headers={**HTMX, "X-CSRF-Token": token}, form={}
    )
    fragment = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<div id="countdown-clock"')
    pttl = await record_pttl(app, client, redis)
    read = time.monotonic()
    # Slid when the request came in: 2 s from then, but never past 3 s after the sign-up
    # (however long the setup took on this machine). Not slid, the deadline would be at
    # most 0.9 s after the request (2 s after the last page load, 1.1 s or more before).
    slid_to = min(sent + 2.0, signing_up + 3.0)
    assert (slid_to - read) * 1000 - 50 < pttl <= 2000
    assert pttl > (sent + 0.9 - read) * 1000 + 50
    await asyncio.sleep(1.2)
    response = await client.post(
        "/session/extend", headers={"Accept": "application/json", "X-CSRF-Token": token}
    )
    # capped by the absolute deadline (3 s after sign-in), not idle (2 s from now)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["expires_in"] <= 1
    assert await record_pttl(app, client, redis) < 1000
    assert "Stay signed in" not in await (await client.get("/session/countdown")).get_data(
        as_text=True
    )


async def test_expired_session_stops_the_widget_and_redirects(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(SESSION_IDLE_TIMEOUT=1)
    client = app.test_client()
    await Auth(client).sign_up()
    live = await (await client.get("/session/countdown", headers=HTMX)).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in live
    await asyncio.sleep(1.3)
    expired = await client.get("/session/countdown", headers=HTMX)
    text = await expired.get_data(as_text=True)
    assert expired.status_code == 200
    assert "Your session has expired." in text
    assert "hx-get" not in text
    assert "hx-trigger" not in text
    assert 'href="/"' in text
    response = await client.post("/session/extend", headers=HTMX)
    assert response.status_code in (204, 403)
    home = await client.get("/home", headers=HTMX)
    assert home.headers["HX-Redirect"] == "/"


async def test_countdown_widget_warns_under_a_minute(make_app: Callable[..., Any]) -> None:
    app = await make_app(SESSION_IDLE_TIMEOUT=45)
    client = app.test_client()
    await Auth(client).sign_up()
    text = await (await client.get("/session/countdown", headers=HTMX)).get_data(as_text=True)
    assert re.search(r">00:4[45]<", text)
    assert "Your session is about to end." in text
    assert "Stay signed in" in text
    assert 'role="timer"' in text


async def test_countdown_as_json(client: QuartClient, auth: Auth) -> None:
    anonymous = await client.get("/session/countdown", headers={"Accept": "application/json"})
    assert await anonymous.get_json() == {"expires_in": 0, "expired": True}
    await auth.sign_up()
    signed_in = await client.get("/session/countdown", headers={"Accept": "application/json"})
    data = await signed_in.get_json()
    assert data["expired"] is False
    assert 598 <= data["expires_in"] <= 600


async def test_per_user_index_tracks_sessions(
    app: Quart, client: QuartClient, auth: Auth, redis: Redis
) -> None:
    await auth.sign_up()
    store = get_sessions_store(app)
    other = Auth(app.test_client())
    await other.sign_in()
    token = app.extensions["QUART_AUTH"][0].load_token(session_cookie(client), app)
    record = await store.load(token, touch=False)
    # One bucket, shared with other users (none here), one field per session of this user.
    [index] = [key for key in await live_keys(redis, store.prefix) if key.endswith("}ix")]
    assert index == store.bucket_index(store.tags(record.user_id)[0])
    fields = await redis.hgetall(index)
    assert len(fields) == 2
    assert fields[record.key_id] == str(record.user_id)
    await auth.post("/logout")
    assert record.key_id not in await redis.hgetall(index)


class Counter:
    """Counts round trips to Redis and queries to MySQL made by one app."""

    def __init__(self, app: Quart, monkeypatch: pytest.MonkeyPatch) -> None:
        self.redis = 0
        self.mysql = 0
        self._app = app
        self._monkeypatch = monkeypatch

    async def install(self) -> None:
        connection = connections.get("default")
        # What goes over the wire: one write per command, or per pipeline (whichever way
        # the command was issued, redis-py's client call or a script's direct EVALSHA).
        # redis-py writes each with writelines on its connection's stream; the MySQL
        # driver, counted below, writes with write.
        original_send = asyncio.StreamWriter.writelines

        def count_send(writer: asyncio.StreamWriter, *args: Any, **kwargs: Any) -> Any:
            self.redis += 1
            return original_send(writer, *args, **kwargs)

        self._monkeypatch.setattr(asyncio.StreamWriter, "writelines", count_send)
        for name in ("execute_query", "execute_insert", "execute_script", "execute_many"):
            original = getattr(connection, name)

            def counting(original: Any = original) -> Any:
                async def run(*args: Any, **kwargs: Any) -> Any:
                    self.mysql += 1
                    return await original(*args, **kwargs)

                return run

            self._monkeypatch.setattr(connection, name, counting())


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/home", {}), ("/session/countdown", HTMX), ("/logout", {})],
)
async def test_authenticated_request_budget(
    app: Quart,
    client: QuartClient,
    auth: Auth,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    headers: dict[str, str],
) -> None:
    await auth.sign_up()
    counter = Counter(app, monkeypatch)
    await counter.install()
    response = await client.get(path, headers=headers)
    assert response.status_code == 200
    assert (counter.redis, counter.mysql) == (1, 0)


async def test_sign_in_makes_one_query(
    app: Quart, client: QuartClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    await auth.sign_up()
    await auth.post("/logout")
    token = await csrf_from(client, "/")
    counter = Counter(app, monkeypatch)
    await counter.install()
    response = await client.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": "correct horse battery", "csrf_token": token},
    )
    assert response.status_code == 303
    assert counter.mysql == 1


async def test_session_data_round_trips(make_app: Callable[..., Any]) -> None:
    app = await make_app()

    @app.post("/test/remember")
    async def remember() -> str:
        session["theme"] = "dark"
        return "ok"

    @app.get("/test/recall")
    async def recall() -> str:
        return str(session.get("theme"))

    remember.access = recall.access = "public"  # type: ignore[attr-defined]
    client = app.test_client()
    await Auth(client).sign_up()
    token = await csrf_from(client, "/home")
    assert (await client.post("/test/remember", headers={"X-CSRF-Token": token})).status_code == 200
    assert await (await client.get("/test/recall")).get_data(as_text=True) == "dark"


async def test_anonymous_visitors_cost_no_redis_record(
    client: QuartClient, redis: Redis, redis_prefix: str
) -> None:
    for path in ("/", "/register", "/session/countdown", "/logout"):
        await client.get(path)
    assert await live_keys(redis, redis_prefix) == {}


async def test_more_concurrent_requests_than_redis_connections_wait_their_turn(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(REDIS_MAX_CONNECTIONS=4)
    client = app.test_client()
    await Auth(client).sign_up()
    responses = await asyncio.gather(*(client.get("/home") for _ in range(150)))
    assert {response.status_code for response in responses} == {200}

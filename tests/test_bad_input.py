"""Every bad input gets a clear message and a 4xx, and writes nothing."""

from __future__ import annotations

import pytest
from quart.testing import QuartClient
from redis.asyncio import Redis

from quartapp.accounts.models import User

from .conftest import PASSWORD, Auth, csrf_from

JSON = {"Accept": "application/json"}


async def api_token(client: QuartClient) -> dict[str, str]:
    response = await client.get("/api/v1/csrf")
    return {"X-CSRF-Token": (await response.get_json())["csrf_token"]}


@pytest.mark.parametrize(
    ("email", "password", "field", "message"),
    [
        ("", PASSWORD, "email", "Enter your email address."),
        ("   ", PASSWORD, "email", "Enter your email address."),
        ("ada", PASSWORD, "email", "This is not a valid email address"),
        ("ada@", PASSWORD, "email", "This is not a valid email address"),
        ("a@b@example.com", PASSWORD, "email", "This is not a valid email address"),
        ("ada@example.com\x00", PASSWORD, "email", "This is not a valid email address"),
        (
            "a" * 64 + "@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 70 + ".com",
            PASSWORD,
            "email",
            "at most 254 characters",
        ),
        ("ada@example.com", "", "password", "Use at least 8 characters."),
        ("ada@example.com", "seven77", "password", "Use at least 8 characters."),
        ("ada@example.com", "x" * 73, "password", "Use a shorter password: at most 72 characters"),
        # 40 characters, 80 bytes: bcrypt would silently drop the end, so it is refused
        ("ada@example.com", "é" * 40, "password", "Use a shorter password: at most 72 characters"),
    ],
)
async def test_sign_up_field_errors(
    client: QuartClient,
    email: str,
    password: str,
    field: str,
    message: str,
    redis: Redis,
    redis_prefix: str,
) -> None:
    response = await client.post(
        "/api/v1/signup",
        json={"email": email, "password": password},
        headers={**await api_token(client), **JSON},
    )
    assert response.status_code == 422
    body = await response.get_json()
    assert message in body["fields"][field]
    assert await User.all().count() == 0
    assert [key async for key in redis.scan_iter(match=f"{redis_prefix}*")] == []


async def test_longest_passwords_that_fit_are_accepted(client: QuartClient) -> None:
    headers = {**await api_token(client), **JSON}
    # Hard to guess as well as long: a run of one letter would be refused as too weak.
    ascii_words = ("tulip granite harbour kettle " * 3)[:72]
    accented = ("éèêëàâäîïôöùûüçñ" * 3)[:36]  # 2 bytes each
    for email, password in (("a@example.com", ascii_words), ("b@example.com", accented)):
        assert len(password.encode()) == 72
        response = await client.post(
            "/api/v1/signup", json={"email": email, "password": password}, headers=headers
        )
        assert response.status_code == 201
        headers = {**await api_token(client), **JSON}


async def test_over_long_password_on_sign_in_is_just_a_failed_sign_in(auth: Auth) -> None:
    await auth.sign_up()
    await auth.post("/logout")
    response = await auth.sign_in("ada@example.com", PASSWORD + "x" * 80)
    assert response.status_code == 401


async def test_sign_in_with_missing_fields(client: QuartClient) -> None:
    response = await client.post(
        "/api/v1/signin", json={"email": "ada@example.com"}, headers=await api_token(client)
    )
    assert response.status_code == 422
    assert (await response.get_json())["fields"] == {"password": "Enter your password."}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "JSON object"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b'{"email": 5, "password": "x"}', "application/json", 422, "`fields` names each"),
        (b"email=a&password=b", "text/plain", 415, "web form or as JSON"),
        (b"\xff\xfe\x00", "application/octet-stream", 415, "web form or as JSON"),
    ],
)
async def test_malformed_bodies(
    client: QuartClient, body: bytes, content_type: str, status: int, message: str
) -> None:
    for path in ("/api/v1/signup", "/api/v1/signin"):
        response = await client.post(
            path,
            data=body,
            headers={"Content-Type": content_type, **await api_token(client), **JSON},
        )
        assert response.status_code == status
        assert message in (await response.get_json())["message"]


async def test_oversized_body_is_413(client: QuartClient) -> None:
    token = await csrf_from(client, "/register")
    response = await client.post(
        "/api/v1/signup",
        form={"email": "ada@example.com", "password": "x" * 20_000, "csrf_token": token},
    )
    assert response.status_code == 413
    assert "too large" in await response.get_data(as_text=True)
    assert await User.all().count() == 0


async def test_missing_and_wrong_csrf_tokens_are_403(client: QuartClient, auth: Auth) -> None:
    form = {"email": "ada@example.com", "password": PASSWORD}
    missing = await client.post("/api/v1/signup", form=form)
    assert missing.status_code == 403
    assert "Reload the page" in await missing.get_data(as_text=True)
    wrong = await client.post("/api/v1/signup", form={**form, "csrf_token": "forged"})
    assert wrong.status_code == 403
    # a genuine token, but minted for another browser
    other = await csrf_from(auth.client.__class__(client.app), "/register")
    stolen = await client.post("/api/v1/signup", form={**form, "csrf_token": other})
    assert stolen.status_code == 403
    assert await User.all().count() == 0


async def test_anonymous_token_does_not_work_for_a_signed_in_action(
    client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    signed_in_token = await csrf_from(client, "/home")
    assert (
        await client.post("/logout", form={"csrf_token": "x" + signed_in_token})
    ).status_code == 403
    stranger = auth.client.__class__(client.app)
    anonymous_token = await csrf_from(stranger, "/")
    response = await client.post("/logout", form={"csrf_token": anonymous_token})
    assert response.status_code == 403
    assert (await client.get("/home")).status_code == 200


async def test_expired_csrf_token_is_403(
    client: QuartClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await csrf_from(client, "/register")
    import time

    later = time.time() + 3 * 60 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    response = await client.post(
        "/api/v1/signup",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 403


async def test_htmx_csrf_failure_is_an_alert_not_a_swap(client: QuartClient) -> None:
    response = await client.post(
        "/api/v1/signin", form={"email": "a@example.com"}, headers={"HX-Request": "true"}
    )
    text = await response.get_data(as_text=True)
    assert response.status_code == 403
    assert response.headers["HX-Reswap"] == "none"
    assert 'id="alerts"' in text
    assert 'hx-swap-oob="true"' in text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("GET", "/api/v1/signin", 405), ("PUT", "/home", 405)],
)
async def test_unknown_routes_and_methods(
    client: QuartClient, method: str, path: str, status: int
) -> None:
    page = await client.open(path, method=method)
    assert page.status_code == status
    assert "<html" in await page.get_data(as_text=True)
    api = await client.open(path, method=method, headers=JSON)
    assert api.status_code == status
    assert {"code", "message"} <= set(await api.get_json())

"""The throttle as the routes use it: 429 before any bcrypt work, and the owner gets in."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp.passwords import PasswordHasher

from .conftest import Auth, csrf_from

JSON = {"Accept": "application/json"}


class BcryptCalls:
    """Counts password checks and hashes; the real bcrypt still runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("verify", "hash"):
            original = getattr(PasswordHasher, name)

            def counted(original: Any = original) -> Any:
                async def run(hasher: PasswordHasher, *args: Any) -> Any:
                    self.count += 1
                    return await original(hasher, *args)

                return run

            monkeypatch.setattr(PasswordHasher, name, counted())


@pytest.fixture
async def throttled(make_app: Callable[..., Any]) -> Quart:
    app: Quart = await make_app(
        THROTTLE_SIGN_IN_PER_ACCOUNT_IP=[3, 60],
        THROTTLE_SIGN_IN_PER_IP=[5, 60],
        THROTTLE_SIGN_IN_PER_ACCOUNT=[8, 60],
        THROTTLE_SIGN_UP_PER_IP=[2, 60],
        THROTTLE_PASSWORD_CHECK_PER_SESSION=[3, 60],
        THROTTLE_PASSWORD_CHECK_PER_ACCOUNT=[5, 60],
        THROTTLE_PASSWORD_STRENGTH_PER_IP=[10, 60],
    )
    return app


def from_address(address: str) -> dict[str, Any]:
    return {"scope_base": {"client": (address, 40000)}}


async def test_failed_sign_ins_lock_with_429_and_no_bcrypt(
    throttled: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = throttled.test_client()
    auth = Auth(client)
    await auth.sign_up()
    await auth.post("/logout")
    for _ in range(3):
        assert (await auth.sign_in(password="wrong password")).status_code == 401
    calls = BcryptCalls(monkeypatch)
    locked = await auth.sign_in(password="wrong password", **{"HX-Request": "true"})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Too many attempts. Please try again in" in await locked.get_data(as_text=True)
    # even the right password waits: this client has been guessing
    assert (await auth.sign_in()).status_code == 429
    assert calls.count == 0


async def test_unknown_emails_are_throttled_the_same(throttled: Quart) -> None:
    auth = Auth(throttled.test_client())
    statuses = [
        (await auth.sign_in("nobody@example.com", "guess guess")).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


async def test_json_clients_get_429_json(throttled: Quart) -> None:
    client = throttled.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    body = {"email": "nobody@example.com", "password": "guess guess"}
    responses = [
        await client.post("/api/v1/signin", json=body, headers={"X-CSRF-Token": token})
        for _ in range(4)
    ]
    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    assert "Too many attempts" in (await responses[-1].get_json())["error"]


async def test_sign_ups_per_client_are_limited(throttled: Quart) -> None:
    auth = Auth(throttled.test_client())
    first = await auth.sign_up("a@example.com")
    await auth.post("/logout")
    second = await auth.sign_up("b@example.com")
    await auth.post("/logout")
    third = await auth.sign_up("c@example.com")
    assert [first.status_code, second.status_code, third.status_code] == [303, 303, 429]


async def test_the_owner_signs_in_from_a_clean_client_during_a_spray(
    throttled: Quart,
) -> None:
    owner = Auth(throttled.test_client())
    await owner.sign_up()
    await owner.post("/logout")
    # a spray on the account from several addresses, each below its own limits
    for n in range(3):
        attacker = Auth(throttled.test_client())
        for _ in range(2):
            response = await attacker.client.post(
                "/api/v1/signin",
                form={
                    "email": "ada@example.com",
                    "password": "guess guess",
                    "csrf_token": await _token(attacker),
                },
                **from_address(f"198.51.100.{n}"),
            )
            assert response.status_code == 401
    # six failures on the account, under its limit of eight: a clean client gets in
    assert (await owner.sign_in()).status_code == 303


async def _token(auth: Auth) -> str:
    return await csrf_from(auth.client, "/")


CURRENT_PASSWORD_FORMS = re.compile(
    r'<form[^>]*action="(?P<action>[^"]+)"(?P<body>.*?)</form>', flags=re.S
)


async def test_every_form_that_checks_a_password_is_throttled(throttled: Quart) -> None:
    """Policy: every form with a current-password field (sign-in, and the re-checks before
    a password change or an account deletion) answers 429 after repeated failures."""
    auth = Auth(throttled.test_client())
    await auth.sign_up()
    pages = ["/account/password", "/account/delete"]
    forms: dict[str, list[str]] = {}
    for page in pages:
        body = await (await auth.client.get(page)).get_data(as_text=True)
        for form in CURRENT_PASSWORD_FORMS.finditer(body):
            if 'autocomplete="current-password"' in form["body"]:
                names = re.findall(r'<input[^>]*name="([^"]+)"', form["body"])
                forms[form["action"]] = names
    assert set(forms) == {"/account/password", "/account/delete"}
    for action, names in forms.items():
        statuses = []
        for _ in range(4):
            data = {name: "wrong password guess" for name in names if name != "csrf_token"}
            if "new_password" in data:
                data["new_password"] = "a new and long passphrase"
            statuses.append((await auth.post(action, data)).status_code)
        assert statuses[-1] == 429, (action, statuses)
        await throttled.extensions["quartapp.throttle"].throttle.reset(email="ada@example.com")
    # the sign-in form is covered by test_failed_sign_ins_lock_with_429_and_no_bcrypt


async def test_hsts_only_over_https(client: QuartClient) -> None:
    plain = await client.get("/")
    assert "Strict-Transport-Security" not in plain.headers
    secure = await client.get("/", scheme="https")
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000"

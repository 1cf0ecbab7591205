"""The throttle as the routes use it: 429 before any bcrypt work, and the owner gets in."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp.accounts.hashing import PasswordHasher

from .conftest import PASSWORD, Auth, csrf_from

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
        THROTTLE_PASSWORD_STRENGTH_PER_ACCOUNT=[4, 60],
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
    assert "Too many attempts" in (await responses[-1].get_json())["message"]


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
    pages = ["/account/password", "/account/delete", "/account/email"]
    forms: dict[str, list[str]] = {}
    for page in pages:
        body = await (await auth.client.get(page)).get_data(as_text=True)
        for form in CURRENT_PASSWORD_FORMS.finditer(body):
            if 'autocomplete="current-password"' in form["body"]:
                names = re.findall(r'<input[^>]*name="([^"]+)"', form["body"])
                forms[form["action"]] = names
    assert set(forms) == {"/account/password", "/account/delete", "/account/email"}
    for action, names in forms.items():
        statuses = []
        for _ in range(4):
            data = {name: "wrong password guess" for name in names if name != "csrf_token"}
            if "new_password" in data:
                data["new_password"] = "a new and long passphrase"
            if "new_email" in data:
                data["new_email"] = "ada.new@example.com"
            statuses.append((await auth.post(action, data)).status_code)
        assert statuses[-1] == 429, (action, statuses)
        await throttled.extensions["quartapp.throttle"].throttle.reset(email="ada@example.com")
    # the sign-in form is covered by test_failed_sign_ins_lock_with_429_and_no_bcrypt


async def test_hsts_only_over_https(client: QuartClient) -> None:
    plain = await client.get("/")
    assert "Strict-Transport-Security" not in plain.headers
    secure = await client.get("/", scheme="https")
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000"


async def test_concurrent_guesses_check_no_more_passwords_than_the_limit(
    throttled: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guesses sent all at once: each reserves its attempt before bcrypt, so only the pair
    rule's 3 are checked, however many arrive together; the rest are refused for free."""
    auth = Auth(throttled.test_client())
    await auth.sign_up()
    client = throttled.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    calls = BcryptCalls(monkeypatch)
    body = {"email": "ada@example.com", "password": "wrong password"}
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/signin", json=body, headers={"X-CSRF-Token": token})
            for _ in range(40)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * 3 + [429] * 37
    assert calls.count == 3


async def test_concurrent_re_checks_from_one_session_check_no_more_than_the_limit(
    throttled: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stolen session guessing the password before an account deletion, all at once."""
    auth = Auth(throttled.test_client())
    await auth.sign_up()
    token = await auth.page_token()
    calls = BcryptCalls(monkeypatch)
    responses = await asyncio.gather(
        *(
            auth.client.post(
                "/account/delete",
                form={"password": "wrong password", "csrf_token": token},
                headers=JSON,
            )
            for _ in range(30)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [403] * 3 + [429] * 27
    assert calls.count == 3
    # A right password is checked only once the window has room again: nothing was deleted.
    assert (await auth.client.get("/home", headers=JSON)).status_code == 200


async def test_others_failing_from_the_owners_network_do_not_lock_the_owner_out(
    throttled: Quart,
) -> None:
    """Re-checks by a signed-in session have rules of their own: failed sign-ins from the
    same address (a shared office, say) leave the owner's account pages working."""
    owner = Auth(throttled.test_client())
    await owner.sign_up()
    for n in range(6):  # past the per-client sign-in rule (5), on other accounts
        stranger = Auth(throttled.test_client())
        await stranger.sign_in(f"someone{n}@example.com", "guess guess")
    assert (
        await Auth(throttled.test_client()).sign_in("x@example.com", "y y y y")
    ).status_code == 429
    changed = await owner.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase for ada"},
    )
    assert changed.status_code == 303


async def test_a_signed_in_session_has_its_own_re_check_limit(throttled: Quart) -> None:
    """Per session: 3 wrong re-checks lock this session's re-checks, not another's; per
    account: 5 in all, from every session of the account."""
    first, second = Auth(throttled.test_client()), Auth(throttled.test_client())
    await first.sign_up()
    await second.sign_in()
    wrong = {"password": "wrong password"}
    assert [(await first.post("/account/delete", wrong)).status_code for _ in range(4)] == [
        403,
        403,
        403,
        429,
    ]
    assert [(await second.post("/account/delete", wrong)).status_code for _ in range(3)] == [
        403,
        403,
        429,
    ]


async def test_the_strength_hint_is_throttled_per_client(throttled: Quart) -> None:
    client = throttled.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    headers = {"X-CSRF-Token": token}
    body = {"password": "a passphrase being typed"}
    statuses = [
        (await client.post("/api/v1/password-strength", json=body, headers=headers)).status_code
        for _ in range(11)
    ]
    assert statuses == [200] * 10 + [429]
    # The live hint says it has paused, as a fragment the form can show.
    hint = await client.post(
        "/api/v1/password-strength",
        form={**body, "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert hint.status_code == 200
    assert "still checked when you send the form" in await hint.get_data(as_text=True)


async def test_neighbours_cannot_spend_a_signed_in_users_strength_budget(
    throttled: Quart,
) -> None:
    """Anonymous checks from the owner's address (an office, a NAT) fill the per-client
    rule; the owner, signed in behind the same address, still gets the hint and changes
    the password. The owner's own judgements are bounded per account, from every session."""
    owner = Auth(throttled.test_client())
    assert (await owner.sign_up()).status_code == 303
    neighbour = throttled.test_client()
    token = (await (await neighbour.get("/api/v1/csrf")).get_json())["csrf_token"]
    body = {"password": "a passphrase being typed"}
    statuses = [
        (
            await neighbour.post(
                "/api/v1/password-strength", json=body, headers={"X-CSRF-Token": token}
            )
        ).status_code
        for _ in range(11)
    ]
    assert statuses == [200] * 9 + [429] * 2  # the sign-up spent one: the address's are gone

    hint = await owner.post(
        "/api/v1/password-strength", {"new_password": "another passphrase typed"}, headers=JSON
    )
    assert hint.status_code == 200
    assert (await hint.get_json())["acceptable"] is True
    changed = await owner.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase here"},
    )
    assert changed.status_code == 303
    assert changed.headers["Location"] == "/account/password?changed=1"

    # Two judgements spent of the account's four; its second session shares them.
    laptop = Auth(throttled.test_client())
    assert (await laptop.sign_in(password="a brand new passphrase here")).status_code == 303
    spent = [
        (
            await device.post(
                "/api/v1/password-strength", {"new_password": "yet another pass"}, headers=JSON
            )
        ).status_code
        for device in (owner, laptop, owner)
    ]
    assert spent == [200, 200, 429]


async def test_a_sign_up_refused_by_the_throttle_judges_nothing(
    throttled: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: list[str] = []
    original = PasswordHasher.judge

    async def counted(hasher: PasswordHasher, *args: Any) -> Any:
        judged.append(args[1])
        return await original(hasher, *args)

    monkeypatch.setattr(PasswordHasher, "judge", counted)
    auth = Auth(throttled.test_client())
    for email in ("a@example.com", "b@example.com"):
        assert (await auth.sign_up(email)).status_code == 303
        await auth.post("/logout")
    judged.clear()
    refused = await auth.sign_up("c@example.com")
    assert refused.status_code == 429
    assert judged == []


async def test_a_too_weak_password_gives_its_sign_up_back(throttled: Quart) -> None:
    auth = Auth(throttled.test_client())
    for _ in range(3):
        assert (await auth.sign_up(password="password123")).status_code == 422
    assert (await auth.sign_up()).status_code == 303

"""Sign-ins that race a password change, an address change or an account deletion start
no session.

A sign-in checks the password with bcrypt, which takes a while; a password change (or a
deletion) may run to completion in that time. Its sweep of the account's sessions then
comes before the sign-in's session exists. What closes the gap: the change stores the new
hash, then raises the account's credentials floor in Redis, then sweeps; the script that
creates a session refuses a sign-in whose password version is under the floor. These tests
hold a sign-in inside bcrypt (its check already passed) while the change or deletion runs,
then let it go on. An address change raises the version and the floor the same way, so a
sign-in with the old address that was inside bcrypt starts no session tied to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from quart import Quart

from quartapp.accounts.hashing import PasswordHasher
from quartapp.accounts.mail_tokens import LinkGrant, get_mail_tokens
from quartapp.accounts.models import User
from quartapp.sessions.extension import get_sessions
from quartapp.sessions.store import SessionRecord

from .conftest import PASSWORD, Auth

NEW_PASSWORD = "a brand new passphrase for ada"
JSON = {"Accept": "application/json"}


class HeldCheck:
    """Holds the next password check that succeeds, after bcrypt, until ``release``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.checked = asyncio.Event()
        self.go_on = asyncio.Event()
        original = PasswordHasher.verify

        async def verify(
            hasher: PasswordHasher, password: str, hashed: str | None, *lane: Any
        ) -> bool:
            matches = await original(hasher, password, hashed, *lane)
            if self.armed and matches:
                self.armed = False
                self.checked.set()
                await self.go_on.wait()
            return matches

        monkeypatch.setattr(PasswordHasher, "verify", verify)

    async def hold(self, request: Awaitable[Any]) -> asyncio.Task[Any]:
        """Start ``request`` and return once its password check has passed and is held."""
        self.armed = True
        task = asyncio.ensure_future(request)
        await asyncio.wait_for(self.checked.wait(), 10)
        return task

    async def release(self, task: asyncio.Task[Any]) -> Any:
        self.go_on.set()
        return await asyncio.wait_for(task, 10)


async def sessions_of(app: Quart, user_id: int) -> list[SessionRecord]:
    async with app.app_context():
        return await get_sessions().store.list_sessions(user_id)


async def json_sign_in(auth: Auth, password: str) -> Any:
    token = (await (await auth.client.get("/api/v1/csrf")).get_json())["csrf_token"]
    return await auth.client.post(
        "/api/v1/signin",
        json={"email": "ada@example.com", "password": password},
        headers={"X-CSRF-Token": token},
    )


async def signed_up(app: Quart) -> tuple[Auth, int]:
    owner = Auth(app.test_client())
    response = await owner.sign_up()
    assert response.status_code == 303
    account = await (await owner.client.get("/sessions", headers=JSON)).get_json()
    assert len(account["sessions"]) == 1
    async with app.app_context():
        user = await User.get(email="ada@example.com")
    return owner, user.id


async def change_password(owner: Auth) -> None:
    changed = await owner.post(
        "/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 303


async def delete_account(owner: Auth) -> None:
    deleted = await owner.post("/account/delete", {"password": PASSWORD})
    assert deleted.status_code == 303


async def change_email(owner: Auth) -> None:
    """Follow an address-change link (made here as a request makes it)."""
    app = owner.client.app
    async with app.app_context():
        user = await User.get(email="ada@example.com")
        grant = LinkGrant(user.id, user.credentials_version, "ada.new@example.com")
        tokens = get_mail_tokens()
        token = tokens.token("email", await tokens.issue("email", grant, 600))
    changed = await owner.post(f"/email/change/{token}")
    assert changed.status_code == 303


STAYS_SIGNED_IN = (change_password, change_email)


@pytest.mark.parametrize("change", [change_password, change_email, delete_account])
async def test_a_sign_in_held_inside_bcrypt_gets_no_session(
    app: Quart,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Auth], Awaitable[None]],
) -> None:
    owner, user_id = await signed_up(app)
    held = HeldCheck(monkeypatch)
    thief = Auth(app.test_client())
    sign_in = await held.hold(json_sign_in(thief, PASSWORD))  # the old password: right, so far
    await change(owner)
    response = await held.release(sign_in)
    assert response.status_code == 401
    assert await response.get_json() == {
        "code": "invalid_credentials",
        "message": "Incorrect email or password.",
    }
    left = await sessions_of(app, user_id)
    if change in STAYS_SIGNED_IN:
        assert len(left) == 1  # the owner's, under a new token
        assert (await owner.client.get("/home", headers=JSON)).status_code == 200
    else:
        assert left == []
    assert (await thief.client.get("/home", headers=JSON)).status_code == 401


@pytest.mark.parametrize("change", [change_password, change_email, delete_account])
async def test_many_sign_ins_racing_a_change_leave_no_session(
    app: Quart, change: Callable[[Auth], Awaitable[None]]
) -> None:
    """Sign-ins with the old password in flight at every stage of the change: whatever
    each one answered, none of their sessions is alive afterwards."""
    owner, user_id = await signed_up(app)
    thieves = [Auth(app.test_client()) for _ in range(12)]
    tasks = [asyncio.ensure_future(json_sign_in(thief, PASSWORD)) for thief in thieves]
    await asyncio.sleep(0)
    await change(owner)
    answers = await asyncio.gather(*tasks)
    assert {response.status_code for response in answers} <= {200, 401}
    for thief in thieves:
        assert (await thief.client.get("/home", headers=JSON)).status_code == 401
    left = await sessions_of(app, user_id)
    assert len(left) == (1 if change in STAYS_SIGNED_IN else 0)
    if change is change_email:
        assert {record.email for record in left} == {"ada.new@example.com"}


async def test_the_new_password_signs_in_after_a_change(app: Quart) -> None:
    """The floor refuses only passwords older than the change."""
    owner, _ = await signed_up(app)
    await change_password(owner)
    assert (await json_sign_in(Auth(app.test_client()), NEW_PASSWORD)).status_code == 200
    assert (await json_sign_in(Auth(app.test_client()), PASSWORD)).status_code == 401


async def test_the_new_address_signs_in_after_a_change(app: Quart) -> None:
    owner, _ = await signed_up(app)
    await change_email(owner)
    assert (await json_sign_in(Auth(app.test_client()), PASSWORD)).status_code == 401
    client = app.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    signed = await client.post(
        "/api/v1/signin",
        json={"email": "ada.new@example.com", "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert signed.status_code == 200

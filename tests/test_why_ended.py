"""Saying why a session ended: a session ended from another one ("End", "Sign out
everywhere else"), by a new password (changed or reset), a new address or the account's
deletion tells its tab so, never "Your session has expired"; the sign-in page it lands on
says it too. Its own sign-out, and time, still read as before."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from redis.asyncio import Redis

from quartapp.accounts.mail_tokens import LinkGrant, get_mail_tokens
from quartapp.accounts.models import User
from quartapp.sessions.store import (
    ENDED_REASON_MIN_MS,
    WHY_ENDED,
    SessionStore,
    key_id_for,
)

from .conftest import PASSWORD, csrf_from
from .test_account import CHROME, HTMX, NEW_PASSWORD, Device, device, store_of

ELSEWHERE = "You were signed out from another device."
CHANGED = "You were signed out because your password or email address was changed."
DELETED = "You were signed out because your account was deleted."
EXPIRED = "Your session has expired."


@pytest.fixture
async def ada(app: Quart) -> Device:
    """Ada, signed up from Firefox on Linux."""
    return await device(app, sign_up=True)


async def poll(browser: Device) -> str:
    """What the countdown's next poll shows the tab (as the page sends it)."""
    response = await browser.get("/session/countdown", **HTMX, **{"X-Countdown-Shown": "live"})
    assert response.status_code == 200
    html: str = await response.get_data(as_text=True)
    assert "hx-trigger" not in html, "the session is still live"
    return html


async def lands_on(browser: Device, path: str = "/home") -> tuple[str, str]:
    """Where a page load of ``path`` sends the browser, and what that sign-in page says."""
    response = await browser.get(path)
    assert response.status_code == 303
    location: str = response.headers["Location"]
    page = await (await browser.get(location)).get_data(as_text=True)
    return location, page


async def test_a_session_ended_from_another_says_so(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    response = await ada.post(f"/sessions/{laptop.public_id}/revoke", **HTMX)
    assert response.status_code == 200

    fragment = await poll(laptop)
    assert ELSEWHERE in fragment
    assert EXPIRED not in fragment
    # Its "Sign in again" leads to a sign-in page that says it too.
    assert 'href="/?ended=elsewhere" class="sign-in-again"' in fragment
    location, page = await lands_on(laptop, "/sessions")
    assert location == "/?ended=elsewhere&next=/sessions"
    assert ELSEWHERE in page
    # Every tab of that browser is told, not only the first to ask: the dead cookie stays
    # while the reason is kept (and opens nothing).
    assert ELSEWHERE in await poll(laptop)
    assert not await laptop.signed_in()
    # The sign-in page says it even when reached by another way (its nav's "Sign in").
    assert ELSEWHERE in await (await laptop.get("/")).get_data(as_text=True)
    # And that browser signs in again as usual: a new cookie, a live session.
    token = await csrf_from(laptop.client, "/?ended=elsewhere")
    again = await laptop.client.post(
        "/", form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert (again.status_code, again.headers["Location"]) == (303, "/home")
    assert await laptop.signed_in()
    assert "hx-trigger" in await (await laptop.get("/session/countdown", **HTMX)).get_data(
        as_text=True
    )


async def test_signing_out_everywhere_else_says_so(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    phone = await device(app, agent=CHROME)
    response = await ada.post("/sessions/revoke-others")
    assert response.status_code == 303
    for other in (laptop, phone):
        assert ELSEWHERE in await poll(other)
    assert await ada.signed_in()


async def test_a_password_change_says_so_to_the_other_sessions(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    changed = await ada.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        page="/account/password",
    )
    assert changed.status_code == 303
    assert CHANGED in await poll(laptop)
    location, page = await lands_on(laptop)
    assert location == "/?ended=account"
    assert CHANGED in page
    assert await ada.signed_in()  # the changing session goes on, under a new token


async def test_a_password_reset_says_so(app: Quart, ada: Device) -> None:
    user = await User.get(email="ada@example.com")
    async with app.app_context():
        tokens = get_mail_tokens()
        link_id = await tokens.issue(
            "reset", LinkGrant(user.id, user.credentials_version, user.email), 600
        )
        token = tokens.token("reset", link_id)
    stranger = app.test_client()
    csrf = await csrf_from(stranger, "/password/forgot")
    done = await stranger.post(
        f"/password/reset/{token}", form={"new_password": NEW_PASSWORD, "csrf_token": csrf}
    )
    assert (done.status_code, done.headers["Location"]) == (303, "/?reset=1")
    assert CHANGED in await poll(ada)


async def test_deleting_the_account_says_so_to_its_other_sessions(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    deleted = await ada.post("/account/delete", {"password": PASSWORD}, page="/account/delete")
    assert deleted.status_code == 303
    assert DELETED in await poll(laptop)


async def test_time_and_the_own_sign_out_still_read_as_before(
    app: Quart, ada: Device, redis: Redis
) -> None:
    laptop = await device(app, agent=CHROME)
    copied = Device(app, app.test_client(), CHROME, laptop.peer)
    for cookie in laptop.client.cookie_jar or ():
        copied.client.cookie_jar.set_cookie(cookie)  # type: ignore[union-attr]
    signed_out = await laptop.post("/logout", page="/home")
    assert signed_out.headers["Location"] == "/?signed_out=1"
    assert EXPIRED in await poll(copied)  # nothing but this browser ended it
    assert (await copied.get("/home")).headers["Location"] == "/"

    # A session that simply ran out says it expired.
    store = store_of(app)
    await redis.delete(store.record_key(ada.token[:6], ada.key_id))
    assert EXPIRED in await poll(ada)


async def test_the_reason_is_kept_as_long_as_the_session_had_left(
    app: Quart, ada: Device, redis: Redis
) -> None:
    laptop = await device(app, agent=CHROME)
    store: SessionStore = store_of(app)
    tag, key_id = laptop.token[:6], key_id_for(laptop.token)
    left = await redis.pttl(store.record_key(tag, key_id))
    assert await store.revoke_by_public_id(ada_user_id(await ada.record()), laptop.public_id)
    kept = await redis.pttl(store.ended_key(tag, key_id))
    assert ENDED_REASON_MIN_MS / 2 < kept <= max(left, ENDED_REASON_MIN_MS)
    assert await store.ended_reason(laptop.token) == "elsewhere"
    # An unknown code in the address shows no notice; a known one its fixed text only.
    stranger = app.test_client()  # no cookie: only the address could say anything
    page = await (await stranger.get("/?ended=<b>nope</b>")).get_data(as_text=True)
    assert "nope" not in page
    assert not any(message in page for message in WHY_ENDED.values())


def ada_user_id(record: Any) -> int:
    assert record is not None
    return int(record.user_id)

"""Your sessions and your account, through the routes: several devices of one user (each a
test client with a browser's User-Agent and its own address), as htmx, plain forms and JSON."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from quart import Quart
from quart.testing import QuartClient
from redis.asyncio import Redis

from quartapp import create_app
from quartapp.accounts.models import User
from quartapp.config import ConfigError
from quartapp.sessions.store import SessionRecord, SessionStore, key_id_for
from quartapp.web.templating import ago, clock_time, how_long_ago

from .conftest import PASSWORD, csrf_from, session_cookie
from .test_sessions import Counter

HTMX = {"HX-Request": "true"}
JSON = {"Accept": "application/json"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
NEW_PASSWORD = "a brand new passphrase"


def store_of(app: Quart) -> SessionStore:
    store: SessionStore = app.extensions["quartapp.sessions"].store
    return store


@dataclass
class Device:
    """One browser of a user: a client that always sends its User-Agent and address."""

    app: Quart
    client: QuartClient
    agent: str
    peer: str

    async def get(self, path: str, **headers: str) -> Any:
        return await self.client.get(path, headers=self._headers(headers), scope_base=self.scope)

    async def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        page: str = "/sessions",
        **headers: str,
    ) -> Any:
        """POST as the page's form would, with the CSRF token that ``page`` carries."""
        token = await csrf_from(self.client, page)
        form = {**(data or {}), "csrf_token": token}
        return await self.client.post(
            path, form=form, headers=self._headers(headers), scope_base=self.scope
        )

    @property
    def scope(self) -> dict[str, Any]:
        return {"client": (self.peer, 50000)}

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        return {"User-Agent": self.agent, **extra}

    @property
    def token(self) -> str:
        cookie = session_cookie(self.client)
        assert cookie, "this device is not signed in"
        return str(self.app.extensions["QUART_AUTH"][0].load_token(cookie, self.app))

    @property
    def key_id(self) -> str:
        return key_id_for(self.token)

    @property
    def public_id(self) -> str:
        return self.key_id[:12]

    async def record(self) -> SessionRecord | None:
        return await store_of(self.app).load(self.token, touch=False)

    async def signed_in(self) -> bool:
        response = await self.get("/home")
        assert response.status_code in (200, 303)
        return bool(response.status_code == 200)

    async def sessions(self) -> list[dict[str, Any]]:
        response = await self.get("/sessions", **JSON)
        assert response.status_code == 200
        sessions: list[dict[str, Any]] = (await response.get_json())["sessions"]
        return sessions


async def device(
    app: Quart,
    email: str = "ada@example.com",
    *,
    agent: str = FIREFOX,
    peer: str = "198.51.100.7",
    sign_up: bool = False,
    **headers: str,
) -> Device:
    """A new browser that signs up or signs in as ``email``."""
    client = app.test_client()
    made = Device(app, client, agent, peer)
    page = "/register" if sign_up else "/"
    token = await csrf_from(client, page)
    response = await client.post(
        "/api/v1/signup" if sign_up else "/api/v1/signin",
        form={"email": email, "password": PASSWORD, "csrf_token": token},
        headers=made._headers(headers),
        scope_base=made.scope,
    )
    assert response.status_code == 303, await response.get_data(as_text=True)
    return made


@pytest.fixture
async def ada(app: Quart) -> Device:
    """Ada, signed up from Firefox on Linux."""
    return await device(app, sign_up=True)


def row_of(html: str, public_id: str) -> str:
    match = re.search(rf'<tr data-session="{re.escape(public_id)}".*?</tr>', html, flags=re.S)
    assert match, f"no row for {public_id}"
    return match.group(0)


def without_tokens(html: str) -> str:
    return re.sub(r'value="[^"]+"|"X-CSRF-Token": "[^"]+"', "TOKEN", html)


async def index_members(app: Quart, redis: Redis, user_id: int) -> set[str]:
    """The key ids the user's bucket lists for ``user_id``."""
    store = store_of(app)
    members: set[str] = set()
    for tag in store.tags(user_id):
        fields = await redis.hgetall(store.bucket_index(tag))
        members |= {key_id for key_id, owner in fields.items() if owner == str(user_id)}
    return members


# -- the sessions page --------------------------------------------------------------------


async def test_sessions_page_lists_every_live_session_of_the_user(app: Quart, ada: Device) -> None:
    phone = await device(app, agent=SAFARI, peer="2001:db8::7")
    bob = await device(app, "bob@example.com", agent=CHROME, sign_up=True)
    response = await ada.get("/sessions")
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in html
    mine = row_of(html, ada.public_id)
    assert 'aria-current="true"' in mine
    assert "This device" in mine
    assert "Firefox 128 on Linux" in mine
    assert "198.51.100.7" in mine
    other = row_of(html, phone.public_id)
    assert "Safari 18 on iOS" in other
    assert "2001:db8::7" in other
    assert "This device" not in other
    assert "aria-current" not in other
    assert html.count("<tr data-session=") == 2
    assert bob.public_id not in html
    assert "Sign out everywhere else" in html
    # Started, last active and time left, as readable times.
    assert mine.count("<time datetime=") == 3
    assert mine.count(">just now</time>") == 2
    assert re.search(r"<time datetime=\"PT(59\d|600)S\">(09:5\d|10:00)</time>", mine)


async def test_sessions_as_json(app: Quart, ada: Device) -> None:
    phone = await device(app, agent=SAFARI, peer="203.0.113.50")
    sessions = await phone.sessions()
    assert [s["id"] for s in sessions] == [phone.public_id, ada.public_id]
    this, other = sessions
    assert this["current"] is True
    assert other["current"] is False
    assert this["device"] == "Safari 18 on iOS"
    assert this["ip"] == "203.0.113.50"
    assert other["device"] == "Firefox 128 on Linux"
    assert 590 <= this["expires_in"] <= 600
    assert set(this) == {
        "id",
        "current",
        "device",
        "ip",
        "started_at",
        "last_active_at",
        "expires_in",
        "signed_in_with",
    }
    assert this["signed_in_with"] == "password"
    assert this["started_at"].endswith("+00:00")


async def test_sessions_fragment_for_htmx(ada: Device) -> None:
    response = await ada.get("/sessions", **HTMX)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="sessions"')
    assert "<html" not in html
    assert "This is your only session." in html
    assert response.headers["Vary"] == "HX-Request"


async def test_unknown_device_and_address(app: Quart, ada: Device) -> None:
    client = app.test_client()
    token = await csrf_from(client, "/")
    await client.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
        headers={"User-Agent": "curl/8.11.0"},
    )
    html = await (await ada.get("/sessions")).get_data(as_text=True)
    assert "Unknown browser" in html
    assert '<td data-label="IP address" class="ip">Unknown</td>' in html  # no socket peer


async def test_expired_sessions_never_appear_and_leave_the_index(
    make_app: Callable[..., Any], redis: Redis
) -> None:
    app = await make_app(SESSION_IDLE_TIMEOUT=2)
    ada = await device(app, sign_up=True)
    laptop = await device(app, agent=CHROME)
    record = await ada.record()
    assert record is not None
    assert await index_members(app, redis, record.user_id) == {ada.key_id, laptop.key_id}
    await asyncio.sleep(1.1)
    assert await ada.signed_in()  # activity: Ada's session slides, the laptop's does not
    await asyncio.sleep(1.1)
    assert [s["id"] for s in await ada.sessions()] == [ada.public_id]
    assert await index_members(app, redis, record.user_id) == {ada.key_id}


async def test_the_sessions_page_costs_two_redis_round_trips_and_no_query(
    app: Quart, ada: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    for agent in (CHROME, SAFARI):
        await device(app, agent=agent)
    counter = Counter(app, monkeypatch)
    await counter.install()
    response = await ada.get("/sessions")
    assert response.status_code == 200
    assert (counter.redis, counter.mysql) == (2, 0)
    assert (await response.get_data(as_text=True)).count("<tr data-session=") == 3


# -- ending one session -------------------------------------------------------------------


async def test_ending_another_session_kills_its_cookie_and_its_countdown(
    app: Quart, ada: Device
) -> None:
    laptop = await device(app, agent=CHROME)
    live = await laptop.get("/session/countdown", **HTMX)
    assert 'hx-trigger="every 1s"' in await live.get_data(as_text=True)

    response = await ada.post(f"/sessions/{laptop.public_id}/revoke")
    assert response.status_code == 303
    assert response.headers["Location"] == "/sessions"

    poll = await laptop.get("/session/countdown", **HTMX)
    fragment = await poll.get_data(as_text=True)
    assert poll.status_code == 200
    # Ended from another session: the tab says so (tests/test_why_ended.py), not "expired".
    assert "You were signed out from another device." in fragment
    assert "hx-trigger" not in fragment
    home = await laptop.get("/home")
    assert home.status_code == 303
    assert home.headers["Location"] == "/?ended=elsewhere"
    assert await ada.signed_in()
    assert [s["id"] for s in await ada.sessions()] == [ada.public_id]


async def test_ending_a_session_with_htmx_removes_its_row(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    phone = await device(app, agent=CHROME)
    response = await ada.post(f"/sessions/{laptop.public_id}/revoke", **HTMX)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    # The list as it is now, without the row, and the news for the status region.
    assert f'data-session="{laptop.public_id}"' not in html
    assert f'data-session="{phone.public_id}"' in html
    assert f'data-session="{ada.public_id}"' in html
    assert "Sign out everywhere else" in html
    assert 'id="sessions-status" hx-swap-oob="innerHTML"' in html
    assert f"Session {laptop.public_id} ended." in html
    assert not await laptop.signed_in()


async def test_ending_the_last_other_session_takes_sign_out_everywhere_else_away(
    app: Quart, ada: Device
) -> None:
    laptop = await device(app, agent=CHROME)
    response = await ada.post(f"/sessions/{laptop.public_id}/revoke", **HTMX)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Sign out everywhere else" not in html
    assert "This is your only session." in html


async def test_ending_a_session_as_json(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await ada.client.post(
        f"/sessions/{laptop.public_id}/revoke", headers={**JSON, "X-CSRF-Token": token}
    )
    assert response.status_code == 200
    assert await response.get_json() == {"message": "session ended", "id": laptop.public_id}
    assert not await laptop.signed_in()


async def test_ending_this_session_is_signing_out(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    response = await ada.post(f"/sessions/{ada.public_id}/revoke")
    assert response.status_code == 303
    assert response.headers["Location"] == "/?signed_out=1"
    assert session_cookie(ada.client) is None
    assert (await ada.get("/home")).status_code == 303

    response = await laptop.post(f"/sessions/{laptop.public_id}/revoke", **HTMX)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/?signed_out=1"
    assert not await laptop.signed_in()


@pytest.mark.parametrize("public_id", ["AAAAAAAAAAAA", "short", "not a valid id at all"])
async def test_ending_an_unknown_session_is_404(ada: Device, public_id: str) -> None:
    response = await ada.post(f"/sessions/{public_id}/revoke")
    assert response.status_code == 404
    assert "There is no such session." in await response.get_data(as_text=True)
    assert await ada.signed_in()


async def test_nobody_can_touch_another_users_sessions(app: Quart, ada: Device) -> None:
    bob = await device(app, "bob@example.com", agent=CHROME, sign_up=True)
    unknown = "A" * 12 if not bob.public_id.startswith("A") else "B" * 12

    theirs = await ada.post(f"/sessions/{bob.public_id}/revoke")
    nobodys = await ada.post(f"/sessions/{unknown}/revoke")
    # 404, not 403, and the same page for both: ids cannot be probed.
    assert theirs.status_code == nobodys.status_code == 404
    assert without_tokens(await theirs.get_data(as_text=True)) == without_tokens(
        await nobodys.get_data(as_text=True)
    )
    as_htmx = await ada.post(f"/sessions/{bob.public_id}/revoke", **HTMX)
    assert as_htmx.status_code == 404
    assert as_htmx.headers["HX-Reswap"] == "none"

    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    as_json = await ada.client.post(
        f"/sessions/{bob.public_id}/revoke", headers={**JSON, "X-CSRF-Token": token}
    )
    assert as_json.status_code == 404
    assert await as_json.get_json() == {
        "code": "not_found",
        "message": "There is no such session. It may have ended already.",
    }

    # "Everywhere else" means Ada's other sessions, never Bob's.
    assert (await ada.post("/sessions/revoke-others")).status_code == 303
    assert await bob.signed_in()
    assert [s["id"] for s in await bob.sessions()] == [bob.public_id]


# -- signing out everywhere else ----------------------------------------------------------


async def test_sign_out_everywhere_else(app: Quart, ada: Device, redis: Redis) -> None:
    laptop = await device(app, agent=CHROME)
    phone = await device(app, agent=SAFARI)
    record = await ada.record()
    assert record is not None
    assert len(await index_members(app, redis, record.user_id)) == 3

    response = await ada.post("/sessions/revoke-others", **HTMX)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="sessions"')
    assert html.count("<tr data-session=") == 1
    assert ada.public_id in html
    assert "This is your only session." in html
    assert "Signed out 2 other sessions." in html

    assert await ada.signed_in()
    assert not await laptop.signed_in()
    assert not await phone.signed_in()
    assert await index_members(app, redis, record.user_id) == {ada.key_id}

    again = await ada.post("/sessions/revoke-others", **HTMX)
    assert "There were no other sessions." in await again.get_data(as_text=True)


async def test_sign_out_everywhere_else_without_javascript_and_as_json(
    app: Quart, ada: Device
) -> None:
    laptop = await device(app, agent=CHROME)
    response = await ada.post("/sessions/revoke-others")
    assert response.status_code == 303
    assert response.headers["Location"] == "/sessions"
    assert not await laptop.signed_in()

    phone = await device(app, agent=SAFARI)
    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await ada.client.post(
        "/sessions/revoke-others", headers={**JSON, "X-CSRF-Token": token}
    )
    assert await response.get_json() == {"message": "other sessions ended", "ended": 1}
    assert not await phone.signed_in()
    assert await ada.signed_in()


# -- changing the password ----------------------------------------------------------------


async def test_password_change_ends_the_others_and_rotates_this_session(
    app: Quart, ada: Device, redis: Redis
) -> None:
    laptop = await device(app, agent=CHROME)
    old_cookie = session_cookie(ada.client)
    old_key_id = ada.key_id
    thief = app.test_client()
    thief.set_cookie("localhost", "quartapp_session", old_cookie or "")
    assert (await thief.get("/home")).status_code == 200

    response = await ada.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        page="/account/password",
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/password?changed=1"
    assert session_cookie(ada.client) not in (None, old_cookie)
    page = await ada.get("/account/password?changed=1")
    assert page.status_code == 200
    assert "Your password has been changed" in await page.get_data(as_text=True)

    assert (await thief.get("/home")).status_code == 303  # the old cookie is dead
    assert not await laptop.signed_in()
    record = await ada.record()
    assert record is not None
    assert record.key_id != old_key_id
    assert record.device == "Firefox 128 on Linux"
    assert await index_members(app, redis, record.user_id) == {ada.key_id}

    old = app.test_client()
    token = await csrf_from(old, "/")
    wrong = await old.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert wrong.status_code == 401
    right = await old.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": NEW_PASSWORD, "csrf_token": token},
    )
    assert right.status_code == 303


async def test_password_change_with_htmx_reloads_the_page(ada: Device) -> None:
    response = await ada.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        page="/account/password",
        **HTMX,
    )
    # A full load, so the page gets a CSRF token bound to the new session.
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/account/password?changed=1"
    assert await ada.signed_in()


async def test_password_change_as_json_hands_over_a_new_csrf_token(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await ada.client.post(
        "/account/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["message"] == "password changed"
    assert body["session"]["id"] == ada.public_id
    assert body["csrf_token"] != token
    stale = await ada.client.post(
        "/sessions/revoke-others", headers={**JSON, "X-CSRF-Token": token}
    )
    assert stale.status_code == 403
    fresh = await ada.client.post(
        "/sessions/revoke-others", headers={**JSON, "X-CSRF-Token": body["csrf_token"]}
    )
    assert fresh.status_code == 200
    assert not await laptop.signed_in()


@pytest.mark.parametrize(
    ("fields", "status", "field", "message"),
    [
        (
            {"current_password": "not my password", "new_password": NEW_PASSWORD},
            403,
            "current_password",
            "This is not your current password.",
        ),
        ({"current_password": "", "new_password": NEW_PASSWORD}, 422, "current_password", "Enter"),
        (
            {"current_password": PASSWORD, "new_password": "short"},
            422,
            "new_password",
            "at least 8",
        ),
        (
            {"current_password": PASSWORD, "new_password": "é" * 37},
            422,
            "new_password",
            "at most 72 characters",
        ),
        (
            {"current_password": PASSWORD, "new_password": PASSWORD},
            422,
            "new_password",
            "Choose a new password that is different from your current one.",
        ),
    ],
)
async def test_a_refused_password_change_changes_nothing(
    app: Quart, ada: Device, fields: dict[str, str], status: int, field: str, message: str
) -> None:
    laptop = await device(app, agent=CHROME)
    cookie = session_cookie(ada.client)
    before = (await User.get(email="ada@example.com")).password_hash

    response = await ada.post("/account/password", fields, page="/account/password", **HTMX)
    html = await response.get_data(as_text=True)
    assert response.status_code == status
    assert html.lstrip().startswith('<form id="password-form"')
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html)
    assert message in html
    for value in fields.values():
        if value:
            assert f'value="{value}"' not in html  # passwords are never echoed

    assert (await User.get(email="ada@example.com")).password_hash == before
    assert session_cookie(ada.client) == cookie
    assert await ada.signed_in()
    assert await laptop.signed_in()


async def test_a_wrong_current_password_without_javascript_and_as_json(ada: Device) -> None:
    wrong = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    page = await ada.post("/account/password", wrong, page="/account/password")
    html = await page.get_data(as_text=True)
    assert page.status_code == 403
    assert "<html" in html
    assert "This is not your current password." in html

    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await ada.client.post(
        "/account/password", json=wrong, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 403
    assert await response.get_json() == {
        "code": "wrong_password",
        "message": "The password given is not the account's: `fields` names the field.",
        "fields": {"current_password": "This is not your current password."},
    }


async def test_the_current_password_as_the_new_one_without_javascript_and_as_json(
    app: Quart, ada: Device
) -> None:
    laptop = await device(app, agent=CHROME)
    before = (await User.get(email="ada@example.com")).password_hash
    same = {"current_password": PASSWORD, "new_password": PASSWORD}
    page = await ada.post("/account/password", same, page="/account/password")
    html = await page.get_data(as_text=True)
    assert page.status_code == 422
    assert "<html" in html
    assert re.search(r'id="new_password"[^>]*aria-invalid="true"', html)
    assert '<small id="new_password-error" class="field-error">Choose a new password' in html

    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await ada.client.post(
        "/account/password", json=same, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 422
    assert await response.get_json() == {
        "code": "validation_failed",
        "message": "Some fields are missing or invalid: `fields` names each one.",
        "fields": {
            "new_password": "Choose a new password that is different from your current one."
        },
    }
    # Nothing changed: the hash, this session, the others.
    assert (await User.get(email="ada@example.com")).password_hash == before
    assert await ada.signed_in()
    assert await laptop.signed_in()


# -- the account page ---------------------------------------------------------------------

NAV = re.compile(r'<ul id="account-nav">.*?</ul>', flags=re.S)
# The same hint under every new password (sign-up, change, reset).
PASSWORD_HINT = (
    "8 to 72 characters (fewer with letters outside English), and not easy to guess: "
    "no common passwords, nothing built from your email."
)


def navigation_of(html: str) -> str:
    """The page's navigation, without what differs from page to page by design: which link
    is marked current, and the CSRF token of the sign-out form."""
    match = NAV.search(html)
    assert match, "no signed-in navigation on the page"
    return without_tokens(re.sub(r' aria-current="[^"]+"', "", match.group(0)))


async def test_the_account_page_leads_to_the_password_the_address_and_deletion(
    ada: Device,
) -> None:
    response = await ada.get("/account")
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert "ada@example.com" in html
    for page in ("/account/email", "/account/password", "/account/delete"):
        assert f'href="{page}"' in html, page
    assert '<a href="/account" aria-current="page">Account</a>' in html
    # Each way of looking after the account is a section of its own, none inside another.
    depth = 0
    for tag in re.findall(r"</?section\b", html):
        depth += -1 if tag.startswith("</") else 1
        assert depth in (0, 1), "a section inside another on the account page"
    assert depth == 0


async def test_the_account_page_answers_json_clients_with_the_account(ada: Device) -> None:
    page = await ada.get("/account", **JSON)
    api = await ada.get("/api/v1/account", **JSON)
    assert (page.status_code, api.status_code) == (200, 200)
    account, expected = await page.get_json(), await api.get_json()
    assert account["email"] == "ada@example.com"
    assert account["session"]["id"] == ada.public_id
    for body in (account, expected):
        del body["session"]["expires_in"]  # a second may pass between the two
    assert account == expected


async def test_the_account_page_signed_out_sends_to_sign_in_and_back(client: QuartClient) -> None:
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["Location"] == "/?next=/account"
    as_json = await client.get("/account", headers=JSON)
    assert as_json.status_code == 401


async def test_every_signed_in_page_has_the_same_navigation(ada: Device) -> None:
    pages = ["/home", "/sessions", "/account", "/account/password", "/account/email"]
    pages += ["/account/delete", "/password/forgot", "/email/verify/not-a-link"]
    navigations = {}
    for page in pages:
        response = await ada.get(page)
        assert response.status_code in (200, 410), page
        navigations[page] = navigation_of(await response.get_data(as_text=True))
    assert len(set(navigations.values())) == 1, navigations
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', navigations["/home"])
    assert links == [("/home", "Home"), ("/sessions", "Sessions"), ("/account", "Account")]
    assert "Sign out</button>" in navigations["/home"]


async def test_the_pages_of_mailed_links_signed_out_offer_no_account_navigation(
    client: QuartClient,
) -> None:
    for page in ("/password/forgot", "/email/verify/not-a-link"):
        html = await (await client.get(page)).get_data(as_text=True)
        assert 'id="account-nav"' not in html, page


async def test_every_new_password_field_says_the_same_about_its_length(
    client: QuartClient, ada: Device
) -> None:
    sign_up = await (await client.get("/register")).get_data(as_text=True)
    change = await (await ada.get("/account/password")).get_data(as_text=True)
    for html in (sign_up, change):
        assert PASSWORD_HINT in html
        assert "bytes" not in html
    # The reset form, reached only through a mailed link, from its template.
    app = ada.app
    loader = app.jinja_env.loader
    assert loader is not None
    reset, _, _ = loader.get_source(app.jinja_env, "auth/_reset_form.html")
    assert PASSWORD_HINT in reset


# -- deleting the account -----------------------------------------------------------------


async def test_deleting_the_account_leaves_no_user_and_no_session(
    app: Quart, ada: Device, redis: Redis, raw_redis: Redis, redis_prefix: str
) -> None:
    laptop = await device(app, agent=CHROME)
    bob = await device(app, "bob@example.com", agent=SAFARI, sign_up=True)
    record = await ada.record()
    assert record is not None
    page = await (await ada.get("/account/delete")).get_data(as_text=True)
    assert "ada@example.com" in page

    response = await ada.post("/account/delete", {"password": PASSWORD}, page="/account/delete")
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/deleted"
    assert session_cookie(ada.client) is None
    deleted = await ada.get("/account/deleted")
    assert deleted.status_code == 200
    deleted_html = await deleted.get_data(as_text=True)
    assert "Your account has been deleted" in deleted_html
    assert "You have been signed out on every device." in deleted_html

    assert await User.filter(email="ada@example.com").count() == 0
    assert not await ada.signed_in()
    assert not await laptop.signed_in()
    keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}*")]
    assert not await index_members(app, redis, record.user_id)
    for key in keys:
        if "}s:" in key:
            value = await raw_redis.get(key)
            stored = SessionRecord.from_redis("", "", value, 0, 0)
            assert stored.user_id != record.user_id
    assert await bob.signed_in()

    again = app.test_client()
    token = await csrf_from(again, "/")
    sign_in = await again.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert sign_in.status_code == 401


async def test_deleting_the_account_needs_the_password(app: Quart, ada: Device) -> None:
    laptop = await device(app, agent=CHROME)
    response = await ada.post(
        "/account/delete", {"password": "not my password"}, page="/account/delete", **HTMX
    )
    html = await response.get_data(as_text=True)
    assert response.status_code == 403
    assert html.lstrip().startswith('<form id="delete-account-form"')
    assert "This is not your current password." in html
    empty = await ada.post("/account/delete", {"password": ""}, page="/account/delete")
    assert empty.status_code == 422
    assert "Enter your password." in await empty.get_data(as_text=True)
    assert await User.filter(email="ada@example.com").count() == 1
    assert await ada.signed_in()
    assert await laptop.signed_in()


async def test_deleting_the_account_with_htmx_and_as_json(app: Quart, ada: Device) -> None:
    response = await ada.post(
        "/account/delete", {"password": PASSWORD}, page="/account/delete", **HTMX
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/account/deleted"

    bob = await device(app, "bob@example.com", agent=CHROME, sign_up=True)
    token = (await (await bob.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await bob.client.post(
        "/account/delete", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200
    assert await response.get_json() == {"message": "account deleted"}
    assert await User.all().count() == 0


async def test_a_session_outliving_its_account_ends_at_the_next_check(
    app: Quart, ada: Device
) -> None:
    """An account removed behind the app's back: asking for the password ends the session."""
    await User.filter(email="ada@example.com").delete()
    response = await ada.post("/account/delete", {"password": PASSWORD}, page="/account/delete")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert not await ada.signed_in()


# -- bad input ----------------------------------------------------------------------------

ACCOUNT_FORMS = ["/account/password", "/account/delete"]
not_the_password = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=80).filter(lambda text: text != PASSWORD),
    st.lists(st.text(max_size=5), max_size=2),
)


@settings(
    max_examples=40,
    deadline=None,
    # One app per test on purpose; no example changes anything the next one depends on.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(ACCOUNT_FORMS),
    body=st.fixed_dictionaries(
        {},
        optional={
            "current_password": not_the_password,
            "new_password": not_the_password,
            "password": not_the_password,
        },
    ),
)
async def test_account_forms_answer_any_json_with_a_4xx_and_change_nothing(
    app: Quart, ada: Device, path: str, body: dict[str, Any]
) -> None:
    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await ada.client.post(path, json=body, headers={"X-CSRF-Token": token})
    event(f"{path}: {response.status_code}")
    assert response.status_code in (403, 422), await response.get_data(as_text=True)
    assert {"code", "message"} <= set(await response.get_json())
    assert await ada.signed_in()
    user = await User.get(email="ada@example.com")
    assert user.password_hash.startswith("$2b$04$")


@pytest.mark.parametrize("path", ACCOUNT_FORMS)
@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"password=x", 415),
        ("application/json", b"[]", 400),
        ("application/json", b"{not json", 400),
        ("application/x-www-form-urlencoded", b"password=" + b"x" * 20_000, 413),
    ],
)
async def test_account_forms_refuse_malformed_bodies(
    ada: Device, path: str, content_type: str, body: bytes, status: int
) -> None:
    token = (await (await ada.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await ada.client.post(
        path, data=body, headers={"Content-Type": content_type, "X-CSRF-Token": token, **JSON}
    )
    assert response.status_code == status
    assert await ada.signed_in()


# -- rehashing on sign-in -----------------------------------------------------------------


async def test_a_new_bcrypt_cost_upgrades_the_hash_at_the_next_sign_in(
    make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = await make_app(BCRYPT_ROUNDS=4)
    await device(old, sign_up=True)
    first = (await User.get(email="ada@example.com")).password_hash
    assert first.startswith("$2b$04$")

    new = await make_app(BCRYPT_ROUNDS=5)
    counter = Counter(new, monkeypatch)
    await counter.install()
    await device(new)
    assert counter.mysql == 2  # the SELECT, and one UPDATE because it was needed
    upgraded = (await User.get(email="ada@example.com")).password_hash
    assert upgraded.startswith("$2b$05$")

    counter.mysql = 0
    await device(new)
    assert counter.mysql == 1
    assert (await User.get(email="ada@example.com")).password_hash == upgraded


# -- last active --------------------------------------------------------------------------


async def raw_record(app: Quart, raw_redis: Redis, dev: Device) -> bytes:
    key = store_of(app).record_key_for(dev.token)
    assert key is not None
    value = await raw_redis.get(key)
    assert value is not None
    return bytes(value)


def with_last_active(value: bytes, seconds: int) -> bytes:
    """``value`` with its last-activity field (bytes 12 to 15 of the head) set."""
    return value[:12] + seconds.to_bytes(4, "little") + value[16:]


async def test_last_active_is_written_at_most_once_per_resolution(
    make_app: Callable[..., Any], raw_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app(SESSION_ACTIVITY_RESOLUTION=1)
    ada = await device(app, sign_up=True)
    created = await raw_record(app, raw_redis, ada)
    assert created[0] == 1  # the record format's version
    assert with_last_active(created, 0) == created
    assert b"ada@example.com" in created

    assert await ada.signed_in()
    assert await raw_record(app, raw_redis, ada) == created  # too soon: no write
    await asyncio.sleep(1.1)
    await ada.get("/session/countdown", **HTMX)
    assert await raw_record(app, raw_redis, ada) == created  # the poll is not activity

    counter = Counter(app, monkeypatch)
    await counter.install()
    assert await ada.signed_in()
    assert (counter.redis, counter.mysql) == (1, 0)  # the write is inside the one script
    touched = await raw_record(app, raw_redis, ada)
    assert touched == with_last_active(created, 1)
    assert await ada.signed_in()
    assert await raw_record(app, raw_redis, ada) == touched

    record = await ada.record()
    assert record is not None
    assert record.last_active == record.created_at + 1000
    key = store_of(app).record_key_for(ada.token)
    assert 590_000 < await raw_redis.pttl(key) <= 600_000
    [listed] = await ada.sessions()
    assert listed["last_active_at"] > listed["started_at"]


async def test_last_active_waits_a_minute_by_default(
    app: Quart, ada: Device, raw_redis: Redis
) -> None:
    created = await raw_record(app, raw_redis, ada)
    await asyncio.sleep(1.1)
    assert await ada.signed_in()
    assert await raw_record(app, raw_redis, ada) == created


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (-5, "just now"),
        (59_999, "just now"),
        (60_000, "1 min ago"),
        (59 * 60_000 + 59_999, "59 min ago"),
        (3_600_000, "1 h ago"),
        (3_600_000 + 25 * 60_000, "1 h 25 min ago"),
        (24 * 3_600_000, "1 day ago"),
        (50 * 3_600_000, "2 days ago"),
    ],
)
def test_how_long_ago(milliseconds: int, text: str) -> None:
    assert how_long_ago(milliseconds) == text


def test_activity_resolution_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="QUARTAPP_SESSION_ACTIVITY_RESOLUTION"):
        create_app({"SECRET_KEY": "k" * 32, "SESSION_ACTIVITY_RESOLUTION": 0})


# -- the record -----------------------------------------------------------------------------


def store_for(redis: Redis, prefix: str, **options: Any) -> SessionStore:
    settings = {
        "idle_timeout": 60,
        "absolute_timeout": 120,
        "secret_keys": ["a test secret"],
        **options,
    }
    return SessionStore(redis, prefix=prefix, **settings)


async def test_device_and_address_survive_saving_session_data(
    raw_redis: Redis, redis_prefix: str
) -> None:
    store = store_for(raw_redis, redis_prefix)
    token, record = await store.create(7, "ada@example.com", ip="192.0.2.1", device="Edge 131")
    await store.save_data(record, {"theme": "dark"})
    loaded = await store.load(token, touch=True)
    assert loaded is not None
    assert (loaded.ip, loaded.device, loaded.data) == ("192.0.2.1", "Edge 131", {"theme": "dark"})
    assert loaded.last_active == record.created_at
    value = await raw_redis.get(store.record_key(record.tag, record.key_id))
    assert value == loaded.to_redis()
    # Packed: an IPv4 address takes 4 bytes, and no field names are stored.
    assert bytes([192, 0, 2, 1]) in value
    assert b"192.0.2.1" not in value


async def test_last_active_rewrites_its_field_and_nothing_else(
    raw_redis: Redis, redis_prefix: str
) -> None:
    store = store_for(raw_redis, redis_prefix, absolute_timeout=600)
    tag = store.tags(7)[0]
    token = tag + "A" * 43
    key = store.record_key_for(token)
    assert key is not None
    seconds, _ = await raw_redis.time()
    created = int(seconds) * 1000 - 125_000
    stored = SessionRecord(
        key_id=key_id_for(token),
        tag=tag,
        user_id=7,
        email="ada@example.com",
        created_at=created,
        absolute_deadline=created + 600_000,
        expires_at=0,
        read_at=0,
        data={"l": 3},
        last_active=created + 59_000,
        ip="2001:db8::1",
        device="Firefox 128 on Linux",
    )
    before = stored.to_redis()
    await raw_redis.set(key, before, px=30_000)

    record = await store.load(token, touch=True)
    assert record is not None
    assert record.last_active == created + 125_000
    assert (record.email, record.device, record.ip) == (
        "ada@example.com",
        "Firefox 128 on Linux",
        "2001:db8::1",
    )
    assert record.data == {"l": 3}
    assert await raw_redis.get(key) == with_last_active(before, 125)
    assert 59_000 < await raw_redis.pttl(key) <= 60_000  # and the idle deadline slid


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("A" * 43, id="untagged token from an earlier version"),
        pytest.param("A" * 48, id="too short"),
        pytest.param("{ab}c" + "A" * 44, id="braces"),
    ],
)
async def test_a_token_of_another_shape_opens_nothing(
    raw_redis: Redis, redis_prefix: str, token: str
) -> None:
    store = store_for(raw_redis, redis_prefix)
    assert store.record_key_for(token) is None
    assert await store.load(token, touch=True) is None


async def test_a_record_in_an_unknown_format_reads_as_no_session(
    raw_redis: Redis, redis_prefix: str
) -> None:
    """A record this version cannot read (say, an earlier JSON one) ends, never errors."""
    store = store_for(raw_redis, redis_prefix)
    token, record = await store.create(7, "ada@example.com")
    key = store.record_key(record.tag, record.key_id)
    other = b'{"c":1,"a":2,"u":"7","e":"ada@example.com"}'
    await raw_redis.set(key, other, keepttl=True)
    assert await store.load(token, touch=False) is None
    assert await store.load(token, touch=True) is None
    assert await store.list_sessions(7) == []
    assert await raw_redis.get(key) == other  # left for the version that wrote it


async def test_sessions_stay_reachable_while_the_secret_key_rotates(
    raw_redis: Redis, redis_prefix: str
) -> None:
    """Bucket tags are keyed by the secret key: during a rotation (the old key kept as a
    fallback), sessions filed under either key are listed and ended together."""
    before = store_for(raw_redis, redis_prefix, secret_keys=["old key"])
    old_token, old = await before.create(7, "ada@example.com")
    after = store_for(raw_redis, redis_prefix, secret_keys=["new key", "old key"])
    new_token, new = await after.create(7, "ada@example.com")
    assert (old.tag, new.tag) == (before.tags(7)[0], after.tags(7)[0])
    assert after.tags(7) == [new.tag, old.tag]
    assert await after.load(old_token, touch=True) is not None
    listed = await after.list_sessions(7)
    assert {record.key_id for record in listed} == {old.key_id, new.key_id}
    assert await after.revoke_all(7) == 2
    assert await after.load(old_token, touch=False) is None
    assert await after.load(new_token, touch=False) is None


async def test_sessions_record_the_client_address(make_app: Callable[..., Any]) -> None:
    """The socket's peer; X-Forwarded-For only when that peer is a trusted proxy."""
    app = await make_app(TRUSTED_PROXIES=["10.0.0.0/8"])
    direct = await device(app, sign_up=True, peer="198.51.100.20", **{"X-Forwarded-For": "6.6.6.6"})
    await device(app, peer="10.0.0.2", **{"X-Forwarded-For": "6.6.6.6, 203.0.113.5"})
    assert {s["ip"] for s in await direct.sessions()} == {"198.51.100.20", "203.0.113.5"}


def test_ago_is_one_time_element_with_the_exact_time_in_its_title() -> None:
    started = 1_795_805_114_000  # 2026-11-27 18:45:14 UTC
    shown = ago(started, started + 3 * 3_600_000 + 120_000)
    assert isinstance(shown, Markup)
    assert shown == Markup(
        '<time datetime="2026-11-27T18:45:14Z" title="27 Nov 2026, 18:45:14 UTC"'
        ' data-local-title="datetime">'
        "3 h 2 min ago</time>"
    )


@given(st.integers(min_value=0, max_value=253_402_300_799_000))  # up to the year 9999
def test_clock_time_reads_hours_and_minutes_of_the_utc_time(milliseconds: int) -> None:
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    shown = clock_time(milliseconds)
    assert isinstance(shown, Markup)
    assert str(shown) == (
        f'<time datetime="{moment.strftime("%Y-%m-%dT%H:%M:%SZ")}" data-local="time">'
        f"{moment.strftime('%H:%M')} UTC</time>"
    )

"""The mail channel end to end against a real SMTP server (aiosmtpd in its own process)
and real mail workers: forgot and reset password, verification, notices, an SMTP server
that is away, and a worker killed mid-queue."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from quart import Quart
from quart.testing import QuartClient
from redis.asyncio import Redis

from .conftest import PASSWORD, PUBLIC_URL, Auth, csrf_from
from .support.mail_servers import MailCatcher, html_of, link_in, start_worker, text_of, to
from .support.processes import Process

SECRET = "test secret key, not for production"
NEW_PASSWORD = "lantern orchard velvet"
RESET = "Reset your quartapp password"
VERIFY = "Confirm your email address"


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    server = MailCatcher(tmp_path / "maildir")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(
    database: str, redis_prefix: str, catcher: MailCatcher
) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(**settings: Any) -> Process:
        worker = start_worker(
            database,
            secret_key=SECRET,
            redis_prefix=redis_prefix,
            name=f"{redis_prefix.split(':')[1]}-{len(started)}",
            MAIL_URL=catcher.url,
            **settings,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
async def app(make_app: Callable[..., Any], catcher: MailCatcher) -> Quart:
    application: Quart = await make_app(MAIL_URL=catcher.url)
    return application


async def forgot(client: QuartClient, email: str, **headers: str) -> Any:
    token = await csrf_from(client, "/password/forgot")
    return await client.post(
        "/password/forgot", form={"email": email, "csrf_token": token}, headers=headers
    )


async def reset(client: QuartClient, path: str, password: str) -> Any:
    token = await csrf_from(client, "/password/forgot")  # the page of a dead link has none
    return await client.post(path, form={"new_password": password, "csrf_token": token})


def without_tokens(body: str) -> str:
    return re.sub(r'(csrf_token"? value=|X-CSRF-Token": )"[^"]+"', "", body)


async def test_forgot_mail_link_reset_ends_every_session(
    app: Quart,
    client: QuartClient,
    auth: Auth,
    catcher: MailCatcher,
    workers: Callable[..., Process],
) -> None:
    workers()
    await auth.sign_up()
    other = Auth(app.test_client())
    await other.sign_in()
    stranger = app.test_client()
    # A forged Host header does not move the link anywhere else.
    answer = await forgot(stranger, "Ada@Example.com", Host="evil.example")
    assert answer.status_code == 200
    assert "If an account exists for that address" in await answer.get_data(as_text=True)
    (mail,) = catcher.wait_for(to("ada@example.com", RESET))
    assert "evil.example" not in text_of(mail) + html_of(mail)
    assert "<img" not in html_of(mail)
    path = link_in(mail, "/password/reset/")
    assert len(path.rsplit("/", 1)[1]) >= 22  # at least 128 bits

    page = await stranger.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert (await stranger.get(path)).status_code == 200  # looking does not use it up
    weak = await reset(stranger, path, "password")
    assert weak.status_code == 422
    done = await reset(stranger, path, NEW_PASSWORD)
    assert (done.status_code, done.headers["Location"]) == (303, "/?reset=1")
    assert done.headers["Referrer-Policy"] == "no-referrer"
    assert (await stranger.get("/home")).status_code == 303  # not signed in by the reset

    # Every session ended; the old password is refused, the new one works.
    assert (await client.get("/home")).status_code == 303
    assert (await other.client.get("/home")).status_code == 303
    assert (await Auth(app.test_client()).sign_in()).status_code == 401
    assert (await Auth(app.test_client()).sign_in(password=NEW_PASSWORD)).status_code == 303
    # Single use.
    again = await reset(app.test_client(), path, "another fine passphrase")
    assert again.status_code == 410
    assert (await app.test_client().get(path)).status_code == 410
    # The owner is told, and the reset verified the address.
    (notice,) = catcher.wait_for(to("ada@example.com", "password was reset"))
    assert f"{PUBLIC_URL}/sessions" in text_of(notice)
    signed = Auth(app.test_client())
    await signed.sign_in(password=NEW_PASSWORD)
    account = await signed.client.get("/api/v1/account", headers={"Accept": "application/json"})
    assert (await account.get_json())["email_verified"] is True


async def test_unknown_address_gets_the_same_answer_and_no_mail(
    app: Quart, auth: Auth, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    workers()
    await Auth(app.test_client()).sign_up("known@example.com")
    client = app.test_client()
    known = await forgot(client, "known@example.com")
    unknown = await forgot(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert without_tokens(await known.get_data(as_text=True)) == without_tokens(
        await unknown.get_data(as_text=True)
    )
    for email in ("known@example.com", "nobody@example.com"):
        answer = await client.post(
            "/password/forgot",
            json={"email": email},
            headers={"X-CSRF-Token": await csrf_from(client, "/password/forgot")},
        )
        assert answer.status_code == 202
        assert (await answer.get_json())["message"].startswith("If an account exists")
    catcher.wait_for(to("known@example.com", RESET), count=2)
    await asyncio.sleep(2)
    assert not [m for m in catcher.messages() if m["To"] == "nobody@example.com"]


async def test_a_newer_link_or_a_password_change_kills_a_link(
    app: Quart, auth: Auth, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    workers()
    await auth.sign_up()
    stranger = app.test_client()
    await forgot(stranger, "ada@example.com")
    first = link_in(catcher.wait_for(to("ada@example.com", RESET))[0], "/password/reset/")
    await forgot(stranger, "ada@example.com")
    mails = catcher.wait_for(to("ada@example.com", RESET), count=2)
    links = {link_in(mail, "/password/reset/") for mail in mails}
    (second,) = links - {first}
    assert (await stranger.get(first)).status_code == 410
    assert (await stranger.get(second)).status_code == 200
    changed = await auth.post(
        "/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 303
    dead = await stranger.get(second)
    assert dead.status_code == 410
    body = await dead.get_data(as_text=True)
    assert "/password/forgot" in body  # a way to ask again
    (notice,) = catcher.wait_for(to("ada@example.com", "password was changed"))
    assert "Device:" in text_of(notice)


async def test_a_reset_link_expires(
    make_app: Callable[..., Any], catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    app = await make_app(MAIL_URL=catcher.url, PASSWORD_RESET_TTL=2)
    workers(PASSWORD_RESET_TTL=2)
    await Auth(app.test_client()).sign_up()
    client = app.test_client()
    await forgot(client, "ada@example.com")
    path = link_in(catcher.wait_for(to("ada@example.com", RESET))[0], "/password/reset/")
    await asyncio.sleep(2.5)
    assert (await reset(client, path, NEW_PASSWORD)).status_code == 410


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(token="/0")  # an escaped slash: "//" is first redirected to its single-slash form
@given(token=st.text(min_size=1, max_size=80))
async def test_any_token_that_names_no_link_is_a_4xx(app: Quart, token: str) -> None:
    client = app.test_client()
    for prefix in ("/password/reset/", "/email/verify/", "/email/change/"):
        answer = await client.get(prefix + quote(token, safe=""), follow_redirects=True)
        assert 400 <= answer.status_code < 500, (token, answer.status_code)


async def test_sign_up_mails_a_verification_link(
    app: Quart,
    client: QuartClient,
    auth: Auth,
    catcher: MailCatcher,
    workers: Callable[..., Process],
) -> None:
    workers()
    await auth.sign_up()
    home = await (await client.get("/home")).get_data(as_text=True)
    assert "not verified yet" in home
    account = await client.get("/api/v1/account", headers={"Accept": "application/json"})
    body = await account.get_json()
    assert (body["email"], body["email_verified"]) == ("ada@example.com", False)
    assert body["created_at"]
    (mail,) = catcher.wait_for(to("ada@example.com", VERIFY))
    path = link_in(mail, "/email/verify/")
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # GET changes nothing.
    account = await client.get("/api/v1/account", headers={"Accept": "application/json"})
    assert (await account.get_json())["email_verified"] is False
    done = await auth.post(path)
    assert (done.status_code, done.headers["Location"]) == (303, "/home?verified=1")
    account = await client.get("/api/v1/account", headers={"Accept": "application/json"})
    assert (await account.get_json())["email_verified"] is True
    assert "not verified yet" not in await (await client.get("/home")).get_data(as_text=True)
    assert (await auth.post(path)).status_code == 410


async def test_the_verification_link_can_be_sent_again_throttled(
    make_app: Callable[..., Any], catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    app = await make_app(MAIL_URL=catcher.url, THROTTLE_VERIFICATION_MAIL_PER_ACCOUNT=[1, 3600])
    workers()
    auth = Auth(app.test_client())
    await auth.sign_up()
    assert (await auth.post("/email/verify/resend")).status_code == 303
    assert (await auth.post("/email/verify/resend")).status_code == 429
    catcher.wait_for(to("ada@example.com", VERIFY), count=2)


async def test_forgot_is_throttled_the_same_for_known_and_unknown_addresses(
    make_app: Callable[..., Any], catcher: MailCatcher
) -> None:
    app = await make_app(MAIL_URL=catcher.url, THROTTLE_PASSWORD_RESET_PER_ADDRESS=[1, 3600])
    await Auth(app.test_client()).sign_up()
    client = app.test_client()
    answers = []
    for email in ("ada@example.com", "nobody@example.com"):
        assert (await forgot(client, email)).status_code == 200
        refused = await forgot(client, email)
        assert refused.status_code == 429
        body = without_tokens(await refused.get_data(as_text=True))
        answers.append(body.replace(email, ""))  # the form shows what was typed
    assert answers[0] == answers[1]


async def test_mail_waits_while_the_smtp_server_is_away(
    app: Quart, auth: Auth, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    catcher.stop()
    workers()
    await auth.sign_up()
    await forgot(app.test_client(), "ada@example.com")
    await asyncio.sleep(10)
    catcher.start()
    catcher.wait_for(to("ada@example.com", RESET), timeout=60)
    catcher.wait_for(to("ada@example.com", VERIFY), timeout=60)


async def test_a_worker_killed_mid_queue_loses_nothing_and_sends_once(
    make_app: Callable[..., Any],
    catcher: MailCatcher,
    workers: Callable[..., Process],
    redis: Redis,
    redis_prefix: str,
) -> None:
    app = await make_app(MAIL_URL=catcher.url, MAIL_TIMEOUT=1)
    emails = [f"user{n}@example.com" for n in range(5)]
    for email in emails:
        await Auth(app.test_client()).sign_up(email)
    catcher.stop()
    first = workers(MAIL_TIMEOUT=1)
    await asyncio.sleep(3)  # the worker has taken jobs and is retrying them
    first.kill()
    catcher.start()
    workers(MAIL_TIMEOUT=1)
    for email in emails:
        catcher.wait_for(to(email, VERIFY), timeout=60)
    await asyncio.sleep(3)
    for email in emails:
        assert len([m for m in catcher.messages() if m["To"] == email]) == 1


CHANGE = "Confirm your new email address"
CHANGED = "email address was changed"
NEW_SIGN_IN = "New sign-in"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
JSON = {"Accept": "application/json"}


async def ask_for_change(auth: Auth, new_email: str, password: str = PASSWORD) -> Any:
    return await auth.post("/account/email", {"current_password": password, "new_email": new_email})


async def account_of(client: QuartClient) -> Any:
    return await (await client.get("/api/v1/account", headers=JSON)).get_json()


async def test_an_address_change_goes_by_a_link_to_the_new_address(
    app: Quart,
    client: QuartClient,
    auth: Auth,
    catcher: MailCatcher,
    workers: Callable[..., Process],
) -> None:
    workers()
    await auth.sign_up()
    other = Auth(app.test_client())
    await other.sign_in()
    page = await client.get("/account/email")
    assert page.status_code == 200
    assert 'href="/account/email"' in await (await client.get("/home")).get_data(as_text=True)
    # Refusals: a wrong password, the current address, no address at all.
    wrong = await ask_for_change(auth, "new@example.com", "not my password")
    assert wrong.status_code == 403
    same = await ask_for_change(auth, "ADA@example.com")
    assert same.status_code == 422
    assert "already your address" in await same.get_data(as_text=True)
    assert (await ask_for_change(auth, "not an address")).status_code == 422
    sent = await ask_for_change(auth, "New@Example.com")
    assert (sent.status_code, sent.headers["Location"]) == (303, "/account/email?sent=1")
    assert "We sent a link" in await (await client.get("/account/email?sent=1")).get_data(
        as_text=True
    )

    (mail,) = catcher.wait_for(to("new@example.com", CHANGE))
    assert "ada@example.com" in text_of(mail)
    path = link_in(mail, "/email/change/")
    shown = await client.get(path)
    assert shown.status_code == 200
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert (await account_of(client))["email"] == "ada@example.com"  # GET changes nothing
    done = await auth.post(path)
    assert (done.status_code, done.headers["Location"]) == (303, "/account/email?changed=1")
    account = await account_of(client)
    assert (account["email"], account["email_verified"]) == ("new@example.com", True)
    assert "new@example.com" in await (await client.get("/home")).get_data(as_text=True)
    # Every other session ended; the link is used up.
    assert (await other.client.get("/home")).status_code == 303
    assert (await auth.post(path)).status_code == 410
    # The old address is told, with the device, the address and the sessions page.
    (notice,) = catcher.wait_for(to("ada@example.com", CHANGED))
    assert "new@example.com" in text_of(notice)
    assert f"{PUBLIC_URL}/sessions" in text_of(notice)
    assert f"{PUBLIC_URL}/sessions" in html_of(notice)
    assert "Device:" in text_of(notice)
    assert "From:" in text_of(notice)
    # Sign-in works with the new address only.
    assert (await Auth(app.test_client()).sign_in()).status_code == 401
    assert (await Auth(app.test_client()).sign_in("new@example.com")).status_code == 303


async def test_an_address_change_over_json(
    app: Quart, auth: Auth, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    workers()
    await auth.sign_up()
    client = auth.client
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    headers = {**JSON, "X-CSRF-Token": token}
    asked = await client.post(
        "/account/email",
        json={"current_password": PASSWORD, "new_email": "json@example.com"},
        headers=headers,
    )
    assert asked.status_code == 202
    assert (await asked.get_json())["new_email"] == "json@example.com"
    refused = await client.post(
        "/account/email", json={"current_password": PASSWORD, "new_email": ""}, headers=headers
    )
    assert refused.status_code == 422
    assert "new_email" in (await refused.get_json())["fields"]
    path = link_in(catcher.wait_for(to("json@example.com", CHANGE))[0], "/email/change/")
    stranger = app.test_client()  # followed in another browser: nobody is signed in there
    looked = await stranger.get(path, headers=JSON)
    assert await looked.get_json() == {"new_email": "json@example.com", "valid": True}
    csrf = (await (await stranger.get("/api/v1/csrf")).get_json())["csrf_token"]
    done = await stranger.post(path, json={}, headers={**JSON, "X-CSRF-Token": csrf})
    assert done.status_code == 200
    assert await done.get_json() == {"message": "email changed", "signed_in": False}
    # The browser that asked was signed out with every session.
    assert (await client.get("/api/v1/account", headers=JSON)).status_code == 401


async def test_two_accounts_never_share_an_address(
    app: Quart, auth: Auth, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    workers()
    await auth.sign_up()
    bob = Auth(app.test_client())
    await bob.sign_up("bob@example.com")
    # Both ask for the same free address; the one who follows the link first gets it.
    await ask_for_change(auth, "shared@example.com")
    await ask_for_change(bob, "shared@example.com")
    mails = catcher.wait_for(to("shared@example.com", CHANGE), count=2)
    links = {
        ("ada" if "ada@example.com" in text_of(m) else "bob"): link_in(m, "/email/change/")
        for m in mails
    }
    assert (await auth.post(links["ada"])).status_code == 303
    taken = await bob.post(links["bob"])
    assert taken.status_code == 409
    body = await taken.get_data(as_text=True)
    assert "belongs to another account" in body
    assert (await account_of(bob.client))["email"] == "bob@example.com"
    # An account signed up with the address after the link was sent: a 409 as well.
    await ask_for_change(bob, "later@example.com")
    path = link_in(catcher.wait_for(to("later@example.com", CHANGE))[0], "/email/change/")
    await Auth(app.test_client()).sign_up("later@example.com")
    assert (await bob.post(path)).status_code == 409
    assert (await account_of(bob.client))["email"] == "bob@example.com"


async def test_address_change_links_are_throttled_per_account(
    make_app: Callable[..., Any], catcher: MailCatcher
) -> None:
    app = await make_app(MAIL_URL=catcher.url, THROTTLE_EMAIL_CHANGE_PER_ACCOUNT=[1, 3600])
    auth = Auth(app.test_client())
    await auth.sign_up()
    assert (await ask_for_change(auth, "one@example.com")).status_code == 303
    assert (await ask_for_change(auth, "two@example.com")).status_code == 429


async def test_a_sign_in_from_a_new_device_is_told_once(
    app: Quart, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    workers()
    owner = Auth(app.test_client())
    await owner.sign_up(**{"User-Agent": FIREFOX})
    catcher.wait_for(to("ada@example.com", VERIFY))
    # The device of the sign-up: no notice.
    assert (await Auth(app.test_client()).sign_in(**{"User-Agent": FIREFOX})).status_code == 303
    # A new device: one notice, with the device, the address and the sessions page.
    for _ in range(2):
        signed = await Auth(app.test_client()).sign_in(**{"User-Agent": CHROME})
        assert signed.status_code == 303
    (notice,) = catcher.wait_for(to("ada@example.com", NEW_SIGN_IN))
    assert "Chrome 131 on Windows" in text_of(notice)
    assert "Chrome 131 on Windows" in html_of(notice)
    assert re.search(r"^From: +\S+", text_of(notice), re.MULTILINE)  # the client's address
    assert f"{PUBLIC_URL}/sessions" in text_of(notice)
    assert f"{PUBLIC_URL}/sessions" in html_of(notice)
    # A reset from another device, then a sign-in from it: no notice for that either.
    phone = app.test_client()
    await forgot(phone, "ada@example.com")
    path = link_in(catcher.wait_for(to("ada@example.com", RESET))[0], "/password/reset/")
    token = await csrf_from(phone, "/password/forgot")
    done = await phone.post(
        path,
        form={"new_password": NEW_PASSWORD, "csrf_token": token},
        headers={"User-Agent": SAFARI},
    )
    assert done.status_code == 303
    again = await Auth(phone).sign_in(password=NEW_PASSWORD, **{"User-Agent": SAFARI})
    assert again.status_code == 303
    catcher.wait_for(to("ada@example.com", "password was reset"))
    await asyncio.sleep(2)
    assert len(catcher.wait_for(to("ada@example.com", NEW_SIGN_IN))) == 1


async def test_known_devices_are_kept_as_hmacs_in_a_capped_set(
    make_app: Callable[..., Any], redis: Redis, redis_prefix: str
) -> None:
    app = await make_app(KNOWN_DEVICES_MAX=2)
    await Auth(app.test_client()).sign_up(**{"User-Agent": FIREFOX})
    for agent in (CHROME, SAFARI):
        await Auth(app.test_client()).sign_in(**{"User-Agent": agent})
    keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}kd:*")]
    assert len(keys) == 1
    members = await redis.zrange(keys[0], 0, -1)
    assert len(members) == 2
    assert not any("Chrome" in m or "Safari" in m or "Firefox" in m for m in members)
    ttl = await redis.ttl(keys[0])
    assert 89 * 24 * 3600 < ttl <= 90 * 24 * 3600


async def test_readyz_shows_the_mail_workers(
    client: QuartClient, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    local = {"client": ("127.0.0.1", 50000)}  # a monitor on this machine: the details
    body = await (await client.get("/readyz", scope_base=local)).get_json()
    assert body["mail"]["workers"] == 0
    workers()
    deadline = time.monotonic() + 20
    while body["mail"]["workers"] < 1:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.5)
        body = await (await client.get("/readyz", scope_base=local)).get_json()
    assert body["mail"]["queue"] == "ok"


__all__ = ["AsyncIterator"]

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

import pytest
from hypothesis import HealthCheck, given, settings
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
@given(token=st.text(min_size=1, max_size=80))
async def test_any_token_that_names_no_link_is_a_4xx(app: Quart, token: str) -> None:
    from urllib.parse import quote

    client = app.test_client()
    for prefix in ("/password/reset/", "/email/verify/"):
        answer = await client.get(prefix + quote(token, safe=""))
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


async def test_readyz_shows_the_mail_workers(
    client: QuartClient, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    body = await (await client.get("/readyz")).get_json()
    assert body["mail"]["workers"] == 0
    workers()
    deadline = time.monotonic() + 20
    while body["mail"]["workers"] < 1:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.5)
        body = await (await client.get("/readyz")).get_json()
    assert body["mail"]["queue"] == "ok"


__all__ = ["AsyncIterator"]

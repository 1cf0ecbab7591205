"""The mail channel end to end against a real SMTP server (aiosmtpd in its own process)
and real mail workers: forgot and reset password, verification, notices, an SMTP server
that is away, and a worker killed mid-queue."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import bcrypt
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from quart import Quart
from quart.testing import QuartClient
from redis.asyncio import Redis

from quartapp.accounts.known_devices import get_known_devices
from quartapp.accounts.models import User
from quartapp.sessions.devices import describe_device

from .conftest import PASSWORD, PUBLIC_URL, SECRET_KEY, Auth, csrf_from, session_cookie
from .support.mail_servers import MailCatcher, html_of, link_in, text_of, to
from .support.processes import Process

NEW_PASSWORD = "lantern orchard velvet"
RESET = "Reset your quartapp password"
VERIFY = "Confirm your email address"


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


async def test_a_reset_in_a_browser_signed_in_to_another_account_ends_that_session(
    app: Quart, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    """The finding: a reset link opened in a browser signed in to another account signed
    that browser out, but its session lived on in Redis, so a copy of the cookie still
    worked. Now the reset ends that session on the server too."""
    workers()
    await Auth(app.test_client()).sign_up()
    shared = Auth(app.test_client())
    await shared.sign_up("grace@example.com")
    copy = app.test_client()
    copy.set_cookie("localhost", "quartapp_session", session_cookie(shared.client) or "")
    assert (await copy.get("/home")).status_code == 200
    await forgot(shared.client, "ada@example.com")
    path = link_in(catcher.wait_for(to("ada@example.com", RESET))[0], "/password/reset/")
    done = await reset(shared.client, path, NEW_PASSWORD)
    assert (done.status_code, done.headers["Location"]) == (303, "/?reset=1")
    assert (await shared.client.get("/home")).status_code == 303
    assert (await copy.get("/home")).status_code == 303  # the session is gone, not just the cookie
    assert (await Auth(app.test_client()).sign_in("grace@example.com")).status_code == 303


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


async def test_a_newer_link_leaves_the_older_one_and_a_password_change_kills_both(
    app: Quart, auth: Auth, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    workers()
    await auth.sign_up()
    stranger = app.test_client()
    await forgot(stranger, "ada@example.com")
    first = link_in(catcher.wait_for(to("ada@example.com", RESET))[0], "/password/reset/")
    await forgot(app.test_client(), "ada@example.com")
    mails = catcher.wait_for(to("ada@example.com", RESET), count=2)
    links = {link_in(mail, "/password/reset/") for mail in mails}
    (second,) = links - {first}
    # Someone else asking for a link does not take the owner's away.
    assert (await stranger.get(first)).status_code == 200
    assert (await stranger.get(second)).status_code == 200
    changed = await auth.post(
        "/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 303
    for path in (first, second):
        dead = await stranger.get(path)
        assert dead.status_code == 410
        body = await dead.get_data(as_text=True)
        assert "/password/forgot" in body  # a way to ask again
    (notice,) = catcher.wait_for(to("ada@example.com", "password was changed"))
    assert "Device:" in text_of(notice)


async def queue_drained(redis: Redis, redis_prefix: str) -> None:
    """Wait (90 s at most) until the mail queue holds no job waiting, queued or being tried."""
    deadline = time.monotonic() + 90
    while True:
        waiting = await redis.zcard(f"{redis_prefix}mail:incomplete")
        queued = await redis.llen(f"{redis_prefix}mail:queued")
        if waiting == queued == 0:
            return
        assert time.monotonic() < deadline, (waiting, queued)
        await asyncio.sleep(0.2)


async def test_a_password_change_kills_links_asked_for_before_it_however_late_they_go(
    app: Quart,
    auth: Auth,
    catcher: MailCatcher,
    workers: Callable[..., Process],
    redis: Redis,
    redis_prefix: str,
) -> None:
    """Someone who knows the password asks to move the account to their address, and for a
    reset link, while SMTP refuses; the owner then changes the password. When SMTP comes
    back, neither link goes out (and none would work): their grants were fixed when asked."""
    await auth.sign_up()
    catcher.stop()
    workers()
    thief = Auth(app.test_client())
    assert (await thief.sign_in()).status_code == 303
    assert (await ask_for_change(thief, "thief@example.com")).status_code == 303
    assert (await forgot(thief.client, "ada@example.com")).status_code == 200
    changed = await auth.post(
        "/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 303
    await asyncio.sleep(3)  # the worker tries, and SMTP refuses
    catcher.start()
    catcher.wait_for(to("ada@example.com", "password was changed"), timeout=60)
    await queue_drained(redis, redis_prefix)
    assert not [m for m in catcher.messages() if m["To"] == "thief@example.com"]
    assert not [m for m in catcher.messages() if RESET in str(m["Subject"])]
    assert (await account_of(auth.client))["email"] == "ada@example.com"


async def test_sending_a_link_again_while_smtp_is_away_keeps_the_delivered_one(
    app: Quart,
    auth: Auth,
    catcher: MailCatcher,
    workers: Callable[..., Process],
    redis: Redis,
    redis_prefix: str,
) -> None:
    workers()
    await auth.sign_up()
    first = link_in(catcher.wait_for(to("ada@example.com", VERIFY))[0], "/email/verify/")
    catcher.stop()
    assert (await auth.post("/email/verify/resend")).status_code == 303
    await asyncio.sleep(4)  # tried again and again, refused every time
    assert (await auth.client.get(first)).status_code == 200
    # One link per request, none per try: a retry sends the link that was asked for.
    assert len([key async for key in redis.scan_iter(match=f"{redis_prefix}mt:verify:*")]) == 2
    catcher.start()
    mails = catcher.wait_for(to("ada@example.com", VERIFY), count=2, timeout=60)
    (second,) = {link_in(mail, "/email/verify/") for mail in mails} - {first}
    assert (await auth.client.get(second)).status_code == 200
    done = await auth.post(first)
    assert (done.status_code, done.headers["Location"]) == (303, "/home?verified=1")


async def test_a_reset_link_expires(
    make_app: Callable[..., Any], catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    # The link's lifetime starts when it is asked for (a link that expires before its
    # mail goes out is not sent), so the worker is seen sending before the request.
    app = await make_app(MAIL_URL=catcher.url, PASSWORD_RESET_TTL=5)
    workers()
    await Auth(app.test_client()).sign_up()
    catcher.wait_for(to("ada@example.com", VERIFY))
    client = app.test_client()
    await forgot(client, "ada@example.com")
    path = link_in(catcher.wait_for(to("ada@example.com", RESET))[0], "/password/reset/")
    await asyncio.sleep(5.5)
    assert (await reset(client, path, NEW_PASSWORD)).status_code == 410


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(token="/0")  # an escaped slash: "//" is first redirected to its single-slash form
@given(token=st.text(min_size=1, max_size=80))
async def test_any_token_that_names_no_link_is_a_4xx(app: Quart, token: str) -> None:
    client = app.test_client()
    for prefix in ("/password/reset/", "/email/verify/", "/email/change/", "/email/undo/"):
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
    # From a client the account does not remember (its own is exempt from this rule).
    client, stranger = app.test_client(), "198.51.100.7"
    answers = []
    for email in ("ada@example.com", "nobody@example.com"):
        assert (await forgot_from(client, stranger, email)).status_code == 200
        refused = await forgot_from(client, stranger, email)
        assert refused.status_code == 429
        body = without_tokens(await refused.get_data(as_text=True))
        answers.append(body.replace(email, ""))  # the form shows what was typed
    assert answers[0] == answers[1]


def from_address(address: str) -> dict[str, Any]:
    return {"scope_base": {"client": (address, 40000)}}


async def forgot_from(client: QuartClient, address: str, email: str) -> Any:
    token = await csrf_from(client, "/password/forgot")
    return await client.post(
        "/password/forgot", form={"email": email, "csrf_token": token}, **from_address(address)
    )


async def test_strangers_asking_for_the_owners_address_neither_lock_the_owner_out_nor_void_links(
    make_app: Callable[..., Any], catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    app = await make_app(
        MAIL_URL=catcher.url,
        THROTTLE_PASSWORD_RESET_PER_IP=[10, 3600],
        THROTTLE_PASSWORD_RESET_PER_ADDRESS=[3, 3600],
        THROTTLE_PASSWORD_RESET_PER_ADDRESS_IP=[3, 3600],
    )
    workers()
    owner = app.test_client()
    home = "192.0.2.10"  # the owner signs up from here: the account remembers this client
    token = await csrf_from(owner, "/register")
    form = {"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    signed_up = await owner.post("/api/v1/signup", form=form, **from_address(home))
    assert signed_up.status_code == 303
    assert (await forgot_from(owner, home, "ada@example.com")).status_code == 200
    mine = link_in(catcher.wait_for(to("ada@example.com", RESET))[0], "/password/reset/")
    # Strangers fill the address's hourly allowance (the owner's request counted in it
    # too), then are refused.
    for n in range(2):
        stranger = app.test_client()
        assert (
            await forgot_from(stranger, f"198.51.100.{n}", "ada@example.com")
        ).status_code == 200
    refused = await forgot_from(app.test_client(), "198.51.100.9", "ada@example.com")
    assert refused.status_code == 429
    # The owner's device is not held back by them, and their link still works.
    assert (await forgot_from(owner, home, "ada@example.com")).status_code == 200
    assert (await owner.get(mine)).status_code == 200
    # The owner's device has a limit of its own, so the address's mail stays bounded.
    assert (await forgot_from(owner, home, "ada@example.com")).status_code == 200
    assert (await forgot_from(owner, home, "ada@example.com")).status_code == 429
    catcher.wait_for(to("ada@example.com", RESET), count=5)
    await asyncio.sleep(2)
    assert len(catcher.wait_for(to("ada@example.com", RESET))) == 5
    token = await csrf_from(owner, "/password/forgot")
    done = await owner.post(mine, form={"new_password": NEW_PASSWORD, "csrf_token": token})
    assert done.status_code == 303


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


def test_a_saq_fault_with_a_job_in_its_traceback_is_one_line_without_it() -> None:
    """SAQ logs an upkeep fault with its traceback, and the exception's text may describe a
    job in full (a sweep that refreshes a job deleted as it finished: "Job<function:
    new_device_notice, kwargs: {...}> doesn't exist"). Through the filter it is one line
    naming the exception's kind."""
    from saq.job import Job

    from quartapp.mail.job_logs import WithoutJobDetails

    job = Job("new_device_notice", kwargs={"email": "ada@example.com", "ip": "203.0.113.77"})
    try:
        raise RuntimeError(f"{job} doesn't exist")
    except RuntimeError:
        record = logging.LogRecord(
            "saq", logging.ERROR, __file__, 1, "Upkeep task failed unexpectedly", None, None
        )
        record.exc_info = sys.exc_info()
    assert WithoutJobDetails().filter(record)
    line = logging.Formatter("%(name)s %(message)s").format(record)
    assert line == "saq Upkeep task failed unexpectedly: RuntimeError"


async def test_worker_logs_name_jobs_not_people_one_line_per_failed_attempt(
    app: Quart,
    catcher: MailCatcher,
    workers: Callable[..., Process],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The finding: SAQ logged every job's arguments (addresses, IP addresses, device
    names) and two tracebacks on each of 80 attempts; 100 notices during an outage wrote
    5.2 MB of log in 2 minutes. Now the logs name a job by its id and kind, with one line
    per failed attempt, in the worker and in the app that enqueues."""
    caplog.set_level(logging.INFO, logger="saq")
    catcher.stop()  # the SMTP server is away: every attempt fails until it is back
    worker = workers()
    await Auth(app.test_client()).sign_up(**{"User-Agent": FIREFOX})
    client = app.test_client()
    token = await csrf_from(client, "/")
    signed = await client.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
        headers={"User-Agent": CHROME},
        scope_base={"client": ("203.0.113.77", 40000)},
    )
    assert signed.status_code == 303  # a new-device notice: device and address in its job
    await forgot(app.test_client(), "ada@example.com")  # the address in its job
    failed = re.compile(r"mail job (\S+) \((\w+)\) attempt (\d+) of 80 failed: (.*)")
    worker.wait_until(
        "three jobs failing twice",
        lambda: len({m[0] for m in failed.findall(worker.output(10**7)) if m[2] == "2"}) >= 3,
        timeout=60,
    )
    catcher.start()
    catcher.wait_for(to("ada@example.com", RESET), timeout=60)
    catcher.wait_for(to("ada@example.com", NEW_SIGN_IN), timeout=60)
    worker.stop()
    log = worker.output(10**7)
    for personal in ("ada@example.com", "203.0.113.77", "Chrome", "Firefox", "Linux"):
        assert personal not in log
    assert "Traceback" not in log
    attempts: dict[str, list[int]] = {}
    for key, kind, attempt, error in failed.findall(log):
        attempts.setdefault(key, []).append(int(attempt))
        assert kind in ("verification_mail", "new_device_notice", "password_reset_mail")
        assert error.startswith("MailNotSent from "), error
    assert len(attempts) == 3
    for numbers in attempts.values():  # one line per failed attempt
        assert numbers == list(range(1, len(numbers) + 1))
    assert "ada@example.com" not in caplog.text  # nor does the app log what it enqueues


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
    verify = link_in(catcher.wait_for(to("ada@example.com", VERIFY))[0], "/email/verify/")
    assert (await auth.post(verify)).status_code == 303  # the old address is the owner's
    other = Auth(app.test_client())
    await other.sign_in()
    page = await client.get("/account/email")
    assert page.status_code == 200
    assert 'href="/account/email"' in await (await client.get("/account")).get_data(as_text=True)
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
    # Nothing the requester chose but the recipient's own address: not the account's.
    assert "ada@example.com" not in text_of(mail) + html_of(mail)
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
    # The session goes on under a new token, still saying how it was signed in.
    listed = await (await client.get("/sessions", headers=JSON)).get_json()
    [this] = [session for session in listed["sessions"] if session["current"]]
    assert this["signed_in_with"] == "sign_up"
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
    assert await done.get_json() == {
        "message": "email changed",
        "email": "json@example.com",
        "signed_in": False,
    }
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
    ada_path = link_in(catcher.wait_for(to("shared@example.com", CHANGE))[0], "/email/change/")
    await ask_for_change(bob, "shared@example.com")
    mails = catcher.wait_for(to("shared@example.com", CHANGE), count=2)
    (bob_path,) = {link_in(m, "/email/change/") for m in mails} - {ada_path}
    assert (await auth.post(ada_path)).status_code == 303
    taken = await bob.post(bob_path)
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


async def test_one_address_gets_a_bounded_number_of_mails_and_no_text_a_stranger_chose(
    make_app: Callable[..., Any],
    catcher: MailCatcher,
    workers: Callable[..., Process],
    redis: Redis,
    redis_prefix: str,
) -> None:
    """Fresh accounts, each with an address shaped like a link, ask to move to one address:
    the address gets 3 change links an hour, none naming an account. Every kind of mail to
    one address counts against one bound, and an address the account never verified is not
    shown where the account moved."""
    app = await make_app(
        MAIL_URL=catcher.url,
        THROTTLE_EMAIL_CHANGE_PER_ACCOUNT=[3, 3600],
        THROTTLE_EMAIL_CHANGE_PER_ADDRESS=[3, 3600],
    )
    workers(THROTTLE_MAIL_PER_RECIPIENT=[4, 3600])
    statuses = []
    for n in range(5):
        requester = Auth(app.test_client())
        await requester.sign_up(f"https.evil.example.claim-{n}@example.com")
        statuses.append((await ask_for_change(requester, "victim@example.com")).status_code)
    assert statuses == [303, 303, 303, 429, 429]
    mails = catcher.wait_for(to("victim@example.com", CHANGE), count=3)
    for mail in mails:
        assert "evil" not in text_of(mail) + html_of(mail)
    # Someone signs up with the victim's address (never verified) and moves the account to
    # an address of their choosing: the victim is told, without that address.
    squatter = Auth(app.test_client())
    await squatter.sign_up("victim2@example.com")
    await ask_for_change(squatter, "https.evil.example.x@example.com")
    path = link_in(
        catcher.wait_for(to("https.evil.example.x@example.com", CHANGE))[0], "/email/change/"
    )
    assert (await squatter.post(path)).status_code == 303
    (notice,) = catcher.wait_for(to("victim2@example.com", CHANGED))
    assert "evil" not in text_of(notice) + html_of(notice)
    assert "to another address" in text_of(notice)
    # Every kind counts against one bound per recipient: 4 mails, whatever they are.
    owner = Auth(app.test_client())
    await owner.sign_up("bounded@example.com")  # a verification link
    for _ in range(4):
        await forgot(app.test_client(), "bounded@example.com")  # reset links
    await queue_drained(redis, redis_prefix)
    assert len([m for m in catcher.messages() if m["To"] == "bounded@example.com"]) == 4


async def test_addresses_mail_cannot_reach_are_refused_and_never_retried(
    app: Quart,
    catcher: MailCatcher,
    workers: Callable[..., Process],
    redis: Redis,
    redis_prefix: str,
) -> None:
    workers()
    unsendable = "jürgen@example.com"  # a non-ASCII local part needs SMTPUTF8
    # Sign-up, the address change and "forgot" refuse it, each with a clear 422.
    refused = await Auth(app.test_client()).sign_up(unsendable)
    assert refused.status_code == 422
    assert "cannot send mail" in await refused.get_data(as_text=True)
    client = app.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    as_json = await client.post(
        "/api/v1/signup",
        json={"email": unsendable, "password": PASSWORD},
        headers={**JSON, "X-CSRF-Token": token},
    )
    assert as_json.status_code == 422
    assert "cannot send mail" in (await as_json.get_json())["fields"]["email"]
    assert (await forgot(app.test_client(), unsendable)).status_code == 422
    owner = Auth(app.test_client())
    await owner.sign_up()
    moved = await ask_for_change(owner, unsendable)
    assert moved.status_code == 422
    assert "cannot send mail" in await moved.get_data(as_text=True)
    # An international domain is fine: it is sent in its ASCII form.
    assert (await Auth(app.test_client()).sign_up("ada@bücher.example")).status_code == 303
    catcher.wait_for(to("ada@xn--bcher-kva.example", VERIFY))
    # An account made before the rule: its mail is dropped at once, never tried again.
    async with app.app_context():
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        await User.create(email=unsendable, password_hash=hashed)
    legacy = Auth(app.test_client())
    assert (await legacy.sign_in(unsendable)).status_code == 303
    assert (await legacy.post("/email/verify/resend")).status_code == 303
    await queue_drained(redis, redis_prefix)


async def test_the_old_address_can_undo_a_takeover(
    app: Quart, auth: Auth, catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    """Someone who knows the password moves the account away (three times) and changes the
    password. The owner's undo link, mailed to their verified address, still works after the
    attacker used a later one; it puts the address back, ends every session, and the owner
    sets a new password. Later undo links die with it; each works once."""
    workers()
    await auth.sign_up()
    verify = link_in(catcher.wait_for(to("ada@example.com", VERIFY))[0], "/email/verify/")
    assert (await auth.post(verify)).status_code == 303
    thief = Auth(app.test_client())
    assert (await thief.sign_in()).status_code == 303
    password = PASSWORD
    undo: dict[str, str] = {}
    for old, new in (
        ("ada@example.com", "thief1@example.com"),
        ("thief1@example.com", "thief2@example.com"),
        ("thief2@example.com", "thief3@example.com"),
    ):
        assert (await ask_for_change(thief, new, password)).status_code == 303
        path = link_in(catcher.wait_for(to(new, CHANGE))[0], "/email/change/")
        assert (await thief.post(path)).status_code == 303
        (notice,) = catcher.wait_for(to(old, CHANGED))
        assert "mailed to the new address" not in text_of(notice)
        assert "7 days" in text_of(notice)
        assert "/email/undo/" in html_of(notice)
        undo[old] = link_in(notice, "/email/undo/")
        if password == PASSWORD:  # the thief changes the password after the first move
            changed = await thief.post(
                "/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
            )
            assert changed.status_code == 303
            password = NEW_PASSWORD
    # The thief uses a later undo link (JSON): the account goes back to thief2@.
    looked = await thief.client.get(undo["thief2@example.com"], headers=JSON)
    assert await looked.get_json() == {"email": "thief2@example.com", "valid": True}
    thief_token = await csrf_from(thief.client, "/password/forgot")
    used = await thief.client.post(
        undo["thief2@example.com"], json={}, headers={**JSON, "X-CSRF-Token": thief_token}
    )
    assert used.status_code == 200
    assert (await used.get_json())["reset_path"].startswith("/password/reset/")
    # The owner's link still works. GET shows one button and changes nothing.
    owner = app.test_client()
    page = await owner.get(undo["ada@example.com"])
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "Undo the change" in await page.get_data(as_text=True)
    async with app.app_context():
        assert not await User.filter(email="ada@example.com").exists()
        assert await User.filter(email="thief2@example.com").exists()
    token = await csrf_from(owner, "/password/forgot")
    done = await owner.post(undo["ada@example.com"], form={"csrf_token": token})
    assert done.status_code == 303
    reset_path = done.headers["Location"]
    assert reset_path.startswith("/password/reset/")
    # Every session ended; nobody's password works any more, the thief's least of all.
    assert (await thief.client.get("/home")).status_code == 303
    assert (await auth.client.get("/home")).status_code == 303
    for email, typed in (("ada@example.com", NEW_PASSWORD), ("ada@example.com", PASSWORD)):
        assert (await Auth(app.test_client()).sign_in(email, typed)).status_code == 401
    assert (
        await Auth(app.test_client()).sign_in("thief2@example.com", NEW_PASSWORD)
    ).status_code == 401
    # The owner lands on the reset form for the restored address and sets a new password.
    form = await owner.get(reset_path)
    assert form.status_code == 200
    assert "ada@example.com" in await form.get_data(as_text=True)
    assert (await reset(owner, reset_path, "owner is back for good")).status_code == 303
    back = await Auth(app.test_client()).sign_in("ada@example.com", "owner is back for good")
    assert back.status_code == 303
    # Each undo link works once, and a later one died with the owner's.
    for path in (undo["ada@example.com"], undo["thief1@example.com"]):
        dead = await app.test_client().get(path)
        assert dead.status_code == 410
        assert "contact the people who run this site" in await dead.get_data(as_text=True)
    dead_json = await app.test_client().get(undo["thief1@example.com"], headers=JSON)
    assert dead_json.status_code == 410
    assert (await dead_json.get_json())["code"] == "link_dead"


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


def firefox(version: int) -> str:
    """A user agent whose device name ("Firefox <version> on Linux") is new each version."""
    return f"Mozilla/5.0 (X11; Linux x86_64; rv:{version}.0) Gecko/20100101 Firefox/{version}.0"


async def test_new_device_notices_are_bounded_per_account(
    make_app: Callable[..., Any], catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    """The finding: cycling 21 user agents made every sign-in "new": 42 sign-ins, 42
    notices. Now at most three an hour (NEW_DEVICE_NOTICES), then none until the window
    has room."""
    app = await make_app(MAIL_URL=catcher.url)
    workers()
    await Auth(app.test_client()).sign_up(**{"User-Agent": FIREFOX})
    catcher.wait_for(to("ada@example.com", VERIFY))
    for _ in range(2):
        for version in range(100, 121):
            signed = await Auth(app.test_client()).sign_in(**{"User-Agent": firefox(version)})
            assert signed.status_code == 303
    notices = catcher.wait_for(to("ada@example.com", NEW_SIGN_IN), count=3)
    told = sorted(re.findall(r"Firefox (\d+) on Linux", " ".join(map(text_of, notices))))
    assert told == ["100", "101", "102"]
    # A mail queued after every sign-in above has been sent: nothing more came of them.
    auth = Auth(app.test_client())
    await auth.sign_in(**{"User-Agent": FIREFOX})
    changed = await auth.post(
        "/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code in (200, 303)
    catcher.wait_for(to("ada@example.com", "password was changed"))
    await asyncio.sleep(1)
    assert len(catcher.wait_for(to("ada@example.com", NEW_SIGN_IN), count=3)) == 3


async def test_a_device_held_back_is_told_once_the_window_has_room(
    make_app: Callable[..., Any], catcher: MailCatcher, workers: Callable[..., Process]
) -> None:
    app = await make_app(MAIL_URL=catcher.url, NEW_DEVICE_NOTICES=[1, 3])
    workers()
    await Auth(app.test_client()).sign_up(**{"User-Agent": FIREFOX})
    for agent in (CHROME, SAFARI):  # Safari's notice is held back: one per window
        assert (await Auth(app.test_client()).sign_in(**{"User-Agent": agent})).status_code == 303
    (first,) = catcher.wait_for(to("ada@example.com", NEW_SIGN_IN))
    assert "Chrome" in text_of(first)
    await asyncio.sleep(3.2)  # the window passes
    assert (await Auth(app.test_client()).sign_in(**{"User-Agent": SAFARI})).status_code == 303
    notices = catcher.wait_for(to("ada@example.com", NEW_SIGN_IN), count=2)
    assert any("Safari" in text_of(notice) for notice in notices)


async def test_a_secret_key_rotation_turns_no_known_device_into_a_new_one(
    make_app: Callable[..., Any],
    catcher: MailCatcher,
    workers: Callable[..., Process],
    redis: Redis,
    redis_prefix: str,
) -> None:
    """The finding: known devices were looked up by the current key only, so after a
    rotation every user's next sign-in mailed a "new sign-in" notice. Now the fallback
    keys' names are looked up too, and renamed under the current key, so the device stays
    known once the fallback is dropped as well."""
    workers()
    before = await make_app(MAIL_URL=catcher.url)
    await Auth(before.test_client()).sign_up(**{"User-Agent": FIREFOX})
    assert (await Auth(before.test_client()).sign_in(**{"User-Agent": CHROME})).status_code == 303
    catcher.wait_for(to("ada@example.com", NEW_SIGN_IN))
    new_key = "the new secret key, rotated in, long enough"
    rotating = await make_app(
        MAIL_URL=catcher.url, SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[SECRET_KEY]
    )
    for agent in (FIREFOX, CHROME):
        assert (
            await Auth(rotating.test_client()).sign_in(**{"User-Agent": agent})
        ).status_code == 303
    (key,) = [key async for key in redis.scan_iter(match=f"{redis_prefix}kd:*")]
    async with rotating.app_context():
        devices = get_known_devices()
        renamed = {devices.name(describe_device(agent)) for agent in (FIREFOX, CHROME)}
    assert set(await redis.zrange(key, 0, -1)) == renamed  # the old names are gone
    after = await make_app(MAIL_URL=catcher.url, SECRET_KEY=new_key)
    for agent in (FIREFOX, CHROME, SAFARI):
        assert (await Auth(after.test_client()).sign_in(**{"User-Agent": agent})).status_code == 303
    notices = catcher.wait_for(to("ada@example.com", NEW_SIGN_IN), count=2)
    await asyncio.sleep(1)  # anything the rotation set off would have come by now
    notices = catcher.wait_for(to("ada@example.com", NEW_SIGN_IN), count=2)
    assert sorted("Safari" in text_of(notice) for notice in notices) == [False, True]
    assert len(notices) == 2


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


async def everything_under(redis: Redis, prefix: str) -> dict[bytes, bytes]:
    """Every key under ``prefix`` and all it holds, whatever its type, as bytes."""
    found: dict[bytes, bytes] = {}
    async for key in redis.scan_iter(match=f"{prefix}*"):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            value: Any = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        else:
            value = kind
        found[key] = repr(value).encode()
    return found


async def test_deleting_an_account_leaves_nothing_in_redis_that_names_its_owner(
    app: Quart,
    catcher: MailCatcher,
    workers: Callable[..., Process],
    raw_redis: Redis,
    redis_prefix: str,
) -> None:
    """The finding: after a deletion Redis still held the address (the verification
    link's record, and every mail job, kept a day after sending). Now a finished job's
    record is deleted as it ends, and deleting the account deletes its links' records."""
    workers()
    owner = Auth(app.test_client())
    await owner.sign_up(**{"User-Agent": FIREFOX})
    catcher.wait_for(to("ada@example.com", VERIFY))
    signed = await owner.client.post(
        "/api/v1/signin",
        form={
            "email": "ada@example.com",
            "password": PASSWORD,
            "csrf_token": await csrf_from(owner.client, "/home"),
        },
        headers={"User-Agent": CHROME},
        scope_base={"client": ("203.0.113.77", 40000)},
    )
    assert signed.status_code == 303
    catcher.wait_for(to("ada@example.com", NEW_SIGN_IN))
    for _ in range(2):  # two reset links, both live
        await forgot(app.test_client(), "ada@example.com")
    catcher.wait_for(to("ada@example.com", RESET), count=2)
    held = await everything_under(raw_redis, redis_prefix)
    assert any(b"ada@example.com" in value for value in held.values())  # the live links
    deleted = await owner.post("/account/delete", {"password": PASSWORD})
    assert deleted.status_code == 303
    left = await everything_under(raw_redis, redis_prefix)
    for personal in (b"ada@example.com", b"203.0.113.77", b"Chrome", b"Firefox"):
        assert not [key for key, value in left.items() if personal in key + value], personal


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

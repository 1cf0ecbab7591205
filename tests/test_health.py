"""/healthz and /readyz: anyone learns up or down, only the operator learns more.

The details (each service's answer, the mail queue's workers and jobs, and the warning when
mail waits with no worker) go to a request with the health token or one straight from a
loopback address. A public /readyz that counted queued mail told which "forgot your
password" requests sent a mail, i.e. which addresses have an account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp import create_app
from quartapp.config import ConfigError

from .conftest import Auth, csrf_from
from .conftest import test_config as app_settings

TOKEN = "health-token-for-the-tests-0123456789"
OUTSIDE = {"client": ("198.51.100.7", 50000)}
LOOPBACK = {"client": ("127.0.0.1", 50000)}
PUBLIC_BODY = {"status": "ok"}


async def readyz(client: QuartClient, scope: dict[str, Any], **headers: str) -> Any:
    return await client.get("/readyz", headers=headers, scope_base=scope)


async def forgot_password(client: QuartClient, email: str) -> None:
    token = await csrf_from(client, "/password/forgot")
    reply = await client.post(
        "/password/forgot",
        form={"email": email, "csrf_token": token},
        scope_base=OUTSIDE,
    )
    assert reply.status_code in (200, 202, 303), await reply.get_data(as_text=True)


@pytest.fixture
async def guarded(make_app: Callable[..., Any]) -> Quart:
    app: Quart = await make_app(HEALTH_TOKEN=TOKEN)
    return app


async def test_the_public_readyz_says_up_and_nothing_else(guarded: Quart) -> None:
    reply = await readyz(guarded.test_client(), OUTSIDE)
    assert reply.status_code == 200
    assert await reply.get_json() == PUBLIC_BODY
    assert reply.headers["Cache-Control"] == "no-store"


async def test_the_queue_is_no_oracle_for_which_addresses_have_accounts(
    guarded: Quart,
) -> None:
    """A reset request for an address with an account queues a mail, one for an unknown
    address does not: the public answer is the same before and after both."""
    await Auth(guarded.test_client()).sign_up(email="known@example.com")
    client = guarded.test_client()
    before = await (await readyz(client, OUTSIDE)).get_json()
    await forgot_password(client, "known@example.com")
    await forgot_password(client, "nobody@example.com")
    after = await readyz(client, OUTSIDE)
    assert after.status_code == 200
    assert before == await after.get_json() == PUBLIC_BODY
    # The operator sees the queue.
    detailed = await (await readyz(client, OUTSIDE, Authorization=f"Bearer {TOKEN}")).get_json()
    assert detailed["mail"]["queued"] + detailed["mail"]["waiting"] >= 1


async def test_the_token_or_a_direct_loopback_request_gets_the_details(guarded: Quart) -> None:
    client = guarded.test_client()
    with_token = await readyz(client, OUTSIDE, Authorization=f"Bearer {TOKEN}")
    direct = await readyz(client, LOOPBACK)
    for reply in (with_token, direct):
        assert reply.status_code == 200
        body = await reply.get_json()
        assert body["redis"] == body["mysql"] == "ok"
        assert body["mail"]["queue"] == "ok"
        assert set(body["mail"]) == {"queue", "workers", "queued", "waiting"}


@pytest.mark.parametrize(
    ("scope", "headers"),
    [
        (OUTSIDE, {"Authorization": "Bearer wrong-token-wrong-token-wrong-token"}),
        (OUTSIDE, {"Authorization": TOKEN}),  # not a bearer credential
        (OUTSIDE, {"Authorization": f"Basic {TOKEN}"}),
        (OUTSIDE, {"X-Forwarded-For": "127.0.0.1"}),  # a client's claim counts for nothing
        # From loopback, but through a proxy on this machine: a client elsewhere.
        (LOOPBACK, {"X-Forwarded-For": "203.0.113.9"}),
        (LOOPBACK, {"Forwarded": "for=203.0.113.9"}),
        (LOOPBACK, {"X-Real-IP": "203.0.113.9"}),
        ({}, {}),  # no peer address at all (a Unix socket)
    ],
)
async def test_anyone_else_gets_up_or_down_only(
    guarded: Quart, scope: dict[str, Any], headers: dict[str, str]
) -> None:
    reply = await readyz(guarded.test_client(), scope, **headers)
    assert reply.status_code == 200
    assert await reply.get_json() == PUBLIC_BODY


async def test_without_a_token_set_no_bearer_gets_the_details(client: QuartClient) -> None:
    reply = await readyz(client, OUTSIDE, Authorization="Bearer ")
    assert await reply.get_json() == PUBLIC_BODY


async def test_mail_waiting_with_no_worker_is_a_warning_not_unreadiness(guarded: Quart) -> None:
    client = guarded.test_client()
    detailed = await (await readyz(client, LOOPBACK)).get_json()
    assert "warnings" not in detailed
    await Auth(guarded.test_client()).sign_up(email="waiting@example.com")
    await forgot_password(client, "waiting@example.com")
    reply = await readyz(client, LOOPBACK)
    assert reply.status_code == 200  # still in rotation: sign-in works without mail
    body = await reply.get_json()
    assert body["status"] == "ok"
    assert body["mail"]["workers"] == 0
    (warning,) = body["warnings"]
    pending = body["mail"]["waiting"]  # every job not done, the queued ones included
    assert pending >= body["mail"]["queued"] >= 1
    assert f"mail is waiting ({pending} in the queue)" in warning
    assert "no mail worker" in warning
    # The warning is a detail too.
    assert await (await readyz(client, OUTSIDE)).get_json() == PUBLIC_BODY


@pytest.mark.parametrize("token", ["short", 12345678901234567890123456789012345, ["a" * 40]])
def test_a_weak_health_token_stops_start_up(database: str, token: object) -> None:
    with pytest.raises(ConfigError, match="QUARTAPP_HEALTH_TOKEN"):
        create_app(app_settings(database, "quartapp-test:unused:", HEALTH_TOKEN=token))

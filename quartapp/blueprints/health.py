"""Liveness and readiness for load balancers and orchestrators.

Anyone may ask whether the instance is up (``/healthz``) and ready (``/readyz``), and gets
no more than that. What each service answered and the mail queue's state are details for
the operator: a request that carries ``Authorization: Bearer <QUARTAPP_HEALTH_TOKEN>``, or
one made on this machine (from a loopback address, not through a proxy), gets them. Told
to anyone, the queue's length would say which "forgot your password" requests sent mail
(an address with an account) and when SMTP is failing.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from typing import Any

from flask.sansio.blueprints import BlueprintSetupState
from quart import Blueprint, Response, current_app, request

from quartapp.config import ConfigError
from quartapp.infra.database import EXTENSION as DATABASE
from quartapp.infra.redis_client import get_redis, ping
from quartapp.mail.queue import get_mailer
from quartapp.sessions.extension import session_access
from quartapp.web.access import public
from quartapp.web.api import MAYBE_HEALTH_TOKEN, SESSIONLESS, described
from quartapp.web.client_address import parse_address
from quartapp.web.responder import Outcome, respond
from quartapp.web.schemas import Health, MailQueueState, NotReady, Ready

bp = Blueprint("health", __name__)
# The same answer every time: made once.
UP = Outcome(Health(status="ok"))

# Characters of HEALTH_TOKEN at least: 32 random characters are about 190 bits.
MIN_HEALTH_TOKEN_LENGTH = 32
# Headers a proxy adds: a request that carries one came through a proxy, whatever its peer.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


@bp.record_once
def check_health_token(state: BlueprintSetupState) -> None:
    """A HEALTH_TOKEN that is set must be long enough to be a secret."""
    token = state.app.config.get("HEALTH_TOKEN")
    if token in (None, ""):
        return
    if not isinstance(token, str) or len(token) < MIN_HEALTH_TOKEN_LENGTH:
        raise ConfigError(
            f"QUARTAPP_HEALTH_TOKEN must be a random text of at least "
            f"{MIN_HEALTH_TOKEN_LENGTH} characters, e.g. export QUARTAPP_HEALTH_TOKEN="
            "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def may_see_details() -> bool:
    """Whether this request gets the details: it shows the health token, or it comes
    straight from this machine (a loopback peer, no proxy's header)."""
    token = current_app.config.get("HEALTH_TOKEN")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), str(token).encode()
        ):
            return True
    # The ASGI server's word for the socket's peer, never a header.
    peer = request.scope.get("client")
    address = parse_address(peer[0] if peer else None)
    if address is None or not address.is_loopback:
        return False
    return not any(name in request.headers for name in PROXY_HEADERS)


@bp.get("/healthz")
@public
@session_access("none")
@described(answers={200: Health}, always=SESSIONLESS)
async def healthz() -> Response:
    """The process is up and serving."""
    return await respond(UP)


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=3)
    except Exception as error:  # any failure means "not ready"; the reason goes in the body
        return name, f"unavailable: {type(error).__name__}"
    return name, "ok"


async def mail_state() -> tuple[MailQueueState, list[str]]:
    """The mail queue's state, and a warning when mail waits and no worker runs."""
    try:
        health = await asyncio.wait_for(get_mailer().health(), timeout=3)
    except Exception as error:  # the queue's Redis may be another server
        return MailQueueState(queue=f"unavailable: {type(error).__name__}"), []
    warnings = []
    # SAQ's "incomplete" jobs (``waiting``) include the queued and the running ones.
    pending = max(int(health["queued"]), int(health["waiting"]))
    if pending and not health["workers"]:
        warnings.append(
            f"mail is waiting ({pending} in the queue) and no mail worker has reported "
            "lately: nothing sends it. Run mail workers (QUARTAPP_MAIL_WORKERS of serve, "
            "or python -m quartapp mail-worker)"
        )
    return MailQueueState(queue="ok", **health), warnings


@bp.get("/readyz")
@public
@session_access("none")
@described(answers={200: Ready, 503: NotReady}, always=SESSIONLESS, security=MAYBE_HEALTH_TOKEN)
async def readyz() -> Response:
    """Whether the instance is ready: 200 when Redis and MySQL both answer, else 503.

    A load balancer takes an instance that answers 503 out of rotation. The details
    (each service's answer, the mail queue's workers and jobs, warnings) go only to a
    request with the health token, or one made on the server's own machine.
    Mail does not decide readiness: sign-in works without a mail worker, and mail waits
    in the queue; a warning says so when mail waits and no worker was seen."""
    results = dict(
        await asyncio.gather(
            _check("redis", ping(get_redis())),
            _check("mysql", current_app.extensions[DATABASE].ping()),
        )
    )
    ready = all(value == "ok" for value in results.values())
    details: dict[str, Any] = {}
    if may_see_details():  # only these may (see the module's docstring)
        mail, warnings = await mail_state()
        details.update(results, mail=mail)
        if warnings:
            details["warnings"] = warnings
    if ready:
        return await respond(Outcome(Ready(status="ok", **details)))
    return await respond(Outcome(NotReady(status="unavailable", **details), status=503))

"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from quart import Blueprint, Response, current_app, jsonify

from quartapp.infra.database import EXTENSION as DATABASE
from quartapp.infra.redis_client import get_redis, ping
from quartapp.mail.queue import get_mailer
from quartapp.sessions.extension import session_access
from quartapp.web.access import public

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
@session_access("none")
async def healthz() -> Response:
    """The process is up and serving."""
    return jsonify({"status": "ok"})


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=3)
    except Exception as error:  # any failure means "not ready"; the reason goes in the body
        return name, f"unavailable: {type(error).__name__}"
    return name, "ok"


@bp.get("/readyz")
@public
@session_access("none")
async def readyz() -> Response:
    """Ready when Redis and MySQL both answer, so a load balancer can take us out.

    ``mail`` tells the mail queue's state: how many workers reported in the last half
    minute and how many mails wait. It does not decide readiness (sign-in works without a
    worker; mail waits in the queue), so watch ``mail.workers`` in monitoring."""
    results = dict(
        await asyncio.gather(
            _check("redis", ping(get_redis())),
            _check("mysql", current_app.extensions[DATABASE].ping()),
        )
    )
    ready = all(value == "ok" for value in results.values())
    mail: dict[str, object]
    try:
        mail = await asyncio.wait_for(get_mailer().health(), timeout=3)
    except Exception as error:  # the queue's Redis may be another server
        mail = {"queue": f"unavailable: {type(error).__name__}"}
    else:
        mail = {"queue": "ok", **mail}
    response = jsonify({"status": "ok" if ready else "unavailable", **results, "mail": mail})
    response.status_code = 200 if ready else 503
    return response

"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from quart import Blueprint, Response, current_app, jsonify

from quartapp.infra.database import EXTENSION as DATABASE
from quartapp.infra.redis_client import get_redis, ping
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
    """Ready when Redis and MySQL both answer, so a load balancer can take us out."""
    results = dict(
        await asyncio.gather(
            _check("redis", ping(get_redis())),
            _check("mysql", current_app.extensions[DATABASE].ping()),
        )
    )
    ready = all(value == "ok" for value in results.values())
    response = jsonify({"status": "ok" if ready else "unavailable", **results})
    response.status_code = 200 if ready else 503
    return response

"""The shared Redis client, opened when the app starts serving and closed when it stops."""

from __future__ import annotations

from typing import Any

from quart import Quart, current_app
from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

EXTENSION = "quartapp.redis"


class RedisClient:
    """Owns one connection pool per app; every other piece borrows ``redis``."""

    def __init__(self, app: Quart | None = None) -> None:
        self._redis: Redis | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.extensions[EXTENSION] = self
        app.before_serving(self._open)
        app.after_serving(self._close)

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("Redis is used before the app started serving")
        return self._redis

    async def _open(self) -> None:
        config = current_app.config
        timeout = float(config["REDIS_TIMEOUT"])
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # A short, bounded retry rides out a reconnect without ever hanging a request.
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
            "health_check_interval": 30,
            # Past this many requests talking to Redis at once, the next one waits (up to
            # the timeout) for a free connection instead of failing at once.
            "max_connections": int(config["REDIS_MAX_CONNECTIONS"]),
            "timeout": timeout,
        }
        pool = BlockingConnectionPool.from_url(config["REDIS_URL"], **options)
        self._redis = Redis(connection_pool=pool)

    async def _close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            await self._redis.connection_pool.disconnect()
            self._redis = None


def get_redis() -> Redis:
    client: RedisClient = current_app.extensions[EXTENSION]
    return client.redis

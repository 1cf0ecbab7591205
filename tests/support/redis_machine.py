"""Plumbing shared by the hypothesis state machines that drive a Redis-backed component."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from hypothesis.stateful import RuleBasedStateMachine
from redis.asyncio import Redis

T = TypeVar("T")


class RedisMachine(RuleBasedStateMachine):
    """A state machine with its own event loop, Redis client and key prefix.

    Hypothesis runs state machines synchronously, so each machine owns a loop and runs its
    coroutines to completion on it; teardown deletes its keys and closes everything."""

    def __init__(self, redis_url: str, name: str) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(redis_url)
        self.prefix = f"quartapp-test:{name}:{uuid.uuid4().hex[:12]}:"

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def redis_now(self) -> int:
        """Redis's clock in ms, the clock every deadline is computed on."""
        seconds, microseconds = self.run(self.redis.time())
        return int(seconds) * 1000 + int(microseconds) // 1000

    def timed(self, awaitable: Awaitable[T]) -> tuple[int, T, int]:
        """Redis's clock just before and just after ``awaitable`` runs, and its result."""
        before = self.redis_now()
        result = self.run(awaitable)
        return before, result, self.redis_now()

    def teardown(self) -> None:
        async def clean() -> None:
            keys = [key async for key in self.redis.scan_iter(match=f"{self.prefix}*", count=500)]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()

        try:
            self.run(clean())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

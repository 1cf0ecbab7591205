"""Redis memory per session, over sessions made as a sign-in makes them."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, cast

import redis

from tests.support.app_servers import delete_keys

# Realistic record fields: what a sign-in stores (quartapp/sessions/devices.py names the browser).
DEVICES = (
    "Chrome 131 on Windows",
    "Safari 18 on iOS",
    "Chrome 131 on Android",
    "Firefox 133 on Linux",
    "Edge 131 on Windows",
    "Safari 18 on macOS",
)


def session_ip(n: int) -> str:
    return f"203.0.113.{n % 250}"


async def memory_per_session(
    redis_url: str, count: int, per_user: int = 1, batch: int = 500
) -> dict[str, Any]:
    """Redis memory for ``count`` sessions, ``per_user`` to a user, each with an IP address
    and a device name as a sign-in stores them; the index buckets priced separately."""
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio import Redis as AsyncRedis

    from quartapp.sessions.store import SessionRecord, SessionStore

    # As long as the default "quartapp:", so key names cost what they cost in production.
    prefix = f"qb{secrets.token_hex(3)}:"
    control = redis.Redis.from_url(redis_url)
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=16, timeout=30)
    client = AsyncRedis(connection_pool=pool)
    store = SessionStore(
        client,
        prefix=prefix,
        idle_timeout=600,
        absolute_timeout=8 * 3600,
        secret_keys=[secrets.token_bytes(32)],
    )
    first_user = 100_000
    users = max(1, count // per_user)
    count = users * per_user
    records: list[SessionRecord] = []

    def create(n: int) -> Any:
        # Session n belongs to user n // per_user, so a user's sessions are made together.
        uid = first_user + n // per_user
        return store.create(
            uid, f"user{uid}@example.com", ip=session_ip(n), device=DEVICES[n % len(DEVICES)]
        )

    try:
        await store.create(first_user - 1, "warm@example.com")  # script cached, pool open
        delete_keys(control, prefix)
        await asyncio.sleep(0.5)
        before = int(control.info("memory")["used_memory"])
        started = time.monotonic()
        for start in range(0, count, batch):
            made = await asyncio.gather(
                *(create(n) for n in range(start, min(count, start + batch)))
            )
            records += [record for _, record in made]
        elapsed = time.monotonic() - started
        await pool.disconnect()  # its connections' buffers are not session memory
        await asyncio.sleep(1.0)  # let incremental rehashing of the keyspace settle
        after = int(control.info("memory")["used_memory"])
        step = max(1, count // 200)
        sample = records[::step]
        record_bytes = [
            control.memory_usage(store.record_key(r.tag, r.key_id), samples=0) or 0 for r in sample
        ]
        buckets = sorted({store.bucket_index(r.tag) for r in records})
        index_bytes = [
            control.memory_usage(bucket, samples=0) or 0 for bucket in buckets[:: max(1, step)]
        ]
        values = [
            cast(bytes, control.get(store.record_key(r.tag, r.key_id)) or b"") for r in sample[:10]
        ]
        value_bytes = [len(v) for v in values]
        # What the index buckets cost on their own: drop them and look again.
        for start in range(0, len(buckets), 5000):
            control.unlink(*buckets[start : start + 5000])
        await asyncio.sleep(1.0)
        records_only = int(control.info("memory")["used_memory"])
        return {
            "sessions": count,
            "users": users,
            "sessions_per_user": per_user,
            "used_memory_delta": after - before,
            "bytes_per_session": round((after - before) / count, 1),
            "record_bytes_per_session": round((records_only - before) / count, 1),
            "index_bytes_per_session": round((after - records_only) / count, 1),
            "index_bytes_per_user": round((after - records_only) / users, 1),
            "memory_usage_record_key": round(sum(record_bytes) / len(record_bytes), 1),
            "memory_usage_index_key": round(sum(index_bytes) / len(index_bytes), 1),
            "index_buckets": len(buckets),
            "record_value_bytes": round(sum(value_bytes) / len(value_bytes), 1),
            "record_value_example": values[0].hex(),
            "record_key_example": store.record_key(records[0].tag, records[0].key_id),
            "index_key_example": buckets[0],
            "creates_per_s": round(count / elapsed),
        }
    finally:
        await client.aclose()
        await pool.disconnect()
        delete_keys(control, prefix)
        control.close()

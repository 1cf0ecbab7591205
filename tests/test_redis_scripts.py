"""Scripts run on a connection taken straight from the pool (quartapp.engine.redis_scripts)
answer as redis-py's own script call does, through every way that path can go wrong."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quartapp.engine.redis_scripts import QuickBlockingConnectionPool, Script, _send

from .support.settings import REDIS_URL

ECHO = "return {KEYS[1], ARGV[1], redis.call('incr', KEYS[1])}"
# Keeps Redis busy for ARGV[1] milliseconds, then answers ARGV[2].
SLOW = (
    "local t = redis.call('time') local stop = t[1] + t[2] / 1e6 + ARGV[1] / 1000 "
    "repeat t = redis.call('time') until t[1] + t[2] / 1e6 >= stop return ARGV[2]"
)


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    pool = QuickBlockingConnectionPool.from_url(REDIS_URL, max_connections=2, timeout=5)
    redis = Redis(connection_pool=pool)
    key = f"quartapp-test-scripts:{secrets.token_hex(4)}"
    redis.test_key = key  # type: ignore[attr-defined]
    yield redis
    await redis.delete(key)
    await redis.aclose()
    await pool.disconnect()


async def test_a_script_answers_and_the_connection_goes_back(client: Redis) -> None:
    script = Script(client, ECHO)
    key = client.test_key  # type: ignore[attr-defined]
    await client.ping()  # one idle connection in the pool
    assert await script(keys=[key], args=["a"]) == [key.encode(), b"a", 1]
    assert await script(keys=[key], args=["b"]) == [key.encode(), b"b", 2]
    pool = client.connection_pool
    assert isinstance(pool, QuickBlockingConnectionPool)
    assert not pool._in_use_connections
    assert len(pool._available_connections) == 1


async def test_a_flushed_script_is_loaded_again(client: Redis) -> None:
    marker = secrets.token_hex(4)
    script = Script(client, f"return 'loaded {marker}'")
    await client.ping()
    assert await script() == f"loaded {marker}".encode()
    await client.script_flush()
    assert await script() == f"loaded {marker}".encode()


async def test_a_dropped_connection_is_replaced(client: Redis) -> None:
    script = Script(client, ECHO)
    key = client.test_key  # type: ignore[attr-defined]
    await client.ping()
    await script(keys=[key], args=["x"])
    # The server closes the pool's one idle connection under it.
    idle = await client.client_id()
    admin = Redis.from_url(REDIS_URL)
    try:
        await admin.client_kill_filter(_id=idle)
    finally:
        await admin.aclose()
    assert (await script(keys=[key], args=["y"]))[1:] == [b"y", 2]


async def test_the_script_s_own_error_is_raised_and_the_connection_kept(client: Redis) -> None:
    script = Script(client, "return redis.error_reply('refused')")
    await client.ping()
    with pytest.raises(ResponseError, match="refused"):
        await script()
    pool = client.connection_pool
    assert isinstance(pool, QuickBlockingConnectionPool)
    assert len(pool._available_connections) == 1
    assert not pool._in_use_connections
    assert await client.ping()


async def test_a_cancelled_call_leaves_no_reply_for_the_next(client: Redis) -> None:
    slow = Script(client, SLOW)
    echo = Script(client, ECHO)
    key = client.test_key  # type: ignore[attr-defined]
    await client.ping()
    call = asyncio.ensure_future(slow(args=[150, "late"]))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The late reply must not be read as the answer to this call.
    assert (await echo(keys=[key], args=["next"]))[1:] == [b"next", 1]


async def test_a_timeout_is_raised(client: Redis) -> None:
    pool = QuickBlockingConnectionPool.from_url(REDIS_URL, socket_timeout=0.1)
    quick = Redis(connection_pool=pool)
    try:
        await quick.ping()
        with pytest.raises(RedisTimeoutError):
            await Script(quick, SLOW)(args=[250, "late"])
        await asyncio.sleep(0.25)
        assert await Script(quick, "return ARGV[1]")(args=["after"]) == b"after"
    finally:
        await quick.aclose()
        await pool.disconnect()


async def test_calls_beyond_the_pool_wait_their_turn(client: Redis) -> None:
    """Two connections, sixty calls at once: each gets its own answer, none waits for
    ever (a connection given back must wake a caller waiting in the pool)."""
    script = Script(client, SLOW)
    # Both connections idle in the pool, so the first calls take them directly and the
    # rest wait inside the pool for them.
    await asyncio.gather(script(args=[20, "a"]), script(args=[20, "b"]))
    answers = await asyncio.wait_for(
        asyncio.gather(*(script(args=[5, f"call {n}"]) for n in range(60))), timeout=20
    )
    assert answers == [f"call {n}".encode() for n in range(60)]
    pool = client.connection_pool
    assert isinstance(pool, QuickBlockingConnectionPool)
    assert not pool._in_use_connections
    assert len(pool._available_connections) <= 2


async def test_a_connection_idle_past_its_health_check_is_checked_first(client: Redis) -> None:
    pool = QuickBlockingConnectionPool.from_url(REDIS_URL, health_check_interval=30)
    checked = Redis(connection_pool=pool)
    try:
        await checked.ping()
        (idle,) = pool._available_connections
        pings = 0
        check = idle.check_health

        async def counted() -> None:
            nonlocal pings
            pings += 1
            await check()

        idle.check_health = counted  # type: ignore[method-assign]
        script = Script(checked, "return ARGV[1]")
        assert await script(args=["fresh"]) == b"fresh"
        assert pings == 0  # used within its interval: no check
        idle.next_health_check = asyncio.get_running_loop().time() - 1
        assert await script(args=["stale"]) == b"stale"
        assert pings == 1
    finally:
        await checked.aclose()
        await pool.disconnect()


async def test_a_write_the_socket_cannot_take_times_out_and_closes_the_connection(
    client: Redis,
) -> None:
    """A command left in the transport's buffer (Redis not reading) is waited for up to the
    socket timeout, then raised as redis-py's timeout, the connection closed."""
    await client.ping()
    (connection,) = client.connection_pool._available_connections  # type: ignore[attr-defined]
    connection.socket_timeout = 0.05
    writer = connection._writer
    assert writer is not None
    transport = writer.transport
    stuck = asyncio.get_running_loop().create_future()

    class FullTransport:
        def get_write_buffer_size(self) -> int:
            return 1 << 20

        def __getattr__(self, name: str) -> object:
            return getattr(transport, name)

    async def drain() -> None:
        await stuck

    writer._transport = FullTransport()  # type: ignore[assignment]
    writer.drain = drain  # type: ignore[method-assign]
    with pytest.raises(RedisTimeoutError, match="writing"):
        await _send(connection, connection.pack_command("PING"))
    assert not connection.is_connected

"""Lua scripts, run with one ``EVALSHA`` on a connection taken straight from the pool.

Replaces redis-py's ``Script`` call (``register_script``) on the pages' path, and
``BlockingConnectionPool`` for the one-server client (``QuickBlockingConnectionPool``).

Every signed-in request runs one script (the session load), so its cost is per request.
redis-py's ``Script`` call goes through the client's command machinery (its retry wrapper,
metrics hooks and the blocking pool's lock, condition and timers), which cost more than
writing the command and reading its reply. Here a call on one server takes an idle,
connected connection from the pool without waiting on anything, writes ``EVALSHA``
(``_send``), reads the reply and puts the connection back. Whatever is not that simple case
goes through redis-py's own ``Script`` call, unchanged:

- no idle connection (the pool is busy: the caller waits in line as before), a Cluster, or
  Sentinel;
- a ``NOSCRIPT`` reply (Redis restarted or was flushed: redis-py loads the script again);
- a dropped connection (redis-py's retry rides it out, as for any other command).

A timeout or any other error is raised as redis-py would raise it, and a connection that
saw anything but a reply is closed before it goes back, so none is reused mid-reply.

Private names read: ``BlockingConnectionPool._available_connections``,
``_in_use_connections`` and ``_in_maintenance``; ``AbstractConnection._writer``. Public
ones relied on as redis-py uses them inside: ``AbstractConnection.next_health_check``,
``check_health``, ``should_reconnect``, ``pack_command``, ``read_response``,
``disconnect(nowait=...)``. The pool keeps ``_getting`` of its own.

Buys (``bench/instructions.py --stock-gc``, 2026-12-07: how many more instructions a
request costs without it, on Python 3.13 with Quart 0.23.1 / on 3.11 with Quart 0.22):
``GET /home`` +20.9 % / +25.1 %, ``GET /`` nothing (no session), ``GET /sessions``
+17.2 % / +19.7 %, the countdown poll +51.6 % / +61.7 %. On 3.13 ``wait_for`` no longer
starts a task, but redis-py's command path (its retry wrapper, the blocking pool's lock and
condition) still costs more than the write and the read.

Delete when: redis-py's ``Script`` call costs within 3 % of a page of this path (measure
with ``Script`` always taking redis-py's way), or redis-py renames the pool's lists or
the connection's ``_writer`` (``tests/test_engine.py`` fails first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT


class QuickBlockingConnectionPool(BlockingConnectionPool):
    """BlockingConnectionPool that can also lend an idle connection at once
    (``take_idle``) and take it back (``give_back``), without its lock and condition.

    Both are synchronous steps on the event loop's thread, so they are atomic with respect
    to every other coroutine. While anyone is inside ``get_connection`` (possibly waiting
    for a free connection), ``take_idle`` lends nothing and ``give_back`` goes through
    ``release``, which wakes the waiter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._getting = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        self._getting += 1
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call,no-any-return]
        finally:
            self._getting -= 1

    def take_idle(self) -> AbstractConnection | None:
        """An idle, connected connection, now marked in use; None when there is none."""
        if self._getting or getattr(self, "_in_maintenance", False):
            return None
        idle = self._available_connections
        if not idle or not idle[-1].is_connected:
            return None
        connection = idle.pop()
        self._in_use_connections.add(connection)
        return connection

    async def give_back(self, connection: AbstractConnection) -> None:
        """Return a connection that ``take_idle`` lent."""
        if self._getting or connection.should_reconnect():  # type: ignore[no-untyped-call]
            await self.release(connection)
            return
        self._in_use_connections.discard(connection)
        self._available_connections.append(connection)


async def _send(connection: AbstractConnection, command: list[bytes]) -> None:
    """Write ``command`` as redis-py's ``send_packed_command`` does on a connected
    connection, without the ``asyncio.wait_for`` it puts around every write (on Python 3.11
    that starts a task per command): the command goes to the transport, which sends what
    it can at once; only a write left in its buffer is waited for, up to the socket
    timeout. Errors are redis-py's: a timeout or a broken socket closes the connection.
    A connection idle past its health check interval is checked first, as redis-py does."""
    if connection.health_check_interval and (
        asyncio.get_running_loop().time() > connection.next_health_check
    ):
        await connection.check_health()  # type: ignore[no-untyped-call]
    writer = connection._writer
    assert writer is not None, "a connected connection has its writer"
    try:
        writer.writelines(command)
        if writer.transport.get_write_buffer_size():
            async with asyncio.timeout(connection.socket_timeout):
                await writer.drain()
    except TimeoutError:
        await connection.disconnect(nowait=True)
        raise RedisTimeoutError("Timeout writing to socket") from None
    except OSError as error:
        await connection.disconnect(nowait=True)
        raise RedisConnectionError(f"Error while writing to socket: {error}") from error


class Script:
    """A Lua script, called as redis-py's ``Script`` is: ``await script(keys=..., args=...)``."""

    def __init__(self, redis: Any, source: str) -> None:
        self._script = redis.register_script(source)
        pool = getattr(redis, "connection_pool", None)
        self._pool = pool if isinstance(pool, QuickBlockingConnectionPool) else None

    @property
    def sha(self) -> str:
        sha: str = self._script.sha
        return sha

    async def __call__(
        self, keys: Sequence[EncodableT] = (), args: Sequence[EncodableT] = ()
    ) -> Any:
        pool = self._pool
        connection = pool.take_idle() if pool is not None else None
        if connection is None:
            return await self._script(keys=keys, args=args)
        assert pool is not None
        try:
            command = connection.pack_command("EVALSHA", self.sha, len(keys), *keys, *args)
            await _send(connection, command)
            result = await connection.read_response()
        except NoScriptError:
            await pool.give_back(connection)
            return await self._script(keys=keys, args=args)
        except ResponseError:  # the script's own error: the connection is in order
            await pool.give_back(connection)
            raise
        except RedisConnectionError:
            await connection.disconnect(nowait=True)
            await pool.give_back(connection)
            return await self._script(keys=keys, args=args)
        except BaseException:  # a timeout, a cancellation: the reply may still be coming
            await connection.disconnect(nowait=True)
            await pool.give_back(connection)
            raise
        await pool.give_back(connection)
        return result

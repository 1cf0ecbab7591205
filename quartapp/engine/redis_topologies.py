"""Redis topologies: three redis-py classes changed so Sentinel and Cluster behave under load
and in failovers as one server does. None is on a page's path when the app talks to one
server (bench/instructions.py's set-up); each buys correctness, not instructions, and each
is exercised by tests/test_redis_topologies.py against real Sentinels and Clusters.

Replaces:

- ``BlockingSentinelConnectionPool`` replaces ``SentinelConnectionPool``'s "Too many
  connections" with ``BlockingConnectionPool``'s wait (by multiple inheritance, public
  methods only). Delete when redis-py offers a blocking Sentinel pool.
- ``ConcurrentSentinel`` replaces ``Sentinel.discover_master``, whose reordering of
  ``sentinels`` interleaves when many connections reconnect at once (after a failover),
  leaving one Sentinel twice in the list and another lost and never closed. Reads the
  private ``Sentinel._force_master_ip``. Delete when redis-py's ``discover_master`` moves
  the answering Sentinel in one step (redis-py 6.x and 7.x do not).
- ``BoundedRedisCluster`` replaces ``RedisCluster.execute_command``: it waits for a free
  connection (the Cluster's per-node pools raise when full), rebuilds a dropped cluster
  map before routing (``initialize``), and reads redis-py's own failure, an
  ``AttributeError`` on a connection another command closed, as a dropped connection. Keeps
  ``_in_flight`` and ``_wait`` of its own on the client (names redis-py must not use).
  Delete when redis-py's cluster client waits for connections and routes only with a map.

Private names read: ``redis.asyncio.sentinel.Sentinel._force_master_ip``; the text of
redis-py's ``'NoneType' object has no attribute 'writelines'``.

Buys: no instructions (see above).

Delete when: for each class, as said beside it above.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import BlockingConnectionPool
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool that, like BlockingConnectionPool, waits for a free connection (up
    to its timeout) instead of raising "Too many connections" past ``max_connections``."""


class ConcurrentSentinel(Sentinel):
    """Sentinel whose master discovery is safe when many connections ask at once.

    redis-py moves the Sentinel that answered to the front of its list by swapping two
    positions it read before its ``await``; when several connections reconnect at the same
    moment (after a failover, say), those swaps interleave, and the list ends up naming one
    Sentinel twice and losing another, whose client is then never closed. Here the list is
    read from a snapshot and the answering Sentinel is moved by identity, in one step."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        failures: list[str] = []
        for sentinel in list(self.sentinels):
            try:
                masters = await sentinel.sentinel_masters()
            except (RedisConnectionError, RedisTimeoutError) as error:
                failures.append(f"{sentinel} - {error!r}")
                continue
            state = masters.get(service_name) if isinstance(masters, dict) else None
            if state and self.check_master_state(state, service_name):
                if sentinel in self.sentinels:
                    self.sentinels.remove(sentinel)
                    self.sentinels.insert(0, sentinel)
                host = self._force_master_ip if self._force_master_ip is not None else state["ip"]
                return str(host), int(state["port"])
        detail = f" : {', '.join(failures)}" if failures else ""
        raise MasterNotFoundError(f"No master found for {service_name!r}{detail}")


class BoundedRedisCluster(RedisCluster):
    """RedisCluster that waits for a free connection instead of failing at once, and
    routes every command with a cluster map.

    The Cluster client keeps its own pool per node, which raises as soon as it is full.
    At most ``max_connections`` commands run at once here, and each holds at most one
    connection per node, so no node's pool fills up: a further command waits up to
    ``wait`` seconds for one to finish, then fails like a busy BlockingConnectionPool."""

    def __init__(self, *, wait: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_flight = asyncio.Semaphore(int(kwargs.get("max_connections", 100)))
        self._wait = wait

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._wait):
                await self._in_flight.acquire()
        except TimeoutError:
            raise RedisConnectionError("No connection available.") from None
        try:
            # The cluster map is (re)built first: redis-py decides how to route a command
            # before it rebuilds a map it dropped (at start-up, and after a CLUSTERDOWN or
            # a run of MOVED replies, as in a failover). Without a map, even a keyed
            # command goes to a random primary, whose MOVED replies make the client drop
            # the map again and close the connections other requests are using.
            tries = 2
            while True:
                await self.initialize()
                try:
                    return await super().execute_command(*args, **kwargs)
                except AttributeError as error:
                    if not _closed_under_us(error):
                        raise
                    tries -= 1
                    # Sent once more, on a new connection, only if nothing was written.
                    if not tries or "writelines" not in str(error):
                        raise RedisConnectionError("a connection closed in a failover") from error
        finally:
            self._in_flight.release()


def _closed_under_us(error: AttributeError) -> bool:
    """Whether redis-py's cluster client used a connection another command had closed.

    When it rebuilds its cluster map (in a failover) it closes the nodes' connections,
    including ones other commands are about to use; those then find no stream to write to
    or read from (``'NoneType' object has no attribute 'writelines'``). That is a dropped
    connection (a 503, or once more when nothing was written), not a fault of the app."""
    return "'NoneType' object has no attribute" in str(error)

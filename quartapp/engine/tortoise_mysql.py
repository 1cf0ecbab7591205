"""Tortoise: the MySQL client with a deadline on every statement (``BoundedMySQLClient``).

Replaces ``tortoise.backends.mysql.client.MySQLClient``'s ``execute_insert``,
``execute_many``, ``execute_query`` and ``execute_script`` with the same calls under
``asyncio.timeout(query_timeout)``. Tortoise finds an engine's client class as
``client_class`` in the module its config names as ``engine`` (this module, set by
``infra.database.tortoise_config``), and passes the config's ``credentials`` to it as
keyword arguments (``query_timeout`` among them).

Private names read: none, but the four methods' signatures and the ``client_class``
convention are Tortoise's internals, not a documented API.

Buys: no instructions (no page reads MySQL); a MySQL server that hangs makes a sign-in
answer 503 within the deadline instead of waiting forever.

Delete when: Tortoise bounds a statement's time itself (a query timeout in its config).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tortoise.backends.mysql.client import MySQLClient


class BoundedMySQLClient(MySQLClient):
    """Tortoise's MySQL client, where every statement ends within ``query_timeout``
    seconds, waiting for a connection included.

    A MySQL server that is down refuses connections at once, but one that hangs (stopped,
    overloaded, or cut off by the network without a reset) accepts them and never
    answers; without a bound, every sign-in would then wait forever. Past the bound the
    statement raises TimeoutError (a 503 for the user). aiomysql closes a connection
    whose read is cancelled, so a reply that comes late is never read as the answer to
    the next statement on that connection."""

    def __init__(self, *, query_timeout: float | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query_timeout = float(query_timeout)

    async def execute_insert(self, query: str, values: list[Any]) -> int:
        async with asyncio.timeout(self.query_timeout):
            row_id: int = await super().execute_insert(query, values)
        return row_id

    async def execute_many(self, query: str, values: list[Any]) -> None:
        async with asyncio.timeout(self.query_timeout):
            await super().execute_many(query, values)

    async def execute_query(
        self, query: str, values: list[Any] | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        async with asyncio.timeout(self.query_timeout):
            result: tuple[int, list[dict[str, Any]]] = await super().execute_query(query, values)
        return result

    async def execute_script(self, query: str) -> None:
        async with asyncio.timeout(self.query_timeout):
            await super().execute_script(query)


# Tortoise takes the client class of an engine from its module, under this name.
client_class = BoundedMySQLClient

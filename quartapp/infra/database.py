"""MySQL through Tortoise ORM: configuration, creating the database, migrations, lifecycle."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiomysql
import pymysql
from quart import current_app
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api.migrate import migrate as run_migrations

from quartapp.engine import tortoise_mysql
from quartapp.infra.extension import ServingExtension

EXTENSION = "quartapp.database"


def connection_url(url: str, *, pool_size: int = 10, connect_timeout: float = 3) -> str:
    """``url`` with pool and timeout settings added unless it names its own."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("minsize", "1")
    query.setdefault("maxsize", str(pool_size))
    query.setdefault("connect_timeout", str(connect_timeout))
    # Connections idle longer than MySQL's wait_timeout are replaced before use.
    query.setdefault("pool_recycle", "3600")
    return urlunsplit(parts._replace(query=urlencode(query)))


def tortoise_config(
    url: str, *, query_timeout: float | None = None, **options: Any
) -> dict[str, Any]:
    """Tortoise's settings; with ``query_timeout``, statements are bounded in time (the
    app's requests), without it they may take as long as they need (migrations)."""
    pooled = connection_url(url, **options)
    connection: str | dict[str, Any] = pooled
    if query_timeout is not None:
        bounded = expand_db_url(pooled)
        bounded["engine"] = tortoise_mysql.__name__  # whose client_class is BoundedMySQLClient
        bounded["credentials"]["query_timeout"] = query_timeout
        connection = bounded
    return {
        "connections": {"default": connection},
        "apps": {
            "quartapp": {
                "models": ["quartapp.accounts.models"],
                "migrations": "quartapp.accounts.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"the database name in {url!r} must be letters, digits and '_'")
    return name


async def create_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist yet."""
    parts = urlsplit(url)
    conn = await aiomysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        connect_timeout=5,
    )
    try:
        name = database_name(url)
        async with conn.cursor() as cursor:
            await cursor.execute(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
            )
            if not await cursor.fetchone():
                await cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()


async def migrate(url: str) -> None:
    """Create the database if needed and apply every migration not yet applied."""
    await create_database(url)
    try:
        with warnings.catch_warnings():
            # MySQL's notes such as "table already exists" are expected, not actionable.
            warnings.simplefilter("ignore", pymysql.Warning)
            await run_migrations(config=tortoise_config(url))
    finally:
        await Tortoise.close_connections()


class Database(ServingExtension):
    """Tortoise's connections for this app, with the app's pool size and deadlines."""

    EXTENSION = EXTENSION

    async def open(self) -> None:
        config = current_app.config
        await Tortoise.init(
            config=tortoise_config(
                config["DATABASE_URL"],
                pool_size=int(config["DATABASE_POOL_SIZE"]),
                connect_timeout=float(config["DATABASE_CONNECT_TIMEOUT"]),
                query_timeout=float(config["DATABASE_QUERY_TIMEOUT"]),
            ),
            _enable_global_fallback=True,
        )

    async def close(self) -> None:
        await Tortoise.close_connections()

    async def ping(self) -> None:
        connection = connections.get("default")
        await asyncio.wait_for(connection.execute_query("SELECT 1"), timeout=3)

"""MySQL through Tortoise ORM: configuration, creating the database, migrations, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import warnings
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

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


def redacted(url: str) -> str:
    """``url`` without its password, to be shown in a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_database_url(url: object) -> None:
    """Refuse, with a ValueError that says why, what is not ``mysql://[user[:password]@]host
    [:port]/database``: checked before anything connects (start-up, ``migrate``)."""
    if not isinstance(url, str):
        raise ValueError("must be a URL such as mysql://user:password@127.0.0.1:3306/quartapp")
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        given = f"{parts.scheme}://" if parts.scheme else redacted(url)
        raise ValueError(
            f"must start with mysql:// (MySQL or MariaDB), not {given!r}; "
            "e.g. mysql://user:password@127.0.0.1:3306/quartapp"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1:
        raise ValueError("needs a host and a valid port, as in mysql://user@127.0.0.1:3306/db")
    try:
        database_name(url)
    except ValueError:
        raise ValueError(
            "must end with a database name of letters, digits and '_', as in "
            "mysql://user@127.0.0.1:3306/quartapp"
        ) from None


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"the database name in {redacted(url)!r} must be letters, digits and '_'")
    return name


# Seconds a ``migrate`` waits for another one to finish before it gives up.
MIGRATION_LOCK_TIMEOUT = 600.0

# MySQL's client error codes for a server that cannot be reached or went away, and the
# server's for a user it refuses.
_UNREACHABLE = {2003, 2005, 2006, 2013}
_ACCESS_DENIED = {1044, 1045, 1142, 1227, 1698}


class MigrationError(Exception):
    """``migrate`` did not finish; the message names the cause (never the password)."""


def server_address(url: str) -> str:
    """``host:port`` of the MySQL server ``url`` names, without the credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 3306}"


def migration_lock_name(url: str) -> str:
    """The name of the MySQL lock that ``migrate`` holds on the database ``url`` names:
    one per database, so that migrating one does not wait for another."""
    name = f"quartapp.migrate.{database_name(url)}"
    if len(name) > 64:  # MySQL's longest lock name
        name = "quartapp.migrate." + hashlib.sha256(name.encode()).hexdigest()[:47]
    return name


def _mysql_error(error: BaseException) -> pymysql.err.MySQLError | None:
    """The MySQL error behind ``error``, which Tortoise wraps in its own exceptions."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, pymysql.err.MySQLError):
            return seen
        wrapped = seen.args[0] if seen.args else None
        seen = wrapped if isinstance(wrapped, BaseException) else seen.__cause__
    return None


def _error_code(error: BaseException) -> int | None:
    mysql_error = _mysql_error(error)
    if mysql_error is not None and mysql_error.args and isinstance(mysql_error.args[0], int):
        return mysql_error.args[0]
    return None


def _unreachable(url: str, error: BaseException, connect_timeout: float) -> MigrationError:
    """Why the server at ``url`` could not be reached, in words."""
    cause = error.__cause__ if isinstance(error, pymysql.err.MySQLError) else error
    if isinstance(cause, socket.gaierror):
        reason = f"cannot resolve the host name ({cause.strerror})"
    elif isinstance(cause, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(cause, TimeoutError):
        reason = f"no answer within {connect_timeout:g} s"
    elif isinstance(cause, OSError) and cause.strerror:
        reason = cause.strerror
    else:
        reason = str(_mysql_error(error) or error)
    return MigrationError(f"cannot reach MySQL at {server_address(url)}: {reason}")


def _denied(url: str, error: BaseException) -> MigrationError:
    user = unquote(urlsplit(url).username or "root")
    return MigrationError(
        f"access denied by MySQL at {server_address(url)} to user {user!r}: "
        f"{_mysql_error(error) or error}"
    )


def _failed(url: str, error: BaseException, connect_timeout: float, doing: str) -> MigrationError:
    """``error``, raised while ``doing``, as the cause a person can act on."""
    code = _error_code(error)
    if code in _UNREACHABLE or isinstance(error, (OSError, TimeoutError)):
        return _unreachable(url, error, connect_timeout)
    if code in _ACCESS_DENIED:
        return _denied(url, error)
    return MigrationError(
        f"{doing} failed: {_mysql_error(error) or f'{type(error).__name__}: {error}'}"
    )


async def _connect_to_server(url: str, connect_timeout: float) -> aiomysql.Connection:
    """A connection of its own to the server ``url`` names, no database selected (it may
    not exist yet)."""
    parts = urlsplit(url)
    try:
        # aiomysql bounds only the TCP connect; a server that accepts and never answers
        # would hang the handshake.
        async with asyncio.timeout(connect_timeout):
            connection: aiomysql.Connection = await aiomysql.connect(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 3306,
                user=unquote(parts.username or "root"),
                password=unquote(parts.password or ""),
                connect_timeout=connect_timeout,
                autocommit=True,
            )
    except (pymysql.err.MySQLError, OSError) as error:
        raise _failed(url, error, connect_timeout, "connecting") from error
    return connection


async def _query_one(
    connection: aiomysql.Connection, query: str, args: tuple[Any, ...] = ()
) -> Any:
    async with connection.cursor() as cursor:
        await cursor.execute(query, args)
        row = await cursor.fetchone()
    return row[0] if row else None


async def _take_lock(
    connection: aiomysql.Connection, url: str, wait: float, connect_timeout: float
) -> None:
    """Hold the migration lock on ``connection``, waiting up to ``wait`` seconds for
    whoever holds it; the server releases it when that connection ends."""
    name = migration_lock_name(url)
    try:
        # GET_LOCK answers within its timeout; past this bound the server itself hangs.
        async with asyncio.timeout(wait + connect_timeout):
            granted = await _query_one(connection, "SELECT GET_LOCK(%s, %s)", (name, wait))
            if granted == 1:
                return
            holder = await _query_one(connection, "SELECT IS_USED_LOCK(%s)", (name,))
    except (pymysql.err.MySQLError, OSError) as error:
        raise _failed(url, error, wait + connect_timeout, "taking the lock") from error
    held_by = f" (MySQL connection {holder} holds it)" if holder is not None else ""
    raise MigrationError(
        f"gave up after {wait:g} s waiting for the migration lock {name!r}{held_by}: "
        "another migrate is still running or stuck; QUARTAPP_MIGRATE_LOCK_TIMEOUT sets the wait"
    )


async def _release_lock(connection: aiomysql.Connection, url: str) -> None:
    # If the connection is gone, the server released the lock with it.
    with contextlib.suppress(pymysql.err.MySQLError, OSError):
        await _query_one(connection, "SELECT RELEASE_LOCK(%s)", (migration_lock_name(url),))


async def _create_database(connection: aiomysql.Connection, url: str) -> None:
    """Create the database ``url`` names if it does not exist yet."""
    name = database_name(url)
    found = await _query_one(
        connection, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
    )
    if not found:
        await _query_one(connection, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


async def _apply_migrations(url: str, connect_timeout: float) -> list[str]:
    """Apply, through Tortoise's runner, the migrations not yet applied; their names."""
    started: list[str] = []
    done: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_start":
            started.append(name)
        elif event == "apply_done":
            done.append(name)

    try:
        with warnings.catch_warnings():
            # MySQL's notes such as "table already exists" are expected, not actionable.
            warnings.simplefilter("ignore", pymysql.Warning)
            await run_migrations(
                config=tortoise_config(url, connect_timeout=connect_timeout),
                direction="forward",
                progress=progress,
            )
    except Exception as error:
        doing = f"migration {started[-1]}" if started and started[-1] not in done else "migrate"
        raise _failed(url, error, connect_timeout, doing) from error
    finally:
        await Tortoise.close_connections()
    return done


async def migrate(
    url: str,
    *,
    lock_timeout: float = MIGRATION_LOCK_TIMEOUT,
    connect_timeout: float = 5,
) -> list[str]:
    """Create the database if needed and apply every migration not yet applied; the
    names of those this call applied (none: the database was up to date).

    The whole run holds a MySQL named lock, taken on a connection of its own before the
    database is created, so any number of instances may migrate at once: the first
    applies what is missing, the others wait for it and then find nothing to do. Every
    failure is a MigrationError that names its cause."""
    try:
        migration_lock_name(url)
    except ValueError:
        name = urlsplit(url).path.lstrip("/")
        raise MigrationError(
            f"the database name {name!r} in the URL must be letters, digits and '_'"
        ) from None
    connection = await _connect_to_server(url, connect_timeout)
    try:
        await _take_lock(connection, url, lock_timeout, connect_timeout)
        try:
            try:
                await _create_database(connection, url)
            except (pymysql.err.MySQLError, OSError) as error:
                raise _failed(url, error, connect_timeout, "creating the database") from error
            return await _apply_migrations(url, connect_timeout)
        finally:
            await _release_lock(connection, url)
    finally:
        connection.close()


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

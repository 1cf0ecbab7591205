"""The shared Redis client, opened when the app starts serving and closed when it stops.

``QUARTAPP_REDIS_URL`` alone chooses the topology:

- ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS) or
  ``unix:///path/to/redis.sock?db=0``: one server.
- ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``: the master
  of ``service``, found through these Sentinels (port 26379 when left out) and followed
  through failovers. The credentials are the data nodes'; Sentinels that need their own
  take ``?sentinel_username=...&sentinel_password=...``.
- ``redis+cluster://[user:password@]host:port[,host:port...]``: a Redis Cluster, found
  from any of these nodes (port 6379 when left out).

Every topology gets the same socket timeouts (``REDIS_TIMEOUT``), the same short retry of
a dropped connection, and at most ``REDIS_MAX_CONNECTIONS`` connections (per node on a
Cluster): past that a request waits up to the timeout for a free one, then gets a 503.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from quart import current_app
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quartapp.engine.redis_scripts import QuickBlockingConnectionPool
from quartapp.engine.redis_topologies import (
    BlockingSentinelConnectionPool,
    BoundedRedisCluster,
    ConcurrentSentinel,
)
from quartapp.infra.extension import ServingExtension

EXTENSION = "quartapp.redis"

# What the app talks to: one server (directly or through Sentinel), or a Cluster.
RedisConnection: TypeAlias = Redis | RedisCluster

# Everything a Redis call may raise: RedisError, and the Cluster client's own exceptions
# (which are not RedisErrors).
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)

# Errors that say Redis cannot serve right now, rather than that a command is wrong:
# connection failures and timeouts (these include a Sentinel that knows no master, a full
# pool, a server still loading its data, and a demoted master that the Sentinel client
# reports as a dropped connection); a replica refusing a write; a Cluster that is down, is
# moving slots, or sent redirections until the client gave up; a server out of memory.
_REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    ClusterError,  # CLUSTERDOWN, MASTERDOWN, and "TTL exhausted" after redirections
    TryAgainError,
    AskError,  # and MovedError
    OutOfMemoryError,
    SlotNotCoveredError,
)
# Error replies, by code, that mean the same but have no class of their own.
_UNAVAILABLE_REPLIES = ("MISCONF ", "NOREPLICAS ", "MASTERDOWN ", "LOADING ", "BUSY ")
# What the Cluster client raises when it cannot map the cluster (messages of redis-py's
# NodesManager.initialize); its other RedisClusterExceptions are mistakes in a command.
_CLUSTER_UNMAPPED = (
    "Redis Cluster cannot be connected",
    "All slots are not covered",
    "startup_nodes could not agree",
)


def redis_unavailable(error: BaseException) -> bool:
    """Whether a Redis error means "not available right now" (a 503), not a bug."""
    if isinstance(error, _REDIS_UNAVAILABLE):
        return True
    if isinstance(error, ResponseError):
        return str(error).startswith(_UNAVAILABLE_REPLIES)
    if isinstance(error, RedisClusterException):
        return str(error).startswith(_CLUSTER_UNMAPPED) or isinstance(
            error.__cause__, RedisConnectionError | RedisTimeoutError | OSError
        )
    return False


SENTINEL_PORT = 26379
CLUSTER_PORT = 6379
SCHEMES = (
    "redis://, rediss://, unix://, "
    "redis+sentinel://host:port[,host:port...]/service[/db] "
    "or redis+cluster://host:port[,host:port...]"
)
_SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})


class RedisUrlError(ValueError):
    """A Redis URL the app cannot use; the message never repeats a password."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where Redis is, as a ``QUARTAPP_REDIS_URL`` says."""

    kind: Literal["server", "sentinel", "cluster"]
    url: str = field(default="", repr=False)  # "server": the URL itself
    nodes: tuple[tuple[str, int], ...] = ()  # "sentinel": the Sentinels; "cluster": nodes
    service: str = ""  # "sentinel": the name the Sentinels monitor
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)


# Messages about the hosts never quote them: a password with an unencoded "/" or "@" would
# end up there.
_BAD_PORT = "a port must be a number from 1 to 65535"
_BAD_HOST = (
    "the hosts must be host:port, separated by commas "
    "(percent-encode special characters in a password)"
)


def _port(text: str, default: int) -> int:
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise RedisUrlError(_BAD_PORT)
    return int(text)


def _node(entry: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6 address]`` or ``[v6 address]:port``."""
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise RedisUrlError(_BAD_HOST)
        return host, _port(rest[1:], default_port)
    host, _, port = entry.partition(":")
    if not host or any(c.isspace() or c in "/?#[]@" for c in host):
        raise RedisUrlError(_BAD_HOST)
    return host, _port(port, default_port)


def _db(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise RedisUrlError(f"the database must be a number, not {text!r}")
    return int(text)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, _, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) or None


def _parse_server_url(url: str) -> RedisTarget:
    parts = urlsplit(url)
    try:
        parse_url(url)  # the scheme, the port and the query's values
    except ValueError as error:
        message = str(error)
        raise RedisUrlError(_BAD_PORT if message.startswith("Port") else message) from None
    if parts.scheme != "unix":
        path = unquote(parts.path).strip("/")
        if path:
            _db(path)
    return RedisTarget(kind="server", url=url)


def _parse_multi_host_url(url: str) -> RedisTarget:
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    kind: Literal["sentinel", "cluster"] = "sentinel" if scheme == "redis+sentinel" else "cluster"
    if "#" in rest:
        raise RedisUrlError("a '#' must be percent-encoded (%23)")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    default_port = SENTINEL_PORT if kind == "sentinel" else CLUSTER_PORT
    if not hosts:
        raise RedisUrlError(f"{scheme}:// needs at least one host:port")
    nodes = tuple(_node(entry, default_port) for entry in hosts.split(","))
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if kind == "cluster" or name not in _SENTINEL_OPTIONS:
            allowed = ", ".join(sorted(_SENTINEL_OPTIONS)) if kind == "sentinel" else "none"
            raise RedisUrlError(f"unknown option {name!r} (allowed: {allowed})")
        options[name] = value
    segments = [unquote(segment) for segment in path.split("/")] if slash else []
    while segments and not segments[-1]:
        segments.pop()
    if kind == "cluster":
        if segments not in ([], ["0"]):
            raise RedisUrlError("Redis Cluster has only database 0; leave the path out")
        return RedisTarget(kind="cluster", nodes=nodes, username=username, password=password)
    if not segments or not segments[0]:
        raise RedisUrlError("redis+sentinel:// needs the service name: .../mymaster")
    if len(segments) > 2:
        raise RedisUrlError("the path is /service or /service/db")
    return RedisTarget(
        kind="sentinel",
        nodes=nodes,
        service=segments[0],
        db=_db(segments[1]) if len(segments) == 2 else 0,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def parse_redis_url(url: object) -> RedisTarget:
    """Where a ``QUARTAPP_REDIS_URL`` points; raises RedisUrlError saying what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise RedisUrlError(f"give a URL: {SCHEMES}")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in ("redis+sentinel", "redis+cluster"):
        return _parse_multi_host_url(url)
    if scheme in ("redis", "rediss", "unix"):
        return _parse_server_url(url)
    raise RedisUrlError(f"the URL must start with {SCHEMES}")


def _retry() -> Retry:
    # A short, bounded retry rides out a dropped connection (a restarted server, a
    # failover) without ever hanging a request. A timeout is not retried: it already took
    # REDIS_TIMEOUT, and the request answers 503.
    return Retry(
        ExponentialBackoff(cap=0.2, base=0.02),
        retries=2,
        supported_errors=(RedisConnectionError,),
    )


class RedisClient(ServingExtension):
    """Owns one client (and its connections) per app; every other piece borrows ``redis``."""

    EXTENSION = EXTENSION
    _redis: RedisConnection | None = None
    _sentinel: Sentinel | None = None

    @property
    def redis(self) -> RedisConnection:
        if self._redis is None:
            raise RuntimeError("Redis is used before the app started serving")
        return self._redis

    async def open(self) -> None:
        config = current_app.config
        target = parse_redis_url(config["REDIS_URL"])
        timeout = float(config["REDIS_TIMEOUT"])
        max_connections = int(config["REDIS_MAX_CONNECTIONS"])
        sockets: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        if target.kind == "cluster":
            self._redis = BoundedRedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
                username=target.username,
                password=target.password,
                retry=_retry(),
                health_check_interval=30,
                max_connections=max_connections,
                wait=timeout,
                **sockets,
            )
            return
        options: dict[str, Any] = {
            **sockets,
            "retry": _retry(),
            "health_check_interval": 30,
            # Past this many requests talking to Redis at once, the next one waits (up to
            # the timeout) for a free connection instead of failing at once.
            "max_connections": max_connections,
            "timeout": timeout,
        }
        if target.kind == "server":
            pool = QuickBlockingConnectionPool.from_url(target.url, **options)
            self._redis = Redis(connection_pool=pool)
            return
        sentinel_options: dict[str, Any] = {
            **sockets,
            "username": target.sentinel_username,
            "password": target.sentinel_password,
            # A Sentinel that does not answer is skipped for the next one at once (redis-py
            # would otherwise retry it for seconds).
            "retry": Retry(NoBackoff(), retries=0),
            # Each connection to the master asks a Sentinel once while it connects.
            "max_connections": max(max_connections, 100),
        }
        self._sentinel = ConcurrentSentinel(list(target.nodes), sentinel_kwargs=sentinel_options)
        self._redis = cast(
            Redis,
            self._sentinel.master_for(
                target.service,
                connection_pool_class=BlockingSentinelConnectionPool,
                db=target.db,
                username=target.username,
                password=target.password,
                **options,
            ),
        )

    async def close(self) -> None:
        client, self._redis = self._redis, None
        sentinel, self._sentinel = self._sentinel, None
        try:
            if isinstance(client, RedisCluster):
                await client.aclose()
            elif client is not None:
                await client.aclose()
                await client.connection_pool.disconnect()
        finally:
            if sentinel is not None:
                await sentinel.aclose()


async def ping(redis: RedisConnection) -> None:
    """Raise unless Redis can serve the app now: the server, or the master that Sentinel
    names, answers PING; on a Cluster, every primary answers and calls the cluster ok (a
    Cluster that lost a primary still answers PING, but refuses every key)."""
    if not isinstance(redis, RedisCluster):
        await redis.ping()
        return
    answers = await redis.execute_command("CLUSTER INFO", target_nodes=RedisCluster.PRIMARIES)
    states = [answers] if "cluster_state" in answers else list(answers.values())
    if any(state.get("cluster_state") != "ok" for state in states):
        raise ClusterDownError("a primary reports that the cluster is down")


def get_redis() -> RedisConnection:
    client: RedisClient = current_app.extensions[EXTENSION]
    return client.redis

"""Real Redis servers for the topology tests: a standalone server, a Sentinel set, a Cluster.

Each server is a Debian ``redis-server`` (7.0 or later) process listening on a free port of
127.0.0.1 only, with a config file, data and log of its own in a temporary directory.
``RedisServers`` owns them all: leaving it kills every process it started (by its pid) and
removes the directory. Every wait is bounded and fails with the server's own log lines.

    with RedisServers() as servers:
        server = servers.standalone(persistent=True)
        sentinel = servers.sentinel()  # 1 master, 1 replica, 3 Sentinels
        cluster = servers.cluster(masters=3)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError
from redis.retry import Retry

from . import processes
from .processes import HOST, ProcessError, free_ports

REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")
START_TIMEOUT = 10.0

T = TypeVar("T")


def available() -> bool:
    """Whether this machine can run the servers (Debian's redis-server and redis-cli)."""
    return all(os.access(path, os.X_OK) for path in (REDIS_SERVER, REDIS_CLI))


ServerError = ProcessError  # a server did not start, stop or reach a state in time


def wait_for(what: str, check: Callable[[], T | None], timeout: float, step: float = 0.05) -> T:
    """Call ``check`` until it returns something other than None (errors count as None)."""
    return processes.wait_for(what, check, timeout, step, errors=(RedisError, OSError))


def quoted(value: str) -> str:
    """A value for a redis.conf line, spaces and all."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RedisServer:
    """One redis-server process (a data node, or a Sentinel with ``sentinel=True``)."""

    def __init__(
        self,
        root: Path,
        name: str,
        port: int,
        config: Iterable[str],
        *,
        sentinel: bool = False,
        password: str | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.sentinel = sentinel
        self.password = password
        self.directory = root / name
        self.directory.mkdir()
        self.config_path = self.directory / "redis.conf"
        self.log_path = self.directory / "redis.log"
        lines = [
            f"bind {HOST}",
            f"port {port}",
            f'dir "{self.directory}"',
            "daemonize no",
            'logfile ""',
            *([f"requirepass {quoted(password)}"] if password else []),
            *config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<RedisServer {self.name} {self.address}>"

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, **options: Any) -> Redis:
        """A plain synchronous client for setting up and checking (strings, short timeouts)."""
        settings: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": 2,
            "socket_connect_timeout": 2,
            "retry": Retry(NoBackoff(), 0),  # say what happened, at once
            "password": self.password,
            **options,
        }
        return Redis(host=HOST, port=self.port, **settings)

    def command(self, *args: Any) -> Any:
        with self.client() as client:
            return client.execute_command(*args)

    def start(self, *, loading_ok: bool = False, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until it answers (with ``loading_ok``, until it accepts
        connections, maybe still loading its data)."""
        if self.running:
            raise ServerError(f"{self.name} is already running")
        arguments = [str(REDIS_SERVER), str(self.config_path)]
        if self.sentinel:
            arguments.append("--sentinel")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  (a fixed binary and our own config)
                arguments, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        try:
            wait_for(f"{self.name} to answer", lambda: self._answers(loading_ok), timeout)
        except ServerError as error:
            raise ServerError(f"{error}\n{self.log_tail()}") from None

    def _answers(self, loading_ok: bool) -> bool | None:
        if self.process is not None and self.process.poll() is not None:
            raise ServerError(
                f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}"
            )
        try:
            with self.client(socket_timeout=0.5, socket_connect_timeout=0.5) as client:
                return bool(client.ping()) or None
        except BusyLoadingError:
            return True if loading_ok else None

    def kill(self) -> None:
        """SIGKILL: the process ends at once, saving nothing."""
        self._end(signal.SIGKILL)

    def stop(self, timeout: float = START_TIMEOUT) -> None:
        """SIGTERM: a normal shutdown (a server with ``save`` points writes its RDB first)."""
        self._end(signal.SIGTERM, timeout)

    def _end(self, how: signal.Signals, timeout: float = START_TIMEOUT) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
            raise ServerError(f"{self.name} ignored {how.name} for {timeout:g} s") from None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"({self.name}: no log)"
        return "\n".join(f"  {self.name}| {line}" for line in text[-lines:])

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as client:
            result: dict[str, Any] = client.info(section)
            return result


def data_node_config(name: str, *, persistent: bool = False) -> list[str]:
    return [
        # A normal shutdown writes the data to disk, and a start reads it back.
        'save "3600 1"' if persistent else 'save ""',
        f"dbfilename {name}.rdb",
        "appendonly no",
        # A replica starts syncing at once instead of waiting for more replicas.
        "repl-diskless-sync-delay 0",
        "enable-debug-command local",
    ]


@dataclass
class SentinelSet:
    """A master, its replica and the Sentinels watching them as ``service``."""

    service: str
    master: RedisServer
    replica: RedisServer
    sentinels: list[RedisServer]
    quorum: int

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    @property
    def data_nodes(self) -> list[RedisServer]:
        return [self.master, self.replica]

    def server_at(self, address: tuple[str, int]) -> RedisServer:
        for server in self.data_nodes:
            if server.address == address:
                return server
        raise ServerError(f"no data node of this set listens on {address}")

    def master_addresses(self) -> set[tuple[str, int]]:
        """The master's address as each running Sentinel names it."""
        addresses = set()
        for sentinel in self.sentinels:
            if sentinel.running:
                host, port = sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
                addresses.add((host, int(port)))
        return addresses

    def current_master(self) -> RedisServer:
        (address,) = self.master_addresses()
        return self.server_at(address)

    def _watching(self) -> bool | None:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(self.service)
            if (
                state["flags"] != "master"
                or int(state["num-slaves"]) < 1
                or int(state["num-other-sentinels"]) < len(self.sentinels) - 1
            ):
                return None
        return True

    def wait_until_watching(self, timeout: float = 20) -> None:
        """Until every Sentinel sees the master, its replica and every other Sentinel, so
        a failover can be agreed on."""
        try:
            wait_for("the Sentinels to find each other and the replica", self._watching, timeout)
        except ServerError as error:
            logs = "\n".join(server.log_tail(8) for server in self.sentinels)
            raise ServerError(f"{error}\n{logs}") from None

    def wait_for_failover(self, old: RedisServer, timeout: float = 30) -> RedisServer:
        """Until every running Sentinel names another master and that server is one."""

        def switched() -> RedisServer | None:
            addresses = self.master_addresses()
            if len(addresses) != 1 or old.address in addresses:
                return None
            new = self.server_at(next(iter(addresses)))
            return new if new.info("replication")["role"] == "master" else None

        try:
            return wait_for("the Sentinels to promote the replica", switched, timeout, 0.1)
        except ServerError as error:
            logs = "\n".join(server.log_tail(10) for server in self.sentinels)
            raise ServerError(f"{error}\n{logs}") from None


@dataclass
class Cluster:
    """A Redis Cluster of ``masters`` (and maybe replicas), all slots assigned."""

    masters: list[RedisServer]
    replicas: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{node.port}" for node in self.masters)

    @property
    def nodes(self) -> list[RedisServer]:
        return [*self.masters, *self.replicas]

    def keys_by_master(self, match: str) -> dict[int, list[str]]:
        """The keys matching ``match`` on each master, by port."""
        found: dict[int, list[str]] = {}
        for node in self.masters:
            with node.client() as client:
                found[node.port] = sorted(client.scan_iter(match=match, count=1000))
        return found

    def _settled(self) -> bool | None:
        for node in self.nodes:
            state = dict(
                line.split(":", 1)
                for line in node.command("CLUSTER", "INFO").splitlines()
                if ":" in line
            )
            if (
                state.get("cluster_state") != "ok"
                or state.get("cluster_slots_ok") != "16384"
                or int(state.get("cluster_known_nodes", 0)) != len(self.nodes)
            ):
                return None
        return True

    def wait_until_settled(self, timeout: float = 20) -> None:
        try:
            wait_for("every node to see the whole cluster", self._settled, timeout, 0.1)
        except ServerError as error:
            logs = "\n".join(node.log_tail(8) for node in self.nodes)
            raise ServerError(f"{error}\n{logs}") from None


class RedisServers:
    """Starts servers in a temporary directory; leaving kills them all and removes it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="quartapp-redis-"))
        self.servers: list[RedisServer] = []

    def __enter__(self) -> RedisServers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def _server(self, name: str, port: int, config: Iterable[str], **options: Any) -> RedisServer:
        """A server in this set's directory, killed with it (``options``: RedisServer's)."""
        server = RedisServer(self.root, name, port, config, **options)
        self.servers.append(server)
        return server

    def standalone(
        self,
        name: str = "redis",
        *,
        persistent: bool = False,
        replica_of: RedisServer | None = None,
        password: str | None = None,
        extra: Iterable[str] = (),
    ) -> RedisServer:
        """A started server; ``persistent`` keeps its data across ``stop()`` and
        ``start()``; ``replica_of`` makes it a read-only replica, in sync when this returns;
        ``password`` is required from clients (and used with the master)."""
        (port,) = free_ports(1)
        config = data_node_config(name, persistent=persistent)
        if replica_of is not None:
            config.append(f"replicaof {HOST} {replica_of.port}")
            if password:
                config.append(f"masterauth {quoted(password)}")
        server = self._server(name, port, [*config, *extra], password=password)
        server.start()
        if replica_of is not None:
            wait_for(
                f"{name} to sync with {replica_of.name}",
                lambda: server.info("replication").get("master_link_status") == "up" or None,
                START_TIMEOUT,
            )
        return server

    def sentinel(
        self,
        service: str = "mymaster",
        *,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10000,
        password: str | None = None,
        sentinel_password: str | None = None,
    ) -> SentinelSet:
        """A master with one replica, watched by ``sentinels`` Sentinels (quorum: a
        majority), all of which know each other when this returns. ``password`` protects
        the master and the replica, ``sentinel_password`` the Sentinels."""
        master = self.standalone(f"{service}-master", password=password)
        replica = self.standalone(f"{service}-replica", replica_of=master, password=password)
        quorum = sentinels // 2 + 1
        ports = free_ports(sentinels)
        watchers = [
            self._server(
                f"{service}-sentinel-{number}",
                port,
                [
                    f"sentinel monitor {service} {HOST} {master.port} {quorum}",
                    *([f"sentinel auth-pass {service} {quoted(password)}"] if password else []),
                    f"sentinel down-after-milliseconds {service} {down_after_ms}",
                    f"sentinel failover-timeout {service} {failover_timeout_ms}",
                    f"sentinel parallel-syncs {service} 1",
                ],
                sentinel=True,
                password=sentinel_password,
            )
            for number, port in enumerate(ports, 1)
        ]
        for watcher in watchers:
            watcher.start()
        sentinel_set = SentinelSet(service, master, replica, watchers, quorum)
        sentinel_set.wait_until_watching()
        return sentinel_set

    def cluster(
        self, masters: int = 3, *, replicas_per_master: int = 0, node_timeout_ms: int = 2000
    ) -> Cluster:
        """A Cluster made by ``redis-cli --cluster create``, every node agreeing that all
        16384 slots are served when this returns."""
        count = masters * (1 + replicas_per_master)
        ports = free_ports(2 * count)  # a client port and a cluster bus port per node
        nodes = [
            self._server(
                f"cluster-{number}",
                port,
                [
                    *data_node_config(f"cluster-{number}"),
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    f"cluster-node-timeout {node_timeout_ms}",
                    f"cluster-port {bus}",
                ],
            )
            for number, (port, bus) in enumerate(zip(ports[::2], ports[1::2], strict=True), 1)
        ]
        for node in nodes:
            node.start()
        create = [
            str(REDIS_CLI),
            "--cluster",
            "create",
            *(f"{HOST}:{node.port}" for node in nodes),
            "--cluster-replicas",
            str(replicas_per_master),
            "--cluster-yes",
        ]
        try:
            done = subprocess.run(  # noqa: S603  (a fixed binary, our own nodes)
                create, capture_output=True, text=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired:
            raise ServerError("redis-cli --cluster create took over 30 s") from None
        if done.returncode != 0:
            raise ServerError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        roles = {node.port: node.info("replication")["role"] for node in nodes}
        cluster = Cluster(
            masters=[node for node in nodes if roles[node.port] == "master"],
            replicas=[node for node in nodes if roles[node.port] != "master"],
        )
        cluster.wait_until_settled()
        return cluster

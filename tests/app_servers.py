"""The app served by granian in a subprocess, started as ``script/server`` starts it
(``python -m quartapp serve``).

The browser tests and the scale-out tests use real processes: ``serve(...)`` runs one app
instance on a loopback port of its own until the block ends. An instance can run several
granian worker processes, take extra settings, share its secret key and Redis prefix with
other instances (several instances of one deployment), and be stopped gracefully
(SIGTERM, as a process manager does) or killed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from quartapp.serve import WORKERS_KILL_TIMEOUT

from .conftest import PUBLIC_URL, REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
START_TIMEOUT = 30.0
STOP_TIMEOUT = WORKERS_KILL_TIMEOUT + 10


def _ephemeral_ports() -> range:
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    return range(32768, 61000)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing uses right now, below the ephemeral range.

    Outgoing connections take their local ports from the ephemeral range, so a port from
    there may be taken by one of them while its server is down; a server restarted on
    the same port would then fail with "address already in use"."""
    ephemeral = _ephemeral_ports()
    candidates = [port for port in range(20000, 32768) if port not in ephemeral]
    for port in random.sample(candidates, min(50, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        fallback: int = sock.getsockname()[1]
        return fallback


def status_of(port: int, path: str = "/healthz", timeout: float = 1.0) -> int | None:
    """The HTTP status of ``GET path`` on 127.0.0.1:port, or None if nothing answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def healthy(port: int) -> bool:
    return status_of(port) == 200


def delete_redis_keys(prefix: str, redis_url: str = REDIS_URL) -> None:
    with Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def app_environment(
    database_url: str,
    *,
    secret_key: str,
    redis_prefix: str,
    redis_url: str = REDIS_URL,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The environment of an app process: this one without its ``QUARTAPP_*`` variables,
    the test settings, then ``settings`` (``{"BCRYPT_ROUNDS": 12}``; values as JSON)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QUARTAPP_")}
    env.update(
        {
            "QUARTAPP_ENV": "production",
            "QUARTAPP_SECRET_KEY": secret_key,
            "QUARTAPP_COOKIE_SECURE": "false",
            "QUARTAPP_DATABASE_URL": database_url,
            "QUARTAPP_REDIS_URL": redis_url,
            "QUARTAPP_REDIS_PREFIX": redis_prefix,
            "QUARTAPP_BCRYPT_ROUNDS": "4",
            "QUARTAPP_PUBLIC_URL": PUBLIC_URL,
            "QUARTAPP_MAIL_URL": "smtp://127.0.0.1:9",
            "QUARTAPP_MAIL_FROM": "quartapp <no-reply@quartapp.test>",
            # The mail queue does not run on a Cluster: there it uses the test Redis.
            "QUARTAPP_MAIL_REDIS_URL": REDIS_URL
            if redis_url.startswith("redis+cluster")
            else redis_url,
            # Tests sign up many accounts from one address: more than the default limits of
            # sign-ups (and so of password strength judgements) per client allow.
            "QUARTAPP_THROTTLE_SIGN_UP_PER_IP": "null",
            "QUARTAPP_THROTTLE_PASSWORD_STRENGTH_PER_IP": "null",
        }
    )
    env.update({f"QUARTAPP_{key}": json.dumps(value) for key, value in (settings or {}).items()})
    return env


@dataclass
class AppServer:
    """A running app instance: ``server.url("/home")`` is an absolute address on it."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    redis_prefix: str
    secret_key: str
    workers: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def worker_pids(self) -> list[int]:
        """The worker processes granian started (children of its main process)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in children.read_text().split()]
        return []

    def output(self, last: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-last:]

    def wait_until_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not healthy(self.port):
            if not self.running() or time.monotonic() > deadline:
                pytest.fail(
                    f"the {self.name} server did not answer /healthz "
                    f"(exit code {self.process.poll()}):\n{self.output()}"
                )
            time.sleep(0.05)

    def terminate(self) -> None:
        """Send SIGTERM to granian's main process, as a process manager does to stop it:
        it stops accepting, lets its workers finish the requests they have, then exits."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Stop gracefully; kill whatever is left after ``timeout`` seconds. The exit code."""
        self.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        """SIGKILL granian and its workers (its own process group): nothing is finished."""
        if self.process.returncode is None:
            # The group is the one start_app made for this process (start_new_session).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()


def new_redis_prefix(label: str = "quartapp-e2e") -> str:
    return f"{label}:{uuid.uuid4().hex[:12]}:"


def start_app(
    database_url: str,
    name: str,
    *,
    port: int | None = None,
    workers: int = 1,
    secret_key: str | None = None,
    redis_prefix: str | None = None,
    redis_url: str = REDIS_URL,
    log_dir: Path = ARTIFACTS / "e2e",
    **settings: Any,
) -> AppServer:
    """Start an instance and wait until it answers /healthz; the caller stops it.

    Instances that share ``secret_key`` and ``redis_prefix`` (and the database) are one
    deployment: a session made by one is good on the others."""
    port = port or free_port()
    secret_key = secret_key or secrets.token_urlsafe(48)
    redis_prefix = redis_prefix or new_redis_prefix()
    env = app_environment(
        database_url,
        secret_key=secret_key,
        redis_prefix=redis_prefix,
        redis_url=redis_url,
        settings=settings,
    )
    # serve replaces itself with granian: this process is granian's main process.
    command = [
        sys.executable, "-m", "quartapp", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - a fixed command line
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AppServer(
        name=name,
        port=port,
        process=process,
        log=log_path,
        redis_prefix=redis_prefix,
        secret_key=secret_key,
        workers=workers,
        settings=dict(settings),
    )
    try:
        server.wait_until_healthy()
    except BaseException:
        server.kill()
        raise
    return server


@contextlib.contextmanager
def serve(
    database_url: str,
    name: str,
    *,
    workers: int = 1,
    secret_key: str | None = None,
    redis_prefix: str | None = None,
    redis_url: str = REDIS_URL,
    log_dir: Path = ARTIFACTS / "e2e",
    **settings: Any,
) -> Iterator[AppServer]:
    """Run one app instance until the block ends, then stop it (gracefully, or killed if
    it does not stop in time). Redis keys under a prefix made here are deleted then."""
    own_prefix = redis_prefix is None
    server = start_app(
        database_url,
        name,
        workers=workers,
        secret_key=secret_key,
        redis_prefix=redis_prefix,
        redis_url=redis_url,
        log_dir=log_dir,
        **settings,
    )
    try:
        yield server
    finally:
        server.stop()
        if own_prefix:
            delete_redis_keys(server.redis_prefix, redis_url)

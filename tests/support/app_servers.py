"""The app served by granian in a subprocess, started as ``script/server`` starts it
(``python -m quartapp serve``).

The browser tests and the scale-out tests use real processes: ``serve(...)`` runs one app
instance on a loopback port of its own until the block ends. An instance can run several
granian worker processes, take extra settings, share its secret key and Redis prefix with
other instances (several instances of one deployment), and be stopped gracefully
(SIGTERM, as a process manager does) or killed. The benchmarks build their apps'
environment with ``app_environment`` too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from quartapp.serve import WORKERS_KILL_TIMEOUT

from .http import status_of
from .processes import ROOT, Process, alive, children_of, command_line, free_port, wait_for
from .settings import PUBLIC_URL, REDIS_URL

ARTIFACTS = ROOT / "test-artifacts"
START_TIMEOUT = 30.0
STOP_TIMEOUT = WORKERS_KILL_TIMEOUT + 10
# Tests sign up many accounts from one address: more than the default limits of sign-ups
# (and so of password strength judgements) per client allow.
TEST_SETTINGS: dict[str, Any] = {
    "BCRYPT_ROUNDS": 4,
    "THROTTLE_SIGN_UP_PER_IP": None,
    "THROTTLE_PASSWORD_STRENGTH_PER_IP": None,
    "THROTTLE_PASSWORD_STRENGTH_PER_ACCOUNT": None,
}


def healthy(port: int) -> bool:
    return status_of(port) == 200


def delete_keys(client: Redis, prefix: str) -> int:
    """Delete every key under ``prefix``; how many there were."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def delete_redis_keys(prefix: str, redis_url: str = REDIS_URL) -> int:
    """Delete every key under ``prefix`` on the Redis at ``redis_url``; how many."""
    with Redis.from_url(redis_url) as client:
        return delete_keys(client, prefix)


def app_environment(
    database_url: str,
    *,
    secret_key: str,
    redis_prefix: str,
    redis_url: str = REDIS_URL,
    settings: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
) -> dict[str, str]:
    """The environment of an app process in production mode on plain http: this one
    without its ``QUARTAPP_*`` variables (nor those starting with ``drop``), then
    ``settings`` (``{"BCRYPT_ROUNDS": 12}``; values as JSON)."""
    dropped = ("QUARTAPP_", *drop)
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    env.update(
        {
            "QUARTAPP_ENV": "production",
            "QUARTAPP_SECRET_KEY": secret_key,
            "QUARTAPP_COOKIE_SECURE": "false",  # plain http on loopback
            "QUARTAPP_DATABASE_URL": database_url,
            "QUARTAPP_REDIS_URL": redis_url,
            "QUARTAPP_REDIS_PREFIX": redis_prefix,
            # Links in mails start here; mail goes nowhere unless a test starts a server
            # and a worker of its own (tests/support/mail_servers.py): ``serve`` runs no
            # mail worker of its own.
            "QUARTAPP_PUBLIC_URL": PUBLIC_URL,
            "QUARTAPP_MAIL_URL": "smtp://127.0.0.1:9",
            "QUARTAPP_MAIL_WORKERS": "0",
            "QUARTAPP_MAIL_FROM": "quartapp <no-reply@quartapp.test>",
            # The mail queue does not run on a Cluster: there it uses the test Redis.
            "QUARTAPP_MAIL_REDIS_URL": REDIS_URL
            if redis_url.startswith("redis+cluster")
            else redis_url,
        }
    )
    env.update({f"QUARTAPP_{key}": json.dumps(value) for key, value in (settings or {}).items()})
    return env


@dataclass
class AppServer(Process):
    """A running app instance: ``server.url("/home")`` is an absolute address on it."""

    port: int = 0
    redis_prefix: str = ""
    secret_key: str = ""
    workers: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    # The name browsers reach it by: "localhost" where an IP address will not do (WebAuthn
    # refuses IP addresses as relying party ids).
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def worker_pids(self) -> list[int]:
        """The worker processes granian started (children of its main process, which
        ``serve`` started)."""
        return [
            worker
            for child in self.children()
            if "granian" in command_line(child)
            for worker in children_of(child)
        ]

    def wait_until_healthy(self, timeout: float = START_TIMEOUT) -> None:
        self.wait_until("answer to /healthz", lambda: healthy(self.port), timeout)

    def terminate(self) -> None:
        """Send SIGTERM to ``serve``, as a process manager does to stop it: granian stops
        accepting, lets its workers finish the requests they have, then all exit."""
        self.send(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        return super().wait(timeout)

    def stop(self, how: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Stop gracefully; kill whatever is left after ``timeout`` seconds. The exit code."""
        return super().stop(how, timeout)

    def kill(self) -> None:
        """SIGKILL every process of the instance at once (``serve``, granian, its workers,
        any mail worker), as a container runtime kills a container or systemd a unit's
        cgroup: nothing is finished, no connection closed cleanly, and nothing is left
        to answer on the port once this returns.

        Killing ``serve``'s process group alone would not do it: each of its children
        runs in a session of its own, and on the supervisor's death the kernel sends them
        a SIGTERM, on which granian finishes what it has (see docs/deployment.md)."""
        instance = self.pids()  # while serve is alive: its children are found through it
        super().kill()  # serve first, so it starts nothing again
        for pid in instance[1:]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # a child of serve leads its own group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        wait_for("every process of it gone", lambda: not any(map(alive, instance)), STOP_TIMEOUT)


def new_redis_prefix(label: str = "quartapp-e2e") -> str:
    return f"{label}:{uuid.uuid4().hex[:12]}:"


def launch(
    name: str,
    argv: list[str],
    *,
    port: int,
    env: dict[str, str],
    log: Path,
    cwd: Path = ROOT,
    workers: int = 1,
    settings: Mapping[str, Any] | None = None,
    timeout: float = START_TIMEOUT,
) -> AppServer:
    """Run ``argv`` (an app server on ``port``) and wait until it answers /healthz."""
    started = Process.start(name, argv, log=log, env=env, cwd=cwd)
    server = AppServer(
        name,
        started.process,
        log,
        port=port,
        redis_prefix=env.get("QUARTAPP_REDIS_PREFIX", ""),
        secret_key=env.get("QUARTAPP_SECRET_KEY", ""),
        workers=workers,
        settings=dict(settings or {}),
    )
    try:
        server.wait_until_healthy(timeout)
    except BaseException:
        server.kill()
        raise
    return server


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
    """Start an instance with the test settings and wait until it answers /healthz; the
    caller stops it.

    Instances that share ``secret_key`` and ``redis_prefix`` (and the database) are one
    deployment: a session made by one is good on the others."""
    port = port or free_port()
    env = app_environment(
        database_url,
        secret_key=secret_key or secrets.token_urlsafe(48),
        redis_prefix=redis_prefix or new_redis_prefix(),
        redis_url=redis_url,
        settings={**TEST_SETTINGS, **settings},
    )
    # serve stays as the supervisor of granian (and of no mail worker: see app_environment).
    command = [
        sys.executable, "-m", "quartapp", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    log = log_dir / f"server-{name}.log"
    log.unlink(missing_ok=True)
    return launch(name, command, port=port, env=env, log=log, workers=workers, settings=settings)


@contextlib.contextmanager
def serve(
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
) -> Iterator[AppServer]:
    """Run one app instance until the block ends, then stop it (gracefully, or killed if
    it does not stop in time). Redis keys under a prefix made here are deleted then."""
    own_prefix = redis_prefix is None
    server = start_app(
        database_url,
        name,
        port=port,
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

"""``python -m quartapp serve`` (and ``mail-worker``) as real processes.

``serve`` checks the settings before anything starts (one line naming a bad one, no
traceback, nothing listening), then supervises granian and the mail workers: it starts
again whichever dies, and however the stop signals arrive (to its process group, to it,
twice, mixed) everything it started is gone within 10 seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quartapp.serve import STOP_GRACE

from .support.app_servers import (
    ARTIFACTS,
    TEST_SETTINGS,
    AppServer,
    app_environment,
    delete_redis_keys,
    launch,
    new_redis_prefix,
)
from .support.http import Browser
from .support.mail_servers import MailCatcher, to
from .support.processes import (
    alive,
    command_line,
    descendants_of,
    free_port,
    port_open,
    wait_for,
)

pytestmark = pytest.mark.slow

SECRET_KEY = uuid.uuid4().hex * 2
LOGS = ARTIFACTS / "serve"
# The bound the supervisor promises from the first stop signal to the last process gone.
STOP_BOUND = 10
VERIFY = "Confirm your email address"


def environment(database: str, **settings: object) -> dict[str, str]:
    return app_environment(
        database,
        secret_key=SECRET_KEY,
        redis_prefix=new_redis_prefix("serve"),
        settings={**TEST_SETTINGS, **settings},
    )


# --- failing fast ----------------------------------------------------------------------


def run(command: str, env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    options = ["--port", str(port)] if command == "serve" else []
    return subprocess.run(  # noqa: S603 - our own command lines
        [sys.executable, "-m", "quartapp", command, *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def without(env: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key != name}


BAD_SETTINGS: dict[str, Callable[[dict[str, str]], dict[str, str]]] = {
    "QUARTAPP_SECRET_KEY": lambda env: without(env, "QUARTAPP_SECRET_KEY"),
    "QUARTAPP_PUBLIC_URL": lambda env: without(env, "QUARTAPP_PUBLIC_URL"),
    "QUARTAPP_MAIL_URL": lambda env: without(env, "QUARTAPP_MAIL_URL"),
    "QUARTAPP_THROTTLE_SIGN_IN_PER_IP": lambda env: {
        **env,
        "QUARTAPP_THROTTLE_SIGN_IN_PER_IP": "lots",
    },
}


@pytest.mark.parametrize("command", ["serve", "mail-worker"])
@pytest.mark.parametrize("setting", sorted(BAD_SETTINGS))
def test_a_missing_or_bad_setting_stops_the_command_with_one_line(
    database: str, command: str, setting: str
) -> None:
    env = BAD_SETTINGS[setting](environment(database))
    assert env.get("QUARTAPP_ENV") == "production"
    port = free_port()
    result = run(command, env, port)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("quartapp: ")
    assert setting in lines[0]
    assert not port_open(port)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("QUARTAPP_MAIL_WORKERS", "-1"), ("QUARTAPP_WORKERS", "two"), ("PORT", "70000")],
)
def test_a_bad_serve_option_stops_it_with_one_line(
    database: str, variable: str, value: str
) -> None:
    env = {**environment(database), variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "quartapp", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


# --- supervising -----------------------------------------------------------------------


def start_serve(
    database: str, name: str, *, workers: int = 1, mail_workers: int = 1, **settings: object
) -> AppServer:
    port = free_port()
    env = environment(database, **settings)
    command = [
        sys.executable, "-m", "quartapp", "serve", "--port", str(port),
        "--workers", str(workers), "--mail-workers", str(mail_workers),
    ]  # fmt: skip
    log = LOGS / f"{name}.log"
    log.unlink(missing_ok=True)
    return launch(name, command, port=port, env=env, log=log, workers=workers)


def mail_workers(server: AppServer) -> list[int]:
    return [pid for pid in server.children() if "mail-worker" in command_line(pid)]


def granian(server: AppServer) -> list[int]:
    return [pid for pid in server.children() if "granian" in command_line(pid)]


@pytest.fixture
def served(database: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., AppServer]]:
    started: list[AppServer] = []

    def start(**options: object) -> AppServer:
        server = start_serve(database, f"{request.node.name}-{len(started)}", **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        delete_redis_keys(server.redis_prefix)


def group_sigterm(server: AppServer) -> None:
    os.killpg(server.pid, signal.SIGTERM)


def direct(signum: int) -> Callable[[AppServer], None]:
    return lambda server: os.kill(server.pid, signum)


SIGNAL_PAIRS = {
    # Ctrl-C in a terminal, `docker stop`, `kill -- -PGID`; then a script forwarding its own.
    "group SIGTERM + SIGTERM": [group_sigterm, direct(signal.SIGTERM)],
    "SIGINT twice": [direct(signal.SIGINT), direct(signal.SIGINT)],
    "SIGTERM + SIGINT + group SIGTERM": [
        direct(signal.SIGTERM),
        direct(signal.SIGINT),
        group_sigterm,
    ],
    "SIGHUP + SIGTERM": [direct(signal.SIGHUP), direct(signal.SIGTERM)],
}


@pytest.mark.parametrize("pattern", sorted(SIGNAL_PAIRS))
def test_stop_signals_however_many_end_every_process_within_10_s(
    served: Callable[..., AppServer], pattern: str
) -> None:
    server = served(workers=2, mail_workers=1)
    wait_for("the mail worker", lambda: mail_workers(server) or None, 20)
    everything = [server.pid, *descendants_of(server.pid)]
    assert len(everything) == 1 + 1 + 2 + 1, everything  # serve, granian + 2, mail worker
    first = time.monotonic()
    for send in SIGNAL_PAIRS[pattern]:
        send(server)
    try:
        code = server.wait(timeout=STOP_BOUND)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve still runs {STOP_BOUND} s after {pattern}:\n{server.output()}")
    left = [pid for pid in everything if alive(pid)]
    assert not left, (left, server.output())
    assert code == 0, server.output()
    assert time.monotonic() - first < STOP_BOUND
    assert not port_open(server.port)


def test_the_supervisor_kills_what_does_not_stop_in_time(
    served: Callable[..., AppServer],
) -> None:
    """A mail worker that ignores SIGTERM (stopped with SIGSTOP, so it takes no signal but
    SIGKILL) is killed at the end of the grace period; serve then says so and exits 1."""
    server = served(mail_workers=1)
    (worker,) = wait_for("the mail worker", lambda: mail_workers(server) or None, 20)
    os.kill(worker, signal.SIGSTOP)
    server.terminate()
    code = server.wait(timeout=STOP_BOUND)
    assert code == 1
    assert not alive(worker)
    assert "killing it" in server.output()
    assert STOP_GRACE < STOP_BOUND


def test_a_mail_worker_that_dies_is_started_again_and_sends(database: str, tmp_path: Path) -> None:
    catcher = MailCatcher(tmp_path / "maildir")
    catcher.start()
    port = free_port()
    env = {
        **environment(database),
        "QUARTAPP_MAIL_URL": catcher.url,
        "QUARTAPP_MAIL_WORKERS": "1",  # from the environment this time
    }
    command = [sys.executable, "-m", "quartapp", "serve", "--port", str(port)]
    log = LOGS / "mail-worker-restart.log"
    log.unlink(missing_ok=True)
    server = launch("mail restart", command, port=port, env=env, log=log)
    try:
        (first,) = wait_for("the mail worker", lambda: mail_workers(server) or None, 20)
        os.kill(first, signal.SIGKILL)
        wait_for("the killed worker gone", lambda: not alive(first), 10)
        (second,) = wait_for(
            "a new mail worker",
            lambda: [pid for pid in mail_workers(server) if pid != first] or None,
            20,
        )
        assert "mail worker 1 was killed by SIGKILL" in server.output()
        # Only the new worker can send the mail a sign-up queues.
        email = f"restart-{uuid.uuid4().hex[:8]}@example.com"
        assert Browser().sign_up(server.base_url, email).status == 303
        catcher.wait_for(to(email, VERIFY))
        assert alive(second)
    finally:
        code = server.stop()
        catcher.stop()
        delete_redis_keys(server.redis_prefix)
    assert code == 0, server.output()


def test_granian_that_dies_is_started_again(served: Callable[..., AppServer]) -> None:
    server = served(mail_workers=0)
    (first,) = granian(server)
    os.killpg(first, signal.SIGKILL)  # granian and its worker
    wait_for("granian gone", lambda: not alive(first), 10)
    wait_for("a new granian", lambda: [pid for pid in granian(server) if pid != first] or None, 20)
    server.wait_until_healthy()
    assert "granian was killed by SIGKILL" in server.output()


def test_a_taken_port_is_one_line_and_nothing_starts(
    served: Callable[..., AppServer], database: str
) -> None:
    server = served(mail_workers=0)
    env = environment(database)
    result = run("serve", env, server.port)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"quartapp: cannot listen on 127.0.0.1:{server.port}: Address already in use"
    ]

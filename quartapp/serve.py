"""``python -m quartapp serve``: the web server and the mail workers, supervised.

``granian_argv`` is the one place that says how the app is served. script/server, the
Docker image, the tests and the benchmarks all start it through here, so what they run is
what a deployment runs.

``serve`` checks the settings first (a bad one stops it with one line naming it, before
anything listens), then stays as a small supervisor: it starts granian and
``QUARTAPP_MAIL_WORKERS`` mail workers as its children, starts again any that dies (waiting
longer each time one dies soon after starting), and stops them all on the first SIGTERM,
SIGINT or SIGHUP. Each child runs in a session of its own, so a signal sent to the
supervisor's process group (Ctrl-C, ``docker stop``, ``kill -- -PGID``) reaches the
supervisor only, and each child gets exactly one SIGTERM from it: granian's main process
could hang for good in its signal handler when a second signal arrived while it handled the
first. Whatever still runs ``STOP_GRACE`` seconds after the first signal is killed, so
``serve`` is gone within 10 seconds however many signals arrive.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quartapp.engine.quart_request_cycle import Application

APP = "quartapp.serve:served_app"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4300
# Seconds granian lets a worker finish its requests on a stop (SIGTERM) before killing it.
WORKERS_KILL_TIMEOUT = 6
# Seconds after the first stop signal when the supervisor kills whatever is still running
# (granian's workers, a mail worker in the middle of a job): after granian's own deadline,
# and soon enough that ``serve`` is gone within 10 seconds.
STOP_GRACE = 8
# A child that dies is started again after RESTART_DELAY seconds, doubled for each death
# in a row that came less than STABLE_AFTER seconds after its start, up to
# RESTART_DELAY_MAX: a child that cannot start does not spin the machine.
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


# Allocations (less deallocations) between two collections of the youngest generation;
# Python's default is 700. See ``settle_heap``.
YOUNG_COLLECTION_THRESHOLD = 10_000


def served_app(overrides: Mapping[str, Any] | None = None) -> Application:
    """The app as each server worker runs it: ``create_app``, and the worker's heap settled
    once it starts serving (``settle_heap``)."""
    from quartapp import create_app

    app = create_app(overrides)
    app.before_serving(settle_heap)
    return app


async def settle_heap() -> None:
    """Tune the garbage collector for serving, once the worker is up.

    Everything alive now (modules, the app, its routes and templates, open pools) lives as
    long as the process: it is frozen out of the collector's generations, so no collection
    walks it again. And a request makes a few hundred container objects, nearly all gone
    when its answer is sent; with 50 requests in flight, Python's default young threshold
    (700) collected several times per request batch and moved whatever was in flight to
    the older generations, whose collections then walked it again. At 10,000 most of a
    request's objects are freed by reference counting before any collection sees them.
    Only reference cycles wait for the collector, and each request leaves about 15 objects
    of those."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def granian_argv(*, host: str, port: int, workers: int = 1, app: str = APP) -> list[str]:
    """Granian's command line for ``app`` (a factory, ``module:function``).

    It runs with this interpreter, so it serves the quartapp installed beside it. No
    websockets (the app has none), uvloop, and a graceful stop bounded in time."""
    return [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--factory", app,
        "--host", host,
        "--port", str(port),
        "--loop", "uvloop",
        "--workers", str(workers),
        "--no-ws",
        "--workers-kill-timeout", str(WORKERS_KILL_TIMEOUT),
    ]  # fmt: skip


def mail_worker_argv() -> list[str]:
    """``python -m quartapp mail-worker`` with this interpreter."""
    return [sys.executable, "-m", "quartapp", "mail-worker"]


class StartError(Exception):
    """``serve`` cannot start: a bad option or setting, or a port taken. One line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port``, ``--workers`` and ``--mail-workers``, defaulting to HOST,
    PORT, QUARTAPP_WORKERS and QUARTAPP_MAIL_WORKERS (checked by ``ServeOptions.parse``)."""
    parser.add_argument("--host", help=f"address to listen on (default: $HOST or {DEFAULT_HOST})")
    parser.add_argument("--port", help=f"TCP port (default: $PORT or {DEFAULT_PORT})")
    parser.add_argument("--workers", help="web worker processes (default: $QUARTAPP_WORKERS or 1)")
    parser.add_argument(
        "--mail-workers",
        help="mail workers to run beside them; 0 where they run apart with "
        "`python -m quartapp mail-worker` (default: $QUARTAPP_MAIL_WORKERS or 1)",
    )


def _whole_number(
    given: str | None, option: str, variable: str, default: int, least: int, most: int
) -> int:
    """The option's value, else the environment variable's, else ``default``."""
    name, text = option, given
    if text is None:
        name, text = variable, os.environ.get(variable)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if not least <= value <= most:
        raise StartError(f"{name} must be a whole number from {least} to {most}, not {text!r}")
    return value


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    mail_workers: int = 1

    @classmethod
    def parse(cls, args: argparse.Namespace) -> ServeOptions:
        host = args.host if args.host is not None else os.environ.get("HOST") or DEFAULT_HOST
        return cls(
            host=host,
            port=_whole_number(args.port, "--port", "PORT", DEFAULT_PORT, 1, 65535),
            workers=_whole_number(args.workers, "--workers", "QUARTAPP_WORKERS", 1, 1, 256),
            mail_workers=_whole_number(
                args.mail_workers, "--mail-workers", "QUARTAPP_MAIL_WORKERS", 1, 0, 64
            ),
        )


def check_settings() -> None:
    """Build the app once as a worker would: a missing or bad setting raises StartError
    with the app's one-line message naming it."""
    from quartapp import create_app
    from quartapp.config import ConfigError

    try:
        create_app()
    except ConfigError as error:
        raise StartError(" ".join(str(error).splitlines())) from None


def check_port(host: str, port: int) -> None:
    """StartError when ``host:port`` cannot be listened on (taken, or not an address of
    this machine), said once here rather than by a web server started again and again."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as error:
        raise StartError(f"cannot listen on {host}:{port}: {error}") from None
    family, kind, protocol, _, address = addresses[0]
    with socket.socket(family, kind, protocol) as sock:
        # What granian sets, so a port left in TIME_WAIT by a server just stopped is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            raise StartError(f"cannot listen on {host}:{port}: {error.strerror}") from None


# prctl(2): the signal a process gets when the thread that started it ends.
PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> Callable[[], None] | None:
    """Run in each child between fork and exec: SIGTERM it when the supervisor dies (even
    killed with SIGKILL), so no child outlives it unsupervised. Linux only."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before the line above
            os._exit(1)

    return arrange


@dataclass
class Child:
    """A program the supervisor keeps running, and its current process."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    signalled: bool = field(default=False)

    def start(self, preexec: Callable[[], None] | None) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own command lines
            self.argv,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: group signals miss it
            preexec_fn=preexec,  # safe: the supervisor runs no threads
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        self.signalled = False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """One SIGTERM to the child itself (granian stops its own workers)."""
        if self.running() and not self.signalled:
            assert self.process is not None
            self.signalled = True
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the child's whole group: granian's workers too."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    """Keeps ``children`` running until the first stop signal, then stops them all."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stop_signal: int | None = None
        self.extra_signals = 0

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only flags: the loop does the work, so a signal arriving while another is being
        # handled changes nothing but a counter.
        if self.stop_signal is None:
            self.stop_signal = signum
        else:
            self.extra_signals += 1

    def say(self, text: str) -> None:
        print(f"quartapp: {text}", file=sys.stderr, flush=True)

    def run(self) -> int:
        """Start the children and supervise them; the exit status once all are gone."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        # A handler of its own (not "ignore"), so a child's exit wakes the loop at once.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        preexec = _stop_with_parent()
        try:
            for child in self.children:
                if self.stop_signal is None:
                    child.start(preexec)
            while self.stop_signal is None:
                self._wait(wake_read, self._next_restart())
                self._restart_the_dead(preexec)
            return self._stop_all(wake_read)
        finally:
            for child in self.children:
                child.kill()  # nothing left behind, whatever happened above
            signal.set_wakeup_fd(-1)
            os.close(wake_read)
            os.close(wake_write)

    def _wait(self, wake: int, timeout: float) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([wake], [], [], max(0.0, timeout))
        with contextlib.suppress(BlockingIOError):
            while os.read(wake, 512):
                pass

    def _next_restart(self) -> float:
        now = time.monotonic()
        waits = [child.restart_at - now for child in self.children if child.restart_at]
        return min([1.0, *waits])

    def _restart_the_dead(self, preexec: Callable[[], None] | None) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.running() or self.stop_signal is not None:
                continue
            if child.restart_at is None:
                code = child.process.returncode
                quick = now - child.started_at < STABLE_AFTER
                child.quick_deaths = child.quick_deaths + 1 if quick else 1
                delay = min(RESTART_DELAY * 2 ** (child.quick_deaths - 1), RESTART_DELAY_MAX)
                child.restart_at = now + delay
                self.say(f"{child.name} {describe(code)}; starting it again in {delay:g} s")
            elif now >= child.restart_at:
                child.kill()  # anything its group left behind
                child.start(preexec)

    def _stop_all(self, wake: int) -> int:
        assert self.stop_signal is not None
        deadline = time.monotonic() + STOP_GRACE
        self.say(f"{signal.Signals(self.stop_signal).name}: stopping (at most {STOP_GRACE} s)")
        for child in self.children:
            child.terminate()
        clean = True
        while any(child.running() for child in self.children):
            left = deadline - time.monotonic()
            if left <= 0:
                for child in self.children:
                    if child.running():
                        self.say(f"{child.name} still runs after {STOP_GRACE} s: killing it")
                        clean = False
                        child.kill()
                break
            self._wait(wake, min(left, 0.5))
        for child in self.children:
            code = child.process.returncode if child.process else 0
            if code not in (0, -signal.SIGTERM, None):
                clean = False
        if self.extra_signals:
            self.say(f"{self.extra_signals} more stop signal(s) received and ignored")
        return 0 if clean else 1


def serve(args: argparse.Namespace) -> int:
    """``python -m quartapp serve``: check, then supervise granian and the mail workers."""
    try:
        options = ServeOptions.parse(args)
        check_settings()
        check_port(options.host, options.port)
    except StartError as error:
        print(f"quartapp: {error}", file=sys.stderr)
        return 1
    children = [
        Child(
            "granian",
            granian_argv(host=options.host, port=options.port, workers=options.workers),
        )
    ]
    children += [
        Child(f"mail worker {number}", mail_worker_argv())
        for number in range(1, options.mail_workers + 1)
    ]
    print(
        f"quartapp: {options.workers} web worker(s) on {options.host}:{options.port}, "
        f"{options.mail_workers} mail worker(s)",
        file=sys.stderr,
        flush=True,
    )
    return Supervisor(children).run()

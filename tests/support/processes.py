"""Server processes of our own: free ports, start, wait until ready, stop, kill.

Every server a test or a benchmark starts (an app instance, nginx, a private Redis or
MariaDB, another ASGI server) is a ``Process``: its own process group, its output in a
log file, every wait bounded. A process that does not get ready, or that dies while we
wait, raises ``ProcessError`` with the end of its log.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

T = TypeVar("T")


class ProcessError(RuntimeError):
    """A process did not start, get ready or stop in time."""


def _ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections."""
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    return range(32768, 61000)


def free_ports(count: int) -> list[int]:
    """Ports of 127.0.0.1 nobody uses right now, all different, outside the ephemeral range.

    Outside it, because a server that is stopped and started again on its port must find
    it free: an outgoing connection may otherwise take it meanwhile, or even connect to
    itself there while it retries a server that is down (TCP's "self-connect")."""
    ephemeral = _ephemeral_ports()
    candidates = [port for port in range(15000, 32768) if port not in ephemeral]
    random.shuffle(candidates)
    ports: list[int] = []
    with contextlib.ExitStack() as stack:
        for port in candidates:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ProcessError(f"found no {count} free ports outside {ephemeral}")


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout):
        return True
    return False


def cpu_ticks(pids: Iterable[int]) -> int:
    """The CPU time these processes have used so far (user + system, every thread), in
    clock ticks (``os.sysconf("SC_CLK_TCK")`` a second). A process that is gone counts 0."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started that still run (none if it is gone)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(child) for child in children.read_text().split()]
    return []


def descendants_of(pid: int) -> list[int]:
    """Its children, each followed by its own descendants."""
    found: list[int] = []
    for child in children_of(pid):
        found += [child, *descendants_of(child)]
    return found


def command_line(pid: int) -> list[str]:
    """The process's argv; [] once it is gone."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    return []


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return False


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    step: float = 0.05,
    errors: tuple[type[Exception], ...] = (OSError,),
) -> T:
    """Call ``check`` until it returns something other than None or False (``errors``
    count as None); ``ProcessError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
        except errors as error:
            result, last_error = None, error
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise ProcessError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(step)


@dataclass
class Process:
    """A running server process in a process group of its own, its output in ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> Process:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            process = subprocess.Popen(  # noqa: S603 - our own command lines
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def children(self) -> list[int]:
        """The processes it started (granian's main process, say)."""
        return children_of(self.pid)

    def pids(self) -> list[int]:
        """The process and its descendants, depth first (``serve``, granian's main process,
        its workers), for CPU accounting and profilers."""
        return [self.pid, *descendants_of(self.pid)]

    def output(self, last: int = 4000) -> str:
        """The last ``last`` characters of its log."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-last:]
        return "(no log)"

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output(last=200 * lines).splitlines()[-lines:])

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        """Until ``ready()``; ``ProcessError`` with the log if the process exits first or
        ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.running():
                raise ProcessError(
                    f"{self.name} exited (code {self.process.poll()}) before {what}:\n"
                    f"{self.output()}"
                )
            if time.monotonic() > deadline:
                raise ProcessError(f"{self.name}: no {what} within {timeout:g} s:\n{self.output()}")
            time.sleep(0.05)

    def send(self, how: int) -> None:
        if self.running():
            self.process.send_signal(how)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self, how: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Ask it to stop (SIGTERM, or SIGQUIT for nginx); kill its whole group if it is
        still there after ``timeout`` seconds. The exit code."""
        self.send(signal.SIGCONT)  # were it paused
        self.send(how)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the process and everything in its group: nothing is finished."""
        if self.process.returncode is None:
            # The group is the one start() made for this process (start_new_session).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()

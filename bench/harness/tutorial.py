"""The tutorial's Node app (/work/shared/tutorial-app), measured in the same run as
quartapp: a process this run did not start, found by the port it listens on, signed in
to through its own form, and pinned to the app's CPU while it is measured."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.http import Browser

TUTORIAL_LOGIN = "bench@example.com:benchpass"  # its ./run.sh --user makes this user
TUTORIAL_COOKIE = "connect.sid"


@dataclass
class Listener:
    """A server this run did not start: its port, and its process for CPU accounting."""

    port: int
    pid: int

    def pids(self) -> list[int]:
        return [self.pid]


def tutorial_sign_in(base: str, email: str, password: str) -> str:
    """Sign in to the tutorial app through its form; its ``connect.sid`` cookie."""
    reply = Browser().request(
        "POST", f"{base}/api/v1/signin", fields={"email": email, "password": password}
    )
    cookie = reply.cookies().get(TUTORIAL_COOKIE)
    if reply.status != 302 or not (reply.location or "").endswith("/home") or not cookie:
        raise RuntimeError(
            f"the tutorial app did not sign {email} in ({reply.status});"
            " make the user with its ./run.sh --user"
        )
    return cookie


def listener_pid(port: int) -> int:
    """The process listening on this TCP port on the loopback."""
    out = subprocess.run(
        ["ss", "-ltnpH", f"( sport = :{port} )"], capture_output=True, text=True, timeout=10,
        check=False,
    ).stdout  # fmt: skip
    found = re.search(r"pid=(\d+)", out)
    if found is None:
        raise RuntimeError(f"nothing of ours listens on port {port}")
    return int(found.group(1))


def tutorial_listener(url: str) -> Listener:
    """The tutorial app at ``url`` (http://127.0.0.1:PORT)."""
    port = urllib.parse.urlsplit(url).port or 80
    return Listener(port, listener_pid(port))


@contextlib.contextmanager
def pinned(pid: int, cpu: str) -> Iterator[None]:
    """Pin every thread of ``pid`` to ``cpu`` while measuring, as the app is; then restore."""
    tasks = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    before = {task: os.sched_getaffinity(task) for task in tasks}
    for task in tasks:
        os.sched_setaffinity(task, {int(cpu)})
    try:
        yield
    finally:
        for task, cpus in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(task, cpus)

"""Real mail for the tests: an SMTP server (aiosmtpd, a process of its own on a loopback
port, storing every message in a Maildir) and mail workers (``python -m quartapp
mail-worker``, processes of their own) sending to it."""

from __future__ import annotations

import contextlib
import mailbox
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from .app_servers import ARTIFACTS, ROOT, app_environment, free_port
from .conftest import PUBLIC_URL

START_TIMEOUT = 15.0


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@dataclass
class MailCatcher:
    """An SMTP server that keeps what it receives; it can be stopped and started again."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "aiosmtpd", "-n",
            "-l", f"127.0.0.1:{self.port}",
            "-c", "aiosmtpd.handlers.Mailbox", str(self.folder),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not port_open(self.port):
            assert self.process.poll() is None, "the SMTP server did not start"
            assert time.monotonic() < deadline, "the SMTP server did not listen in time"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def messages(self) -> list[Message]:
        if not self.folder.exists():
            return []
        return list(mailbox.Maildir(self.folder, create=False))

    def wait_for(
        self, matches: Callable[[Message], bool], count: int = 1, timeout: float = 30.0
    ) -> list[Message]:
        """The messages ``matches`` accepts, once there are at least ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [message for message in self.messages() if matches(message)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                subjects = [str(message["Subject"]) for message in self.messages()]
                raise AssertionError(f"{len(found)} of {count} mails arrived; got {subjects}")
            time.sleep(0.1)


def to(address: str, subject_part: str) -> Callable[[Message], bool]:
    return lambda message: message["To"] == address and subject_part in str(message["Subject"])


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def html_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no HTML part")


def link_in(message: Message, path: str) -> str:
    """The path of the link to ``PUBLIC_URL + path...`` in the mail's text."""
    match = re.search(re.escape(PUBLIC_URL + path) + r"(\S+)", text_of(message))
    assert match, text_of(message)
    return path + match.group(1)


@dataclass
class MailWorker:
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: the worker finishes nothing."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_worker(
    database_url: str, *, secret_key: str, redis_prefix: str, name: str, **settings: Any
) -> MailWorker:
    env = app_environment(
        database_url, secret_key=secret_key, redis_prefix=redis_prefix, settings=settings
    )
    log_dir = ARTIFACTS / "mail"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "quartapp", "mail-worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return MailWorker(process, log_path)

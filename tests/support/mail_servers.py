"""Real mail for the tests: an SMTP server (aiosmtpd, a process of its own on a loopback
port, storing every message in a Maildir) and mail workers (``python -m quartapp
mail-worker``, processes of their own) sending to it."""

from __future__ import annotations

import mailbox
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from .app_servers import ARTIFACTS, app_environment
from .processes import Process, free_port, port_open
from .settings import PUBLIC_URL

START_TIMEOUT = 15.0


@dataclass
class MailCatcher:
    """An SMTP server that keeps what it receives; it can be stopped and started again."""

    folder: Path
    port: int = field(default_factory=free_port)
    server: Process | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "aiosmtpd", "-n",
            "-l", f"127.0.0.1:{self.port}",
            "-c", "aiosmtpd.handlers.Mailbox", str(self.folder),
        ]  # fmt: skip
        self.server = Process.start("smtp", command, log=ARTIFACTS / "mail" / "smtp.log")
        self.server.wait_until("the SMTP port", lambda: port_open(self.port), START_TIMEOUT)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=10)
        self.server = None

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


def start_worker(
    database_url: str, *, secret_key: str, redis_prefix: str, name: str, **settings: Any
) -> Process:
    """``python -m quartapp mail-worker`` with the test settings; stop or kill it."""
    env = app_environment(
        database_url, secret_key=secret_key, redis_prefix=redis_prefix, settings=settings
    )
    return Process.start(
        f"mail worker {name}",
        [sys.executable, "-m", "quartapp", "mail-worker"],
        log=ARTIFACTS / "mail" / f"worker-{name}.log",
        env=env,
    )

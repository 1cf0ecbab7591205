"""bcrypt hashing, and judging a new password's strength, each in threads of their own, so
neither ever stalls the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt
from quart import Quart, current_app

from quartapp.infra.extension import ServingExtension

EXTENSION = "quartapp.passwords"
# bcrypt reads at most 72 bytes; longer passwords are refused, never silently truncated.
MAX_PASSWORD_BYTES = 72
# Seconds a strength judgement may wait for its thread and run, before the request gets a
# 503 rather than waiting on (judging is bounded to a fraction of a second; see accounts).
JUDGE_TIMEOUT = 5.0
T = TypeVar("T")


class PasswordHasher(ServingExtension):
    """bcrypt in a small pool of low-priority threads, and zxcvbn in a thread of its own."""

    EXTENSION = EXTENSION
    rounds = 12
    _pool: ThreadPoolExecutor | None = None
    _judge_pool: ThreadPoolExecutor | None = None
    _reference_hash: bytes | None = None

    def init_app(self, app: Quart) -> None:
        self.rounds = int(app.config["BCRYPT_ROUNDS"])
        self._threads = int(app.config["BCRYPT_THREADS"])
        super().init_app(app)

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(
            self._threads, thread_name_prefix="bcrypt", initializer=_yield_to_requests
        )
        # One thread: zxcvbn is pure Python (it holds the GIL while it works, so more threads
        # would not judge faster) and keeps the user's words in a module-level dictionary.
        self._judge_pool = ThreadPoolExecutor(
            1, thread_name_prefix="password-strength", initializer=_yield_to_requests
        )
        # Checked against when the email is unknown, so that failure costs the same time.
        self._reference_hash = (await self.hash("reference password, never valid")).encode()

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._judge_pool is not None:
            self._judge_pool.shutdown(wait=True, cancel_futures=True)
            self._judge_pool = None

    async def judge(self, judge: Callable[[str, str], T], password: str, email: str) -> T:
        """Run ``judge(password, email)`` (accounts.judge_password) in the judging thread.

        Raises TimeoutError if it has not finished within JUDGE_TIMEOUT seconds."""
        assert self._judge_pool is not None, "the hasher is used before the app started serving"
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._judge_pool, judge, password, email)
        return await asyncio.wait_for(future, JUDGE_TIMEOUT)

    async def _run_in_pool(self, func: object, *args: bytes) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, func, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        hashed = await self._run_in_pool(bcrypt.hashpw, password.encode(), salt)
        assert isinstance(hashed, bytes)
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check ``password``; a failure always costs at least the configured cost's time.

        With no hash (unknown user) the reference hash is checked instead. A stored hash of a
        lower cost (made before the cost was raised) fails fast, so the reference is checked
        after it as well: otherwise a wrong password would tell such dormant accounts apart
        from the others in a few milliseconds."""
        secret = password.encode()
        if len(secret) > MAX_PASSWORD_BYTES:
            secret = secret[:MAX_PASSWORD_BYTES]  # cannot match: such passwords are never stored
            hashed = None
        reference = self._reference_hash
        assert reference is not None, "the hasher is used before the app started serving"
        target = hashed.encode() if hashed is not None else reference
        try:
            matches = bool(await self._run_in_pool(bcrypt.checkpw, secret, target))
        except ValueError:  # a damaged stored hash opens nothing
            matches = False
        if matches and hashed is not None:
            return True
        if target is not reference and self.cost_of(hashed or "") < self.rounds:
            await self._run_in_pool(bcrypt.checkpw, secret, reference)
        return False

    @staticmethod
    def cost_of(hashed: str) -> int:
        """The cost a bcrypt hash was made with; 0 if it is not one."""
        try:
            return int(hashed.split("$")[2])
        except (IndexError, ValueError):
            return 0

    def needs_rehash(self, hashed: str) -> bool:
        """True when ``hashed`` was made with another cost than the one configured now."""
        return self.cost_of(hashed) != self.rounds


# Linux weighs CPU time by niceness: at 10 a hashing thread gets about a tenth of what the
# event loop gets when both want the core. (At 19 sign-ins starved under full load.)
HASHING_NICENESS = 10


def _yield_to_requests() -> None:
    """Run this hashing thread at a low CPU priority.

    bcrypt releases the GIL, but on a busy core its threads would still take CPU time
    from the event loop in equal shares, and every request would wait longer. At a low
    priority hashing mostly uses what requests leave over (Linux sets it per thread)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


def get_hasher() -> PasswordHasher:
    hasher: PasswordHasher = current_app.extensions[EXTENSION]
    return hasher

"""bcrypt hashing, and judging a new password's strength, each in threads of their own, so
neither ever stalls the event loop.

Both run from bounded queues in lanes (``priority_pool``): work for what the product is
(a sign-up, a new password, a reset, a sign-in from a client the account remembers, a
re-check from a signed-in session) goes before work that any anonymous client can ask for
in bulk (the live strength hint; sign-ins from other clients), and a full queue refuses at
once with a 503 rather than making everyone wait."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import bcrypt
from quart import Quart, current_app

from quartapp.accounts.priority_pool import PoolBusy, PriorityPool
from quartapp.infra.extension import ServingExtension
from quartapp.web.errors import AppError

EXTENSION = "quartapp.passwords"
# bcrypt reads at most 72 bytes; longer passwords are refused, never silently truncated.
MAX_PASSWORD_BYTES = 72
# Seconds a strength judgement may wait for its thread and run, before the request gets a
# 503 rather than waiting on (judging is bounded to a fraction of a second; see accounts).
JUDGE_TIMEOUT = 5.0
# Seconds a client refused for a full queue is told to wait.
BUSY_RETRY_AFTER = 2
T = TypeVar("T")


class Lane(enum.IntEnum):
    """Which queue password work waits in; the threads serve FIRST before OTHER."""

    FIRST = 0  # sign-up, new password, reset, re-check, a remembered client's sign-in
    OTHER = 1  # the strength hint; sign-ins from clients the account does not remember


class PasswordsBusy(AppError):
    """A 503 for password work refused because its queue is full."""

    def __init__(self) -> None:
        super().__init__(
            "Too many passwords are being checked right now. Please try again in a moment.",
            status=503,
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )


class PasswordHasher(ServingExtension):
    """bcrypt in a small pool of low-priority threads, and zxcvbn in a thread of its own,
    each with bounded queues in two lanes."""

    EXTENSION = EXTENSION
    rounds = 12
    _pool: PriorityPool | None = None
    _judge_pool: PriorityPool | None = None
    _reference_hash: bytes | None = None

    def init_app(self, app: Quart) -> None:
        self.rounds = int(app.config["BCRYPT_ROUNDS"])
        self._threads = int(app.config["BCRYPT_THREADS"])
        self._queue = int(app.config["BCRYPT_QUEUE"])
        self._judge_queue = int(app.config["PASSWORD_JUDGE_QUEUE"])
        self._hint_queue = int(app.config["PASSWORD_HINT_QUEUE"])
        super().init_app(app)

    async def open(self) -> None:
        self._pool = PriorityPool(
            self._threads,
            [self._queue, self._queue],
            name="bcrypt",
            initializer=_yield_to_requests,
        )
        # One thread: zxcvbn is pure Python (it holds the GIL while it works, so more threads
        # would not judge faster) and keeps the user's words in a module-level dictionary.
        self._judge_pool = PriorityPool(
            1,
            [self._judge_queue, self._hint_queue],
            name="password-strength",
            initializer=_yield_to_requests,
        )
        # Checked against when the email is unknown, so that failure costs the same time.
        self._reference_hash = (await self.hash("reference password, never valid")).encode()

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._judge_pool is not None:
            self._judge_pool.shutdown()
            self._judge_pool = None

    @property
    def pools(self) -> tuple[PriorityPool, PriorityPool]:
        """The bcrypt pool and the judging pool."""
        assert self._pool is not None, "the hasher is used before the app started serving"
        assert self._judge_pool is not None, "the hasher is used before the app started serving"
        return self._pool, self._judge_pool

    async def judge(
        self, judge: Callable[[str, str], T], password: str, email: str, lane: Lane = Lane.FIRST
    ) -> T:
        """Run ``judge(password, email)`` (accounts.judge_password) in the judging thread.

        Raises PoolBusy at once if ``lane``'s queue is full, and TimeoutError if the
        judgement has not finished within JUDGE_TIMEOUT seconds."""
        _, pool = self.pools
        return await asyncio.wait_for(pool.run(lane, judge, password, email), JUDGE_TIMEOUT)

    async def _run_in_pool(self, lane: Lane, func: Callable[..., T], *args: bytes) -> T:
        pool, _ = self.pools
        try:
            return await pool.run(lane, func, *args)
        except PoolBusy:
            raise PasswordsBusy() from None

    async def hash(self, password: str) -> str:
        """A new hash (always in the first lane: only sign-ups and new passwords hash).
        Raises PasswordsBusy if the queue is full."""
        salt = bcrypt.gensalt(self.rounds)
        hashed = await self._run_in_pool(Lane.FIRST, bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None, lane: Lane = Lane.FIRST) -> bool:
        """Check ``password``; a failure always costs at least the configured cost's time.
        Raises PasswordsBusy, having checked nothing, if ``lane``'s queue is full.

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
        also_reference = target is not reference and self.cost_of(hashed or "") < self.rounds
        matches = await self._run_in_pool(
            lane, _check, secret, target, reference if also_reference else b""
        )
        return matches and hashed is not None  # the reference hash opens nothing

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


def _check(secret: bytes, target: bytes, also: bytes) -> bool:
    """One check in one job: ``secret`` against ``target``, then, if it failed and ``also``
    is given, against ``also`` too (see ``PasswordHasher.verify``)."""
    try:
        if bcrypt.checkpw(secret, target):
            return True
    except ValueError:  # a damaged stored hash opens nothing
        pass
    if also:
        bcrypt.checkpw(secret, also)
    return False


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

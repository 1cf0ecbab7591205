"""bcrypt hashing in a small thread pool, so a sign-in never stalls the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from quart import Quart, current_app

EXTENSION = "quartapp.passwords"
# bcrypt reads at most 72 bytes; longer passwords are refused, never silently truncated.
MAX_PASSWORD_BYTES = 72


class PasswordHasher:
    def __init__(self, app: Quart | None = None) -> None:
        self.rounds = 12
        self._pool: ThreadPoolExecutor | None = None
        self._reference_hash: bytes | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        self.rounds = int(app.config["BCRYPT_ROUNDS"])
        self._threads = int(app.config["BCRYPT_THREADS"])
        app.extensions[EXTENSION] = self
        app.before_serving(self._start)
        app.after_serving(self._stop)

    async def _start(self) -> None:
        self._pool = ThreadPoolExecutor(
            self._threads, thread_name_prefix="bcrypt", initializer=_yield_to_requests
        )
        # Checked against when the email is unknown, so that failure costs the same time.
        self._reference_hash = (await self.hash("reference password, never valid")).encode()

    async def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def _run_in_pool(self, func: object, *args: bytes) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, func, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        hashed = await self._run_in_pool(bcrypt.hashpw, password.encode(), salt)
        assert isinstance(hashed, bytes)
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check ``password``; with no hash (unknown user) spend the same time and fail."""
        secret = password.encode()
        if len(secret) > MAX_PASSWORD_BYTES:
            secret = secret[:MAX_PASSWORD_BYTES]  # cannot match: such passwords are never stored
            hashed = None
        target = hashed.encode() if hashed is not None else self._reference_hash
        assert target is not None, "the hasher is used before the app started serving"
        matches = await self._run_in_pool(bcrypt.checkpw, secret, target)
        return bool(matches) and hashed is not None

    def needs_rehash(self, hashed: str) -> bool:
        """True when ``hashed`` was made with another cost than the one configured now."""
        try:
            return int(hashed.split("$")[2]) != self.rounds
        except (IndexError, ValueError):
            return True


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

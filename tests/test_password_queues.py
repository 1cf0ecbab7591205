"""Password work waits in lanes with bounded queues (quartapp/accounts/priority_pool.py,
accounts/hashing.py): what the product is (sign-ups, new passwords, sign-ins from a client
the account remembers) goes before what anyone can ask for in bulk (the live strength hint,
sign-ins from other clients), and a full queue refuses at once.

The threads are held on a gate (a job that waits on an event) so that what is queued, and
in which order it runs, is seen for certain; nothing here measures time. The flood over
real sockets is in tests/test_attacks.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from quart import Quart

from quartapp.accounts import hashing, service
from quartapp.accounts.hashing import Lane, get_hasher
from quartapp.accounts.priority_pool import PoolBusy, PriorityPool

from .conftest import PASSWORD, Auth, csrf_from

STRENGTH_PATH = "/api/v1/password-strength"
WAIT = 10.0  # seconds a step may take before the test fails (a hang, not a measure)


class Gate:
    """A job that holds one thread of a pool until ``open``."""

    def __init__(self) -> None:
        self.running = threading.Event()
        self.released = threading.Event()

    def hold(self) -> None:
        self.running.set()
        self.released.wait(WAIT)

    def open(self) -> None:
        self.released.set()


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.open()  # never leave a thread held, whatever the test did


async def until(what: str, condition: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def held_pool(pool: PriorityPool, gate: Gate) -> None:
    """Occupy the pool's one thread with ``gate``."""
    pool.submit(Lane.FIRST, gate.hold)
    await until("the gate runs", gate.running.is_set)


def from_address(address: str) -> dict[str, Any]:
    return {"scope_base": {"client": (address, 40000)}}


# -- the pool ------------------------------------------------------------------------------------


async def test_the_first_lane_goes_first_and_a_full_lane_refuses_at_once(gate: Gate) -> None:
    pool = PriorityPool(1, [2, 1], name="test")
    try:
        await held_pool(pool, gate)
        done: list[str] = []
        later = pool.submit(Lane.OTHER, done.append, "other")
        with pytest.raises(PoolBusy):  # refused while the thread is still held: not queued
            pool.submit(Lane.OTHER, done.append, "other, one too many")
        first = [pool.submit(Lane.FIRST, done.append, f"first {n}") for n in range(2)]
        with pytest.raises(PoolBusy):
            pool.submit(Lane.FIRST, done.append, "first, one too many")
        gate.open()
        for future in [later, *first]:
            future.result(WAIT)
        assert done == ["first 0", "first 1", "other"]
    finally:
        pool.shutdown()


async def test_a_waiter_that_gave_up_holds_no_place(gate: Gate) -> None:
    pool = PriorityPool(1, [1, 1], name="test")
    try:
        await held_pool(pool, gate)
        waiting = asyncio.ensure_future(pool.run(Lane.OTHER, str, "given up"))
        await until("the job waits", lambda: pool.waiting(Lane.OTHER) == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        after = pool.submit(Lane.OTHER, str, "in its place")
        gate.open()
        assert after.result(WAIT) == "in its place"
    finally:
        pool.shutdown()


async def test_shutting_down_cancels_what_waits(gate: Gate) -> None:
    pool = PriorityPool(1, [4, 4], name="test")
    await held_pool(pool, gate)
    waiting = pool.submit(Lane.OTHER, str, "never run")
    gate.open()
    pool.shutdown()
    assert waiting.cancelled() or waiting.result() == "never run"
    with pytest.raises(RuntimeError):
        pool.submit(Lane.FIRST, str, "too late")


# -- the strength hint ---------------------------------------------------------------------------


async def test_the_hint_is_shed_first_and_sign_ups_go_before_it(
    make_app: Callable[..., Awaitable[Quart]], gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: 90 clients on the anonymous hint made sign-ups wait 5 s or fail with a
    503. Now a hint waits behind every judgement a form asked for, and when the hint's
    short queue is full the hint is refused at once (503 with Retry-After as JSON, a "busy"
    note as the fragment), while a sign-up is still queued and judged first."""
    app = await make_app(PASSWORD_HINT_QUEUE=1, PASSWORD_JUDGE_QUEUE=2)
    judged: list[str] = []
    original = service.judge_password

    def recorded(password: str, email: str) -> Any:
        judged.append(password)
        return original(password, email)

    monkeypatch.setattr(service, "judge_password", recorded)
    async with app.app_context():
        _, judge_pool = get_hasher().pools
    client = app.test_client()
    token = await csrf_from(client, "/register")
    json_headers = {"X-CSRF-Token": token, "Accept": "application/json"}
    await held_pool(judge_pool, gate)

    async def hint(password: str, **headers: str) -> Any:
        body = {"email": "ada@example.com", "password": password}
        return await client.post(STRENGTH_PATH, form=body, headers={**json_headers, **headers})

    queued_hint = asyncio.ensure_future(hint("hint that waits its turn"))
    await until("the hint waits", lambda: judge_pool.waiting(Lane.OTHER) == 1)
    # The queue is full: refused while the thread is still held, so not queued.
    refused = await asyncio.wait_for(hint("one hint too many"), WAIT)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == str(hashing.BUSY_RETRY_AFTER)
    assert (await refused.get_json())["message"] == service.HINT_BUSY
    fragment = await asyncio.wait_for(
        hint("one more hint", **{"HX-Request": "true", "Accept": "text/html"}), WAIT
    )
    assert fragment.status_code == 200
    assert service.HINT_BUSY in await fragment.get_data(as_text=True)

    sign_up = asyncio.ensure_future(Auth(app.test_client()).sign_up("grace@example.com"))
    await until("the sign-up's judgement waits", lambda: judge_pool.waiting(Lane.FIRST) == 1)
    gate.open()
    assert (await asyncio.wait_for(sign_up, WAIT)).status_code == 303
    assert (await asyncio.wait_for(queued_hint, WAIT)).status_code == 200
    assert judged == [PASSWORD, "hint that waits its turn"]


async def test_a_full_judging_queue_refuses_a_sign_up_at_once(
    make_app: Callable[..., Awaitable[Quart]], gate: Gate
) -> None:
    app = await make_app(PASSWORD_JUDGE_QUEUE=1)
    async with app.app_context():
        _, judge_pool = get_hasher().pools
    await held_pool(judge_pool, gate)
    first = asyncio.ensure_future(Auth(app.test_client()).sign_up("ada@example.com"))
    await until("a sign-up waits", lambda: judge_pool.waiting(Lane.FIRST) == 1)
    refused = await asyncio.wait_for(Auth(app.test_client()).sign_up("grace@example.com"), WAIT)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == str(hashing.BUSY_RETRY_AFTER)
    assert "Too many passwords are being checked" in await refused.get_data(as_text=True)
    gate.open()
    assert (await asyncio.wait_for(first, WAIT)).status_code == 303


# -- bcrypt --------------------------------------------------------------------------------------


async def test_guesses_fill_only_their_own_bounded_queue_and_the_owner_goes_first(
    make_app: Callable[..., Awaitable[Quart]], gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: 60 clients of wrong passwords made the owner's correct sign-in wait
    7.5 s. Guesses from clients the account does not remember wait in a queue of their own;
    one too many is a quick 503 (its attempt given back); the owner, from a client the
    account remembers, is checked before every guess that waits."""
    app = await make_app(BCRYPT_THREADS=1, BCRYPT_QUEUE=2, THROTTLE_SIGN_IN_PER_IP=[5, 60])
    checked: list[bytes] = []
    original = hashing._check

    def recorded(secret: bytes, target: bytes, also: bytes) -> bool:
        checked.append(secret)
        return original(secret, target, also)

    monkeypatch.setattr(hashing, "_check", recorded)

    async def sign_in(address: str, password: str) -> Any:
        client = app.test_client()
        token = await csrf_from(client, "/")  # pages need no bcrypt
        fields = {"email": "ada@example.com", "password": password, "csrf_token": token}
        return await client.post("/api/v1/signin", form=fields, **from_address(address))

    assert (await Auth(app.test_client()).sign_up("ada@example.com")).status_code == 303
    # The owner's client: remembered by the account once it has signed in.
    assert (await sign_in("192.0.2.1", PASSWORD)).status_code == 303
    async with app.app_context():
        bcrypt_pool, _ = get_hasher().pools
    await held_pool(bcrypt_pool, gate)

    def guess(n: int) -> Awaitable[Any]:
        return sign_in(f"198.51.100.{n}", f"wrong guess {n}")

    guesses = [asyncio.ensure_future(guess(n)) for n in range(2)]
    await until("two guesses wait", lambda: bcrypt_pool.waiting(Lane.OTHER) == 2)
    refused = await asyncio.wait_for(guess(2), WAIT)  # the thread is still held: not queued
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == str(hashing.BUSY_RETRY_AFTER)

    signing_in = asyncio.ensure_future(sign_in("192.0.2.1", PASSWORD))
    await until("the owner's check waits", lambda: bcrypt_pool.waiting(Lane.FIRST) == 1)
    gate.open()
    assert (await asyncio.wait_for(signing_in, WAIT)).status_code == 303
    assert [(await asyncio.wait_for(g, WAIT)).status_code for g in guesses] == [401, 401]
    assert checked[-3:] == [PASSWORD.encode(), b"wrong guess 0", b"wrong guess 1"]
    # The refused guess was given back: that client still has its five attempts.
    for _ in range(5):
        assert (await guess(2)).status_code == 401
    assert (await guess(2)).status_code == 429

"""A failed sign-in (and "forgot your password", at the end) does not tell whether the email
has an account: not by its words, not by its status, and not by how long it takes.

``check_credentials`` (quartapp/accounts/service.py) looks the email up and then always runs
one bcrypt check: against the account's hash when there is one, otherwise against a
reference hash the hasher makes at start-up (``PasswordHasher.open`` in
quartapp/accounts/hashing.py). Without that reference hash an unknown email would skip bcrypt and
fail in about a millisecond (a MySQL lookup), a known email with a wrong password only after
the whole bcrypt check: the "3 ms against 300 ms" difference the tutorial warns about, which
anyone can see from a script, and which lets them test a list of addresses for accounts.

What this checks is that gross difference, not a timing attack under a microscope: the
tries go through the in-process test client on a machine that may be busy with other work,
so differences of a few percent are below the noise here and are not claimed either way.
To make the check meaningful the app runs with bcrypt at cost 10 (the test suite otherwise
uses 4, where a check takes about a millisecond and would drown in the lookup's own noise),
so one bcrypt check dominates each failed sign-in. The two kinds of tries are interleaved
(in ABBA order, so neither always goes first), after a warm-up, and compared by median and
by trimmed mean, which a few slow outliers on a loaded machine do not move. The bound is a
quarter of one failed sign-in: the reference-hash design lands near 0 %, skipping bcrypt for
unknown emails near 100 % (checked by hand once on a scratch copy of the app whose
``check_credentials`` returned early for an unknown email: 1.7 ms against 57.7 ms by
median and by trimmed mean, and the test failed).

Throttling is off in the tests (tests/conftest.py), so neither kind of try is refused with
a 429 part-way through; tests/test_throttle_routes.py covers that unknown and known emails
are throttled alike.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import bcrypt
import pytest
from quart.testing import QuartClient
from redis.asyncio.connection import AbstractConnection

from quartapp.accounts.models import User
from quartapp.engine.tortoise_mysql import BoundedMySQLClient

from .conftest import PASSWORD

# Addresses no other test uses, so that a test run sharing the database cannot sign up
# the same address with another hash cost mid-run. Same length, same domain.
_RUN = uuid.uuid4().hex[:12]
KNOWN = f"timing-known-{_RUN}@example.com"
UNKNOWN = f"timing-nobdy-{_RUN}@example.com"  # never signed up
LOW_COST = f"timing-cheap-{_RUN}@example.com"  # hashed at cost 4, from before a raise
WRONG_PASSWORD = "not the right password"
BCRYPT_ROUNDS = 10
WARM_UP = 4  # pairs, not measured
TRIES = 40  # of each kind
# |known - unknown| must stay under this share of one failed sign-in.
TOLERANCE = 0.25


def trimmed_mean(values: list[float], share: float = 0.1) -> float:
    """The mean without the lowest and highest ``share`` of the values."""
    ordered = sorted(values)
    cut = int(len(ordered) * share)
    return statistics.fmean(ordered[cut : len(ordered) - cut])


def one_bcrypt_check() -> float:
    """Seconds for one bcrypt check at ``BCRYPT_ROUNDS`` on this machine: the fastest of a
    few, since other work on a busy machine only ever makes one slower (a slow one taken as
    the measure would make every sign-in look too quick to have checked a password)."""
    hashed = bcrypt.hashpw(b"calibration", bcrypt.gensalt(BCRYPT_ROUNDS))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        bcrypt.checkpw(b"wrong", hashed)
        times.append(time.perf_counter() - start)
    return min(times)


Answer = tuple[int, bytes, tuple[tuple[str, str], ...]]  # status, body, headers


async def signed_out_client(app: Any, *emails: str) -> tuple[QuartClient, dict[str, str]]:
    """Sign up each of ``emails``, then a fresh client and its CSRF headers, signed out."""
    for email in emails:
        client: QuartClient = app.test_client()
        token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
        created = await client.post(
            "/api/v1/signup",
            json={"email": email, "password": PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        assert created.status_code == 201
    client = app.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    return client, {"X-CSRF-Token": token}


async def failure_timings(
    client: QuartClient, headers: dict[str, str], first: str, second: str
) -> str:
    """Fail to sign in as ``first`` and ``second`` in turn (ABBA order, after a warm-up);
    checks that the answers are identical and the times alike, and returns the report."""

    async def fail(email: str) -> tuple[float, Any]:
        body = {"email": email, "password": WRONG_PASSWORD}
        start = time.perf_counter()
        response = await client.post("/api/v1/signin", json=body, headers=headers)
        elapsed = time.perf_counter() - start
        return elapsed, response

    timings: dict[str, list[float]] = {first: [], second: []}
    answers: dict[str, set[Answer]] = {first: set(), second: set()}
    for pair in range(WARM_UP + TRIES):
        order = (first, second) if pair % 2 == 0 else (second, first)
        for email in order:
            elapsed, response = await fail(email)
            # Every header but the date, which may tick between two answers.
            headers_seen = tuple(
                sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() != "date")
            )
            answers[email].add((response.status_code, await response.get_data(), headers_seen))
            if pair >= WARM_UP:
                timings[email].append(elapsed)

    # Identical in status, body and headers: one answer for every try.
    assert answers[first] == answers[second]
    assert len(answers[first]) == 1, answers[first]
    ((status, body, headers_seen),) = answers[first]
    assert status == 401
    assert body == b'{"code":"invalid_credentials","message":"Incorrect email or password."}\n'
    assert "set-cookie" not in dict(headers_seen)  # a failure starts no session

    a, b = timings[first], timings[second]
    median_a, median_b = statistics.median(a), statistics.median(b)
    trimmed_a, trimmed_b = trimmed_mean(a), trimmed_mean(b)
    report = (
        f"{first}: median {median_a * 1000:.1f} ms, trimmed mean {trimmed_a * 1000:.1f} ms; "
        f"{second}: median {median_b * 1000:.1f} ms, trimmed mean {trimmed_b * 1000:.1f} ms"
    )
    print(report)  # shown with pytest -s
    # The test means something only if bcrypt is what a failed sign-in spends its time on.
    assert min(median_a, median_b) > 0.5 * one_bcrypt_check(), report
    scale = max(median_a, median_b)
    assert abs(median_a - median_b) < TOLERANCE * scale, report
    assert abs(trimmed_a - trimmed_b) < TOLERANCE * scale, report
    return report


async def test_failed_sign_in_is_the_same_for_unknown_and_known_emails(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(BCRYPT_ROUNDS=BCRYPT_ROUNDS)
    client, headers = await signed_out_client(app, KNOWN)
    await failure_timings(client, headers, KNOWN, UNKNOWN)


async def test_an_account_hashed_at_a_lower_cost_fails_as_slowly(
    make_app: Callable[..., Any],
) -> None:
    """After the cost is raised, accounts not signed in to since keep their cheaper hash
    until their next sign-in. A wrong password must not fail faster for them than for
    anyone else, or every dormant account could be told apart."""
    app = await make_app(BCRYPT_ROUNDS=BCRYPT_ROUNDS)
    client, headers = await signed_out_client(app, LOW_COST)
    cheap = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    async with app.app_context():
        await User.filter(email=LOW_COST).update(password_hash=cheap)
    await failure_timings(client, headers, LOW_COST, UNKNOWN)


# "Forgot your password" does less than a sign-in: it checks the address's form, counts the
# request, looks the address up, writes one link record (one that grants nothing for an
# address without an account) and names it in a set, and puts a job on the mail queue, the
# same work whether or not the address has an account (the last test shows it command by
# command). No bcrypt dominates it, so the bound is a quarter of the
# slower median, or FORGOT_FLOOR, whichever is larger: a request that skipped the lookup or
# the write for one kind, or mailed from the request, would stand out.
FORGOT_FLOOR = 0.002


async def test_forgot_password_is_the_same_for_unknown_and_known_emails(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app()
    client, headers = await signed_out_client(app, KNOWN)

    async def ask(email: str) -> tuple[float, Any]:
        start = time.perf_counter()
        response = await client.post("/password/forgot", json={"email": email}, headers=headers)
        return time.perf_counter() - start, response

    timings: dict[str, list[float]] = {KNOWN: [], UNKNOWN: []}
    answers: dict[str, set[Answer]] = {KNOWN: set(), UNKNOWN: set()}
    for pair in range(WARM_UP + TRIES):
        order = (KNOWN, UNKNOWN) if pair % 2 == 0 else (UNKNOWN, KNOWN)
        for email in order:
            elapsed, response = await ask(email)
            headers_seen = tuple(
                sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() != "date")
            )
            answers[email].add((response.status_code, await response.get_data(), headers_seen))
            if pair >= WARM_UP:
                timings[email].append(elapsed)

    assert answers[KNOWN] == answers[UNKNOWN]
    assert len(answers[KNOWN]) == 1, answers[KNOWN]
    ((status, body, headers_seen),) = answers[KNOWN]
    assert status == 202
    assert b"If an account exists for that address" in body
    assert "set-cookie" not in dict(headers_seen)

    a, b = timings[KNOWN], timings[UNKNOWN]
    median_a, median_b = statistics.median(a), statistics.median(b)
    trimmed_a, trimmed_b = trimmed_mean(a), trimmed_mean(b)
    report = (
        f"known: median {median_a * 1000:.2f} ms, trimmed mean {trimmed_a * 1000:.2f} ms; "
        f"unknown: median {median_b * 1000:.2f} ms, trimmed mean {trimmed_b * 1000:.2f} ms"
    )
    print(report)
    bound = max(TOLERANCE * max(median_a, median_b), FORGOT_FLOOR)
    assert abs(median_a - median_b) < bound, report
    assert abs(trimmed_a - trimmed_b) < bound, report


Work = list[tuple[str, ...]]


def record_work(monkeypatch: pytest.MonkeyPatch) -> Work:
    """Every Redis command any client of the process sends from now on (its name, and for
    a script its SHA and key count) and every SQL statement (its text, values apart), in
    order. Not how long each takes: what is done."""
    work: Work = []
    pack_command = AbstractConnection.pack_command
    pack_commands = AbstractConnection.pack_commands
    execute_query = BoundedMySQLClient.execute_query

    def command(args: tuple[Any, ...]) -> tuple[str, ...]:
        name = str(args[0]).upper()
        if name in ("EVALSHA", "EVAL"):
            return ("redis", name, str(args[1]), str(args[2]))
        return ("redis", name)

    def packed(self: AbstractConnection, *args: Any) -> Any:
        work.append(command(args))
        return pack_command(self, *args)

    def packed_many(self: AbstractConnection, commands: Any) -> Any:
        commands = list(commands)
        work.extend(command(tuple(args)) for args in commands)
        return pack_commands(self, commands)

    async def queried(self: BoundedMySQLClient, query: str, values: Any = None) -> Any:
        work.append(("sql", query))
        return await execute_query(self, query, values)

    monkeypatch.setattr(AbstractConnection, "pack_command", packed)
    monkeypatch.setattr(AbstractConnection, "pack_commands", packed_many)
    monkeypatch.setattr(BoundedMySQLClient, "execute_query", queried)
    return work


async def test_forgot_password_does_the_same_work_for_unknown_and_known_emails(
    make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same Redis commands and SQL statements, in the same order, for an address with
    an account and one without, with the reset rules on (the throttle's script is part of
    it). Each is asked twice: the second link of an account finds its set of links there.
    (The known address's link used to be named in the account's set with three more round
    trips, SADD, TTL and EXPIRE, that the unknown address's never made.)"""
    app = await make_app(
        THROTTLE_PASSWORD_RESET_PER_IP=[10, 3600],
        THROTTLE_PASSWORD_RESET_PER_ADDRESS=[3, 3600],
        THROTTLE_PASSWORD_RESET_PER_ADDRESS_IP=[3, 3600],
    )
    client, headers = await signed_out_client(app, KNOWN)
    for email in (KNOWN, UNKNOWN):  # warm: scripts loaded, connections made
        await client.post("/password/forgot", json={"email": f"warm.{email}"}, headers=headers)
    work = record_work(monkeypatch)
    done: dict[str, list[Work]] = {KNOWN: [], UNKNOWN: []}
    for email in (KNOWN, UNKNOWN, UNKNOWN, KNOWN):
        work.clear()
        response = await client.post("/password/forgot", json={"email": email}, headers=headers)
        assert response.status_code == 202
        done[email].append(list(work))
    monkeypatch.undo()
    assert done[KNOWN][0], "nothing was recorded"
    assert done[KNOWN] == done[UNKNOWN]

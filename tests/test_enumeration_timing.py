"""A failed sign-in does not tell whether the email has an account: not by its words, not by
its status, and not by how long it takes.

``check_credentials`` (quartapp/blueprints/auth.py) looks the email up and then always runs
one bcrypt check: against the account's hash when there is one, otherwise against a
reference hash the hasher makes at start-up (``PasswordHasher._start`` in
quartapp/passwords.py). Without that reference hash an unknown email would skip bcrypt and
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
from quart.testing import QuartClient

from .conftest import PASSWORD

# Addresses no other test uses, so that a test run sharing the database cannot sign up
# the same address with another hash cost mid-run. Same length, same domain.
_RUN = uuid.uuid4().hex[:12]
KNOWN = f"timing-known-{_RUN}@example.com"
UNKNOWN = f"timing-nobdy-{_RUN}@example.com"  # never signed up
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
    """Seconds for one bcrypt check at ``BCRYPT_ROUNDS`` on this machine, right now."""
    hashed = bcrypt.hashpw(b"calibration", bcrypt.gensalt(BCRYPT_ROUNDS))
    times = []
    for _ in range(3):
        start = time.perf_counter()
        bcrypt.checkpw(b"wrong", hashed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def test_failed_sign_in_is_the_same_for_unknown_and_known_emails(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(BCRYPT_ROUNDS=BCRYPT_ROUNDS)
    client: QuartClient = app.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    headers = {"X-CSRF-Token": token}
    created = await client.post(
        "/api/v1/signup", json={"email": KNOWN, "password": PASSWORD}, headers=headers
    )
    assert created.status_code == 201
    # Signed up means signed in; sign-in failures are measured without a session.
    await client.post("/logout", headers={"X-CSRF-Token": token, "Accept": "application/json"})
    client = app.test_client()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    headers = {"X-CSRF-Token": token}

    async def fail(email: str) -> tuple[float, Any]:
        body = {"email": email, "password": WRONG_PASSWORD}
        start = time.perf_counter()
        response = await client.post("/api/v1/signin", json=body, headers=headers)
        elapsed = time.perf_counter() - start
        return elapsed, response

    timings: dict[str, list[float]] = {KNOWN: [], UNKNOWN: []}
    Answer = tuple[int, bytes, tuple[tuple[str, str], ...]]  # status, body, headers
    answers: dict[str, set[Answer]] = {KNOWN: set(), UNKNOWN: set()}
    for pair in range(WARM_UP + TRIES):
        order = (KNOWN, UNKNOWN) if pair % 2 == 0 else (UNKNOWN, KNOWN)
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
    assert answers[KNOWN] == answers[UNKNOWN]
    assert len(answers[KNOWN]) == 1, answers[KNOWN]
    ((status, body, headers_seen),) = answers[KNOWN]
    assert status == 401
    assert body == b'{"error":"Incorrect email or password."}\n'
    assert "set-cookie" not in dict(headers_seen)  # a failure starts no session

    known, unknown = timings[KNOWN], timings[UNKNOWN]
    median_known, median_unknown = statistics.median(known), statistics.median(unknown)
    trimmed_known, trimmed_unknown = trimmed_mean(known), trimmed_mean(unknown)
    report = (
        f"known email: median {median_known * 1000:.1f} ms, trimmed mean "
        f"{trimmed_known * 1000:.1f} ms; unknown email: median {median_unknown * 1000:.1f} ms, "
        f"trimmed mean {trimmed_unknown * 1000:.1f} ms"
    )
    print(report)  # shown with pytest -s
    # The test means something only if bcrypt is what a failed sign-in spends its time on.
    assert median_known > 0.5 * one_bcrypt_check(), report
    scale = max(median_known, median_unknown)
    assert abs(median_known - median_unknown) < TOLERANCE * scale, report
    assert abs(trimmed_known - trimmed_unknown) < TOLERANCE * scale, report

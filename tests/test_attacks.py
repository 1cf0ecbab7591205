"""Attacks tried against the app, each kept as a test (docs/security.md, "Tested attacks").

The in-process ones go through the test client; the last ones run the app as it is served
(``python -m quartapp serve``, one granian worker) and attack it over real sockets.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from quart.testing import QuartClient

from quartapp.accounts.models import User

from .conftest import PASSWORD, Auth, csrf_from
from .support.app_servers import AppServer, serve
from .support.http import Browser, Client, cookie_header

SQL_INJECTIONS = [
    "' OR '1'='1",
    "ada@example.com' --",
    "ada@example.com'; DROP TABLE users; --",
    '" OR ""="',
    "x@example.com' UNION SELECT id, email, password_hash, 1, 0 FROM users --",
    "\\' OR 1=1 #",
]
SCRIPT = '<script>alert("x")</script>'


@pytest.mark.parametrize("email", SQL_INJECTIONS)
async def test_sql_in_the_sign_in_form_is_just_a_failed_sign_in(
    app: object, auth: Auth, email: str
) -> None:
    await auth.sign_up()
    await auth.post("/logout")
    for password in (PASSWORD, "' OR '1'='1"):
        response = await auth.sign_in(email, password)
        assert response.status_code in (401, 422), (email, response.status_code)
    assert await User.all().count() == 1


@pytest.mark.parametrize("text", SQL_INJECTIONS)
async def test_sql_in_the_sign_up_form_is_refused_or_stored_as_text(auth: Auth, text: str) -> None:
    response = await auth.sign_up(text, "tulip granite harbour kettle")
    assert response.status_code in (303, 422)
    assert await User.filter(email="ada@example.com").count() == 0
    assert await User.all().count() <= 1


async def test_what_is_typed_comes_back_escaped(client: QuartClient, auth: Auth) -> None:
    """A failed form shows the email as typed, escaped: never as markup."""
    for path, page in (("/api/v1/signin", "/"), ("/api/v1/signup", "/register")):
        token = await csrf_from(client, page)
        response = await client.post(
            path,
            form={"email": f"{SCRIPT}@example.com", "password": "x", "csrf_token": token},
        )
        body = await response.get_data(as_text=True)
        assert response.status_code in (401, 422)
        assert SCRIPT not in body
        assert "&lt;script&gt;" in body


async def test_forged_client_address_headers_are_not_believed(client: QuartClient) -> None:
    """Without a trusted proxy, X-Forwarded-For is ignored, so a guesser cannot pose as
    many clients to get round the per-client rules (tests/test_client_address.py has more)."""
    response = await client.get("/", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"})
    assert response.status_code == 200


# -- against the served app ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[AppServer]:
    with serve(database, "attacks") as running:
        yield running


def _post_json(server: AppServer, path: str, body: dict[str, str], token: str, cookie: str) -> int:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": token,
        "Cookie": cookie,
    }
    with Client(server.port) as client:
        return client.request("POST", path, headers, json.dumps(body).encode()).status


def _csrf(server: AppServer) -> tuple[str, str]:
    with Client(server.port, timeout=10) as client:
        reply = client.request("GET", "/api/v1/csrf")
    return json.loads(reply.body)["csrf_token"], cookie_header(reply.cookies())


def _probe(server: AppServer) -> int:
    """A GET of /healthz; its status (a server that never answers fails it by the timeout)."""
    with Client(server.port) as client:
        return client.request("GET", "/healthz").status


def test_slow_to_score_passwords_do_not_freeze_the_worker(server: AppServer) -> None:
    """The black-box finding: one anonymous request with a password zxcvbn is slow on froze
    the worker for seconds. Now judgements run in a thread of their own: five times, four
    slow ones are asked for at once, and once the first has answered (so the judging has
    begun and the others wait behind it, received), a probe answers before the last of
    them does. On the event loop, a probe waits behind every judgement received before it."""
    token, cookie = _csrf(server)
    for round_ in range(5):
        answered: list[str] = []
        done = threading.Condition()

        def judge(n: int, answered: list[str] = answered, done: threading.Condition = done) -> None:
            password = SLOWEST_TO_SCORE[n:] + SLOWEST_TO_SCORE[:n]
            body = {"email": f"user{n}@example.com", "password": password}
            status = _post_json(server, "/api/v1/password-strength", body, token, cookie)
            with done:
                answered.append(f"judged {status}")
                done.notify_all()

        threads = [threading.Thread(target=judge, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        with done:
            assert done.wait_for(lambda answered=answered: answered, 30)
        status = _probe(server)
        with done:
            answered.append(f"probe {status}")
        for thread in threads:
            thread.join(30)
        assert answered.count("judged 200") == 4, (round_, answered)
        assert "probe 200" in answered[:-1], (round_, answered)  # before the last judgement


def test_slow_clients_do_not_hold_up_others(server: AppServer) -> None:
    """Clients that open connections and send their headers a byte at a time (slowloris)
    do not stop the server answering everyone else: while 50 of them hold connections, a
    probe is answered after each of their trickles, before any of them is let go."""
    sockets = []
    happened: list[str] = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"POST /api/v1/signin HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sockets.append(sock)
        for n in range(3):
            for sock in sockets:
                with contextlib.suppress(OSError):  # the server may close them: fine too
                    sock.sendall(f"X-Slow-{n}: a\r\n".encode())
            happened.append(f"probe {_probe(server)}")
    finally:
        happened.append("slow clients let go")
        for sock in sockets:
            sock.close()
    assert happened == ["probe 200"] * 3 + ["slow clients let go"]
    assert server.running()


# A password zxcvbn takes long over (about half a second here) even in its bounded part.
SLOWEST_TO_SCORE = "9|574(8e703{9|!@s11t2(tb76($3tz023%9+o53@4c!(2188@5$@7gza[|!b[c9c|eitb[$"
HINT_FLOODERS = 40


def test_a_flood_of_strength_hints_sheds_the_hint_not_the_sign_ups(server: AppServer) -> None:
    """The finding: 90 clients on the anonymous strength hint, each within its own limit,
    made 4 of 10 sign-ups answer 503 and the rest wait 5 s, all judgements sharing one
    thread's first-come queue. Now 40 clients flood the hint (over loopback, until the
    sign-ups are done, and never longer than a minute) while a user signs up five times:
    every sign-up succeeds, and the hint is what is refused (a 503 with Retry-After)."""
    token, cookie = _csrf(server)
    stop = threading.Event()
    statuses: list[int] = []
    retry_after: set[str | None] = set()

    def flood(n: int) -> None:
        body = json.dumps({"email": f"flood{n}@example.com", "password": SLOWEST_TO_SCORE})
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-CSRF-Token": token,
            "Cookie": cookie,
        }
        with Client(server.port) as client:
            while not stop.is_set():
                reply = client.request("POST", "/api/v1/password-strength", headers, body.encode())
                statuses.append(reply.status)
                if reply.status == 503:
                    retry_after.add(reply.headers.get("Retry-After"))

    flooders = [threading.Thread(target=flood, args=(n,)) for n in range(HINT_FLOODERS)]
    for thread in flooders:
        thread.start()
    timer = threading.Timer(60, stop.set)
    timer.start()
    try:
        sign_ups = []
        for n in range(5):
            reply = Browser().sign_up(server.base_url, f"sign-up-{n}@example.com")
            sign_ups.append(reply.status)
    finally:
        stop.set()
        timer.cancel()
        for thread in flooders:
            thread.join(60)
    assert sign_ups == [303] * 5
    assert set(statuses) <= {200, 503}, set(statuses)
    assert 503 in statuses  # the hint was shed...
    assert retry_after == {"2"}  # ...with a time to come back
    assert 200 in statuses  # ...and still answered when there was room


def test_an_oversized_cookie_header_is_refused_before_any_parsing(server: AppServer) -> None:
    """The finding: a 390 KB Cookie header (granian takes it) cost every route about 60 ms,
    /healthz included. The app refuses it at its entry point with a 431 that says what to
    do."""
    cookie = "; ".join(f"c{n}={'x' * 1000}" for n in range(390))
    with Client(server.port) as client:
        for path in ("/healthz", "/", "/home"):
            reply = client.request("GET", path, {"Cookie": cookie})
            assert reply.status == 431, (path, reply.status)
            assert "Delete this site's cookies" in reply.text
    _probe(server)  # and without them, answered as ever

"""Several app processes as one deployment, behind nginx, through restarts and outages.

Everything is a real process on a loopback port of its own: granian serving the app,
nginx with a generated config, and for the outage tests a private Redis and a private
MariaDB (never the machine's own services, which other tests use). The instances of one
deployment share the secret key, the Redis prefix and the database; a session is a Redis
record, so any instance can serve any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pymysql
import pytest
from tortoise import connections

from .conftest import PASSWORD, Auth
from .support.app_servers import (
    ARTIFACTS,
    AppServer,
    delete_redis_keys,
    new_redis_prefix,
    serve,
    start_app,
)
from .support.databases import migrate
from .support.http import COUNTDOWN_HEADERS, CSRF_FIELD, SESSION_COOKIE, Reply, status_of
from .support.http import Browser as AnyBrowser
from .support.nginx import Nginx, run_nginx
from .support.processes import Process, cpu_ticks, free_port, port_open, wait_for

# Starts nginx, Redis, MariaDB and app servers of its own: part of the normal run, left out of the
# second Python's (script/test).
pytestmark = pytest.mark.slow

LOGS = ARTIFACTS / "scale-out"
HTMX = COUNTDOWN_HEADERS  # a poll as the page's countdown sends it
# No answer may take longer than this, outage or not: a hang fails the test.
HANG = 5.0


# --- a browser, as far as these tests need one ---------------------------------------


@dataclass
class Browser(AnyBrowser):
    """A browser whose every answer must come within ``HANG`` seconds."""

    timeout: float = HANG

    def copy(self) -> Browser:
        return Browser(self.source, dict(self.cookies), dict(self.headers))


def new_email(label: str = "scale") -> str:
    return f"{label}.{uuid.uuid4().hex[:10]}@example.com"


def signed_up(base: str, label: str = "scale") -> tuple[Browser, str]:
    """A new account, and a browser signed in to it (sign-up signs in)."""
    browser, email = Browser(), new_email(label)
    reply = browser.sign_up(base, email)
    assert (reply.status, reply.location) == (303, "/home"), reply.text[:500]
    return browser, email


def shows_home(reply: Reply, email: str) -> bool:
    return reply.status == 200 and email in reply.text


def live_countdown(reply: Reply) -> bool:
    return reply.status == 200 and "hx-get" in reply.text and "expired" not in reply.text


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    wait_for(what, condition, timeout, step=0.1)


# --- one deployment: two instances behind nginx --------------------------------------


@dataclass
class Deployment:
    database: str
    secret_key: str
    redis_prefix: str
    a: AppServer
    b: AppServer
    nginx: Nginx
    settings: dict[str, Any]

    def instance(self, name: str, **options: Any) -> AppServer:
        """Another instance of this deployment (the caller stops it)."""
        return start_app(
            self.database,
            name,
            secret_key=self.secret_key,
            redis_prefix=self.redis_prefix,
            log_dir=LOGS,
            **{**self.settings, **options},
        )


@pytest.fixture(scope="module")
def deployment(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Instance A (one granian worker) and instance B (two, as QUARTAPP_WORKERS=2 runs
    it) on their own ports, and nginx balancing them round-robin."""
    secret_key = secrets.token_urlsafe(48)
    prefix = new_redis_prefix("quartapp-scale")
    # nginx connects from 127.0.0.1; the browsers of the address test from 127.0.0.2.
    settings: dict[str, Any] = {"TRUSTED_PROXIES": ["127.0.0.1"]}
    common = {"secret_key": secret_key, "redis_prefix": prefix, "log_dir": LOGS, **settings}
    with (
        serve(database, "scale-a", **common) as a,
        serve(database, "scale-b", workers=2, **common) as b,
        run_nginx(tmp_path_factory.mktemp("nginx"), [a.port, b.port], "2s") as nginx,
    ):
        running = Deployment(database, secret_key, prefix, a, b, nginx, settings)
        try:
            yield running
        finally:
            for server in (running.a, running.b):  # the tests may have replaced them
                if server is not a and server is not b:
                    server.stop()
    delete_redis_keys(prefix)


def test_a_session_made_on_one_instance_works_on_the_other(deployment: Deployment) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    _, email = signed_up(a)
    browser = Browser()
    reply = browser.sign_in(a, email)
    assert (reply.status, reply.location) == (303, "/home")

    assert shows_home(browser.get(f"{b}/home"), email)
    assert live_countdown(browser.get(f"{b}/session/countdown", **HTMX))
    seconds = json.loads(browser.get(f"{b}/session/countdown", Accept="application/json").text)[
        "expires_in"
    ]
    assert 590 <= seconds <= 600

    copied = browser.copy()
    reply = browser.sign_out(b)
    assert (reply.status, reply.location) == (303, "/?signed_out=1")
    # The record is gone from Redis: the cookie is dead on every instance at once.
    for base in (a, b):
        home = copied.get(f"{base}/home")
        assert (home.status, home.location) == (303, "/")
        assert "expired" in copied.get(f"{base}/session/countdown", **HTMX).text


def test_round_robin_through_nginx_goes_unnoticed(deployment: Deployment) -> None:
    front = deployment.nginx.base_url
    instances = {f"127.0.0.1:{deployment.a.port}", f"127.0.0.1:{deployment.b.port}"}
    browser, email = Browser(), new_email()
    served: Counter[str] = Counter()

    def note(reply: Reply) -> Reply:
        assert reply.upstream in instances, reply.upstream
        served[reply.upstream] += 1
        return reply

    # Each form is shown by one instance and posted to the other: the CSRF cookie and
    # token are signed with the shared key.
    assert note(browser.sign_up(front, email)).status == 303
    for _ in range(4):
        assert shows_home(note(browser.get(f"{front}/home")), email)
        assert live_countdown(note(browser.get(f"{front}/session/countdown", **HTMX)))
    assert note(browser.sign_out(front)).location == "/?signed_out=1"
    assert note(browser.get(f"{front}/home")).location == "/"
    assert note(browser.sign_in(front, email)).location == "/home"
    for _ in range(2):
        assert shows_home(note(browser.get(f"{front}/home")), email)
    assert set(served) == instances
    assert min(served.values()) >= 5, served


def test_instance_b_serves_from_two_worker_processes(deployment: Deployment) -> None:
    b = deployment.b
    workers = b.worker_pids()
    assert len(workers) == 2
    browser, email = signed_up(b.base_url)
    before = [cpu_ticks([pid]) for pid in workers]
    for _ in range(200):  # a connection each: both workers accept from the one socket
        assert shows_home(browser.get(b.url("/home")), email)
    used = [cpu_ticks([pid]) - start for pid, start in zip(workers, before, strict=True)]
    assert all(ticks > 0 for ticks in used), used


def test_the_client_address_comes_from_x_forwarded_for_of_trusted_proxies_only(
    deployment: Deployment,
) -> None:
    forged = {"X-Forwarded-For": "198.51.100.7"}  # what any client can write
    email = new_email()
    through_nginx = Browser(source="127.0.0.2", headers=forged)
    assert through_nginx.sign_up(deployment.nginx.base_url, email).status == 303
    direct = Browser(source="127.0.0.3", headers=forged)
    assert direct.sign_in(deployment.a.base_url, email).status == 303

    listing = direct.get(deployment.b.url("/sessions"), Accept="application/json")
    addresses = {entry["ip"] for entry in json.loads(listing.text)["sessions"]}
    # Through nginx, a trusted proxy: the address nginx saw, not what the client wrote.
    # Straight to an instance: the socket's peer, as the header is not believed.
    assert addresses == {"127.0.0.2", "127.0.0.3"}


def test_rolling_restart_behind_nginx_loses_no_request(deployment: Deployment) -> None:
    """Each instance in turn is stopped gracefully and started again while a user keeps
    browsing through nginx: every request is answered as if nothing happened.

    nginx's passive health check keeps a server it saw fail out of rotation for
    ``fail_timeout``, so the next instance is stopped only once nginx is sending requests
    to the restarted one again."""
    front = deployment.nginx.base_url
    browser, email = signed_up(front)
    answers: list[tuple[str, float, str | None, bool]] = []
    failures: list[str] = []
    stop = threading.Event()

    def browse() -> None:
        try:
            while not stop.is_set():
                home = browser.get(f"{front}/home")
                answers.append(("home", time.monotonic(), home.upstream, shows_home(home, email)))
                poll = browser.get(f"{front}/session/countdown", **HTMX)
                answers.append(("countdown", time.monotonic(), poll.upstream, live_countdown(poll)))
        except Exception as error:  # reported by the test, not lost in the thread
            failures.append(repr(error))

    def served_by(port: int, since: float) -> bool:
        return any(at > since and upstream == f"127.0.0.1:{port}" for _, at, upstream, _ in answers)

    user = threading.Thread(target=browse)
    user.start()
    try:
        for name in ("a", "b"):
            time.sleep(0.5)
            old: AppServer = getattr(deployment, name)
            assert old.stop() == 0, old.output()
            time.sleep(0.5)  # only the other instance is up now
            new = deployment.instance(f"scale-{name}-restarted", port=old.port, workers=old.workers)
            setattr(deployment, name, new)
            assert status_of(new.port, "/readyz") == 200
            back = functools.partial(served_by, new.port, time.monotonic())
            wait_until(back, 10, f"nginx sending to {name} again")
        time.sleep(0.5)
    finally:
        stop.set()
        user.join()
    assert not failures
    assert len(answers) > 20
    bad = [answer for answer in answers if not answer[3]]
    assert not bad, f"{len(bad)} of {len(answers)} answers were wrong: {bad[:5]}"
    assert "no live upstreams" not in deployment.nginx.error_log()


def test_a_killed_instance_behind_nginx_costs_no_session(deployment: Deployment) -> None:
    """An instance dies (SIGKILL to every process of it at once, as a container runtime
    kills a container: nothing is finished or closed). nginx sends everything to the other
    one; the user stays signed in, as the session is in Redis, and is still signed in on
    the dead instance once it is started again."""
    front = deployment.nginx.base_url
    browser, email = signed_up(front)
    dead = deployment.a
    dead.kill()
    try:
        # Nothing of it left to answer. (On a loaded machine the last socket of a killed
        # process group can take a moment to close after every process is reaped.)
        wait_for("the dead instance's port closed", lambda: not port_open(dead.port), 10)
        for _ in range(6):
            home = browser.get(f"{front}/home")
            assert shows_home(home, email)
            assert home.upstream is not None
            assert home.upstream.endswith(f":{deployment.b.port}")
    finally:  # the later tests of the module need an instance A, whatever happened here
        deployment.a = deployment.instance("scale-a-revived", port=dead.port)
    assert shows_home(browser.get(deployment.a.url("/home")), email)


# --- graceful shutdown ---------------------------------------------------------------


def _sign_in_request(server: AppServer, email: str) -> tuple[bytes, bytes]:
    """The head and body of a browser's sign-in post, CSRF cookie and token included. The
    head asks for "100 Continue" before the body: the server sends it once the app has
    started on the request and waits for the body."""
    browser = Browser()
    page = browser.get(server.url("/"))
    token = CSRF_FIELD.search(page.text)
    assert token
    body = urllib.parse.urlencode(
        {"email": email, "password": PASSWORD, "csrf_token": token[1]}
    ).encode()
    cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    head = (
        "POST /api/v1/signin HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n"
        f"Cookie: {cookies}\r\n"
        "\r\n"
    ).encode()
    return head, body


def _read_interim(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(1024)
        assert chunk, f"the connection closed after {received!r}"
        received += chunk
    return received


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_a_request_in_flight_finish(deployment: Deployment, workers: int) -> None:
    """A sign-in under way when the process gets SIGTERM: the process stops taking
    connections, finishes that request (its body, bcrypt at the production cost, the MySQL
    query, the Redis write) with its normal answer, then exits."""
    server = deployment.instance(f"graceful-{workers}", workers=workers, BCRYPT_ROUNDS=12)
    try:
        _, email = signed_up(server.base_url)
        head, body = _sign_in_request(server, email)
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(head)
            assert _read_interim(sock).startswith(b"HTTP/1.1 100 ")  # the app has it
            stopping_at = time.monotonic()
            server.terminate()
            wait_until(lambda: status_of(server.port) is None, 5, "refusing new connections")
            assert server.running()  # still busy with the request in flight
            sock.sendall(body)
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
        assert response.status == 303
        assert response.getheader("Location") == "/home"
        cookies: SimpleCookie = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        assert cookies[SESSION_COOKIE].value
        assert server.wait(timeout=10) == 0
        assert time.monotonic() - stopping_at < 10
        # The session it made is in Redis, good on the rest of the deployment.
        browser = Browser(cookies={SESSION_COOKIE: cookies[SESSION_COOKIE].value})
        assert shows_home(browser.get(deployment.a.url("/home")), email)
    finally:
        server.stop()
    assert "Granian shutdown completed" in server.output()


# --- private services, to take away and bring back -----------------------------------


@dataclass
class PrivateService:
    """A server process of our own (``command``), stopped and started on the same port."""

    name: str
    port: int
    command: list[str]
    directory: Path
    ready: Callable[[], bool]
    running: Process | None = None

    def start(self, timeout: float = 30) -> None:
        self.running = Process.start(
            self.name, self.command, log=self.directory / f"{self.name}.out"
        )
        self.running.wait_until("readiness", self.ready, timeout)

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, the server answers none of them,
        as a hung server or a network that drops packets without a reset."""
        assert self.running is not None
        self.running.send(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.running is not None
        self.running.send(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it (or a restart begins)."""
        running, self.running = self.running, None
        if running is not None:
            running.stop(signal.SIGTERM, timeout=30)


def binary(name: str, hint: str) -> str:
    for folder in ("/usr/sbin", "/usr/bin"):
        path = Path(folder) / name
        if os.access(path, os.X_OK):
            return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {hint}")
    return found


@pytest.fixture
def private_dir() -> Iterator[Path]:
    # Short: a Unix socket path must fit in 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="quartapp-svc-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_redis(private_dir: Path) -> Iterator[PrivateService]:
    port = free_port()
    command = [
        binary("redis-server", "run script/bootstrap"),
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(private_dir), "--unixsocket", "",
    ]  # fmt: skip
    service = PrivateService("redis", port, command, private_dir, lambda: port_open(port))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def private_mariadb(private_dir: Path) -> Iterator[PrivateService]:
    """A MariaDB of our own in a temporary data directory; root signs in without a password
    over TCP, as on the machine's own server."""
    hint = "run BOOTSTRAP_SERVERS=1 script/bootstrap"
    data = private_dir / "data"
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(  # noqa: S603 - a fixed command line
        [
            binary("mariadb-install-db", hint), "--no-defaults", f"--datadir={data}",
            "--auth-root-authentication-method=normal", "--skip-test-db",
            "--skip-name-resolve", *as_root,
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    command = [
        binary("mariadbd", hint), "--no-defaults", f"--datadir={data}", *as_root,
        f"--port={port}", "--bind-address=127.0.0.1", f"--socket={private_dir}/mysqld.sock",
        f"--pid-file={private_dir}/mysqld.pid", f"--log-error={private_dir}/mysqld.err",
        "--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--skip-log-bin",
    ]  # fmt: skip

    def ready() -> bool:
        with contextlib.suppress(pymysql.MySQLError):
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1).close()
            return True
        return False

    service = PrivateService("mariadb", port, command, private_dir, ready)
    service.start()
    yield service
    service.stop()


# --- readiness -----------------------------------------------------------------------


def readiness(server: AppServer) -> tuple[int, dict[str, str]]:
    """The status and what /readyz says of Redis and MySQL (the mail queue's report, which
    does not decide readiness, is left out)."""
    reply = Browser().get(server.url("/readyz"))
    body = json.loads(reply.text)
    return reply.status, {key: body[key] for key in ("status", "redis", "mysql")}


def test_readyz_is_503_while_redis_is_away_and_200_once_it_is_back(
    database: str, private_redis: PrivateService
) -> None:
    redis_url = f"redis://127.0.0.1:{private_redis.port}/0"
    with serve(
        database, "ready-redis", redis_url=redis_url, redis_prefix="quartapp-ready:", log_dir=LOGS
    ) as server:
        assert readiness(server) == (200, {"status": "ok", "redis": "ok", "mysql": "ok"})
        private_redis.stop()
        status, body = readiness(server)
        assert status == 503
        assert body["redis"].startswith("unavailable")
        assert body["mysql"] == "ok"
        assert status_of(server.port, "/healthz") == 200  # alive, only not ready
        private_redis.start()
        wait_until(lambda: readiness(server)[0] == 200, 10, "/readyz 200 after Redis is back")


# --- MySQL restarted under load ------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: str
    started: float  # time.monotonic(), when the first request of it was sent
    ended: float
    status: int  # of the last request; 0: no answer (an error or a timeout)
    seconds: float  # the last request's time
    right: bool  # the answer that kind of request should get


@dataclass
class Load:
    """Users of one instance, each in a loop: a signed-in page and a countdown poll, a
    sign-in, a sign-up and a readiness probe; every answer is kept."""

    base: str
    reader: Browser
    reader_email: str
    member_email: str
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, kind: str, call: Callable[[], Reply], right: Callable[[Reply], bool]) -> None:
        started = time.monotonic()
        try:
            reply = call()
        except (OSError, http.client.HTTPException):
            ended = time.monotonic()
            self.samples.append(Sample(kind, started, ended, 0, ended - started, False))
            return
        ended = time.monotonic()
        sample = Sample(kind, started, ended, reply.status, reply.seconds, right(reply))
        self.samples.append(sample)

    def user(self) -> None:
        base = self.base
        while not self.stop.is_set():
            self.record("home", lambda: self.reader.get(f"{base}/home"), self.home)
            self.record(
                "countdown",
                lambda: self.reader.get(f"{base}/session/countdown", **HTMX),
                live_countdown,
            )
            self.record("sign-in", lambda: Browser().sign_in(base, self.member_email), self.form)
            self.record("sign-up", lambda: Browser().sign_up(base, new_email()), self.form)
            self.record("readyz", lambda: Browser().get(f"{base}/readyz"), self.ready)

    def home(self, reply: Reply) -> bool:
        return shows_home(reply, self.reader_email)

    @staticmethod
    def form(reply: Reply) -> bool:
        if reply.status == 503:
            return "account database is not answering" in reply.text and bool(
                reply.headers.get("Retry-After")
            )
        return (reply.status, reply.location) == (303, "/home")

    @staticmethod
    def ready(reply: Reply) -> bool:
        return reply.status in (200, 503)

    def between(self, kind: str, start: float, end: float) -> list[Sample]:
        """The requests of ``kind`` that started and ended in [start, end)."""
        return [s for s in self.samples if s.kind == kind and start <= s.started and s.ended < end]

    def succeeded_after(self, moment: float) -> bool:
        kinds = {s.kind for s in self.samples if s.started >= moment and s.status in (200, 303)}
        return {"sign-in", "sign-up", "readyz"} <= kinds


def test_mysql_restart_under_load(private_mariadb: PrivateService) -> None:
    """MySQL stops (SIGTERM) and starts again while users keep going. Signed-in pages never
    notice; sign-ins and sign-ups answer 503 quickly while it is away, and work again
    once it is back, with nothing done to the app; /readyz follows along."""
    database_url = f"mysql://root:@127.0.0.1:{private_mariadb.port}/quartapp"
    migrate(database_url)
    with serve(database_url, "mysql-restart", log_dir=LOGS) as server:
        reader, reader_email = signed_up(server.base_url)
        _, member_email = signed_up(server.base_url)
        load = Load(server.base_url, reader, reader_email, member_email)
        users = [threading.Thread(target=load.user) for _ in range(2)]
        for thread in users:
            thread.start()
        try:
            time.sleep(1.0)
            stopping = time.monotonic()
            private_mariadb.stop()
            stopped = time.monotonic()
            time.sleep(2.0)
            starting = time.monotonic()
            private_mariadb.start()
            started = time.monotonic()
            wait_until(lambda: load.succeeded_after(started), 15, "sign-in and sign-up again")
            time.sleep(0.5)
        finally:
            load.stop.set()
            for thread in users:
                thread.join()
        assert server.running()

    samples = load.samples
    summary = Counter((s.kind, s.status) for s in samples)
    wrong = [s for s in samples if not s.right]
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:5]}; all: {summary}"
    slowest = max(samples, key=lambda s: s.seconds)
    assert slowest.seconds < HANG, slowest
    assert summary["home", 200]
    assert summary["countdown", 200]
    for kind in ("sign-in", "sign-up"):
        assert {s.status for s in load.between(kind, 0, stopping)} == {303}, summary
        assert {s.status for s in load.between(kind, stopped, starting)} == {503}, summary
    assert {s.status for s in load.between("readyz", stopped, starting)} == {503}, summary
    for kind in ("sign-in", "sign-up", "readyz"):
        after = [s.status for s in load.between(kind, started, float("inf"))]
        assert after, kind
        assert after[-1] in (200, 303), (kind, after)


def test_a_hung_mysql_gives_a_quick_503_and_no_mixed_up_answers(
    private_mariadb: PrivateService,
) -> None:
    """MySQL accepts connections but answers nothing (SIGSTOP). Each statement gives up
    after DATABASE_QUERY_TIMEOUT: sign-ins are a 503, not a request that waits forever,
    and when MySQL wakes up, no connection hands a late reply to the wrong request."""
    database_url = f"mysql://root:@127.0.0.1:{private_mariadb.port}/quartapp"
    migrate(database_url)
    with serve(database_url, "mysql-hung", log_dir=LOGS, DATABASE_QUERY_TIMEOUT=1) as server:
        base = server.base_url
        reader, reader_email = signed_up(base)
        others = [signed_up(base)[1] for _ in range(2)]
        private_mariadb.pause()
        try:
            for email in [*others, *others]:  # the pooled connections, then new ones
                reply = Browser().sign_in(base, email)
                assert Load.form(reply), reply.text[:300]
                assert reply.status == 503
                assert reply.seconds < 3
            assert Browser().sign_up(base, new_email()).status == 503
            assert readiness(server)[0] == 503
            assert shows_home(reader.get(f"{base}/home"), reader_email)
        finally:
            private_mariadb.resume()
        wait_until(lambda: Browser().sign_in(base, others[0]).status == 303, 10, "sign-in")
        for email in [*others, reader_email] * 3:
            browser = Browser()
            assert browser.sign_in(base, email).status == 303
            assert shows_home(browser.get(f"{base}/home"), email)
        assert readiness(server)[0] == 200


async def test_a_statement_cut_short_closes_its_connection(
    private_mariadb: PrivateService, make_app: Callable[..., Any]
) -> None:
    """The same in process, to look inside the pool: the connection of a statement that
    timed out is closed, not handed back to the pool, so the reply MySQL sends late can
    never be read as the answer to another statement."""
    database_url = f"mysql://root:@127.0.0.1:{private_mariadb.port}/quartapp"
    await asyncio.to_thread(migrate, database_url)
    app = await make_app(DATABASE_URL=database_url, DATABASE_QUERY_TIMEOUT=0.5)
    assert (await Auth(app.test_client()).sign_up()).status_code == 303
    pool = connections.get("default")._pool  # aiomysql's pool, for its free connections
    pooled = list(pool._free)
    assert pooled
    private_mariadb.pause()
    try:
        started = time.monotonic()
        response = await asyncio.wait_for(Auth(app.test_client()).sign_in(), HANG)
        assert response.status_code == 503
        assert time.monotonic() - started < 2
        assert pooled[-1].closed  # the one the sign-in took (the pool hands out the last)
        assert pooled[-1] not in pool._free
    finally:
        private_mariadb.resume()
    assert (await Auth(app.test_client()).sign_in()).status_code == 303

"""QUARTAPP_REDIS_URL alone picks the topology: one server, Sentinel, or Cluster.

The servers are real: ``tests/support/redis_servers.py`` starts Debian's redis-server on free
loopback ports for each test (or module) and kills them afterwards. The app is the real app
through Quart's test client; MySQL is the shared test database. Every request has a
deadline, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient
from redis.asyncio.sentinel import MasterNotFoundError, SlaveNotFoundError
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterCrossSlotError,
    ClusterDownError,
    ClusterError,
    CrossSlotTransactionError,
    DataError,
    MasterDownError,
    MaxConnectionsError,
    MovedError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quartapp import create_app
from quartapp.config import ConfigError
from quartapp.infra.redis_client import RedisTarget, RedisUrlError, parse_redis_url
from quartapp.web.errors import redis_unavailable

from .conftest import PASSWORD, csrf_from, session_cookie
from .support import redis_servers
from .support.redis_servers import Cluster, RedisServer, RedisServers

# Starts Sentinel and Cluster servers of its own: part of the normal run, left out of the
# second Python's (script/test).
pytestmark = pytest.mark.slow

HTMX = {"HX-Request": "true"}
JSON = {"Accept": "application/json"}
# No request may take longer than this, whatever Redis is doing (REDIS_TIMEOUT: 1 or 2 s).
DEADLINE = 5.0
NEW_PASSWORD = "a brand new passphrase"


def require_redis_server() -> None:
    """These tests run servers of their own; script/test installs the programs."""
    if not redis_servers.available():
        pytest.fail(
            f"needs {redis_servers.REDIS_SERVER} and {redis_servers.REDIS_CLI}: "
            "run script/bootstrap with BOOTSTRAP_SERVERS=1 (script/test does)"
        )


# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", RedisTarget("server", url="redis://127.0.0.1:6379/0")),
        ("rediss://u:p@cache:6380/2", RedisTarget("server", url="rediss://u:p@cache:6380/2")),
        ("unix:///run/redis.sock?db=1", RedisTarget("server", url="unix:///run/redis.sock?db=1")),
        (
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[::1]/mymaster",
            RedisTarget(
                "sentinel",
                nodes=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26379)),
                service="mymaster",
            ),
        ),
        (
            "redis+sentinel://app:s%40cret@s1,s2:5000/cache/3"
            "?sentinel_username=watch&sentinel_password=w%23tch",
            RedisTarget(
                "sentinel",
                nodes=(("s1", 26379), ("s2", 5000)),
                service="cache",
                db=3,
                username="app",
                password="s@cret",
                sentinel_username="watch",
                sentinel_password="w#tch",
            ),
        ),
        (
            "redis+sentinel://:only-a-password@s1:26379/mymaster/",
            RedisTarget(
                "sentinel", nodes=(("s1", 26379),), service="mymaster", password="only-a-password"
            ),
        ),
        (
            "redis+cluster://n1:7000,n2:7001,n3",
            RedisTarget("cluster", nodes=(("n1", 7000), ("n2", 7001), ("n3", 6379))),
        ),
        (
            "redis+cluster://user:pw@[2001:db8::1]:7000/0",
            RedisTarget("cluster", nodes=(("2001:db8::1", 7000),), username="user", password="pw"),
        ),
        ("REDIS+CLUSTER://n1:7000/", RedisTarget("cluster", nodes=(("n1", 7000),))),
        (
            "Redis+Sentinel://s1/m",
            RedisTarget("sentinel", nodes=(("s1", 26379),), service="m"),
        ),
    ],
)
def test_redis_urls(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "give a URL"),
        ("   ", "give a URL"),
        ("127.0.0.1:6379", "must start with redis://"),
        ("http://127.0.0.1:6379", "must start with redis://"),
        ("redis+tls://h:1", "must start with redis://"),
        ("redis://h:99999/0", "a port must be a number"),
        ("redis://h:six/0", "a port must be a number"),
        ("redis://h:6379/zero", "the database must be a number, not 'zero'"),
        ("redis://h:6379/0?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
        ("redis+sentinel://s1:26379", "needs the service name"),
        ("redis+sentinel://s1:26379/", "needs the service name"),
        ("redis+sentinel:///mymaster", "needs at least one host:port"),
        ("redis+sentinel://user:pw@/mymaster", "needs at least one host:port"),
        ("redis+sentinel://s1:0/mymaster", "a port must be a number"),
        ("redis+sentinel://s1:26379,/mymaster", "the hosts must be host:port"),
        ("redis+sentinel://s1 s2/mymaster", "the hosts must be host:port"),
        ("redis+sentinel://[::1/mymaster", "the hosts must be host:port"),
        ("redis+sentinel://s1/mymaster/one", "the database must be a number, not 'one'"),
        ("redis+sentinel://s1/mymaster/0/more", "the path is /service or /service/db"),
        ("redis+sentinel://s1/mymaster?password=x", "unknown option 'password'"),
        ("redis+sentinel://s1/mymaster#x", "'#' must be percent-encoded"),
        ("redis+cluster://", "needs at least one host:port"),
        ("redis+cluster://n1:7000/1", "Redis Cluster has only database 0"),
        ("redis+cluster://n1:7000?sentinel_password=x", "unknown option 'sentinel_password'"),
        ("redis+cluster://n1:7000,n2:port", "a port must be a number"),
    ],
)
def test_malformed_redis_urls_stop_start_up_with_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError, match=re.escape(message)):
        parse_redis_url(url)
    with pytest.raises(ConfigError) as stopped:
        create_app({"SECRET_KEY": "k" * 32, "REDIS_URL": url})
    text = str(stopped.value)
    assert text.startswith("QUARTAPP_REDIS_URL: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    "url",
    [
        "redis://:top/secret@h1:6379/0",  # a "/" in the password ends the host part early
        "redis+sentinel://u:top/secret@s1/mymaster",
        "redis+cluster://u:top@secret@n1:port",
        "redis+cluster://u:top,secret@n1:port",
    ],
)
def test_errors_never_repeat_a_password(url: str) -> None:
    with pytest.raises(ConfigError) as stopped:
        create_app({"SECRET_KEY": "k" * 32, "REDIS_URL": url})
    assert "top" not in str(stopped.value)
    assert "secret" not in str(stopped.value)


def test_a_target_hides_its_passwords() -> None:
    target = parse_redis_url("redis+sentinel://u:pw1@s1/m?sentinel_password=pw2")
    assert "pw1" not in repr(target)
    assert "pw2" not in repr(target)


# -- which errors mean "Redis is unavailable" -----------------------------------------------

UNAVAILABLE = [
    RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    RedisTimeoutError("Timeout reading from socket"),
    BusyLoadingError("Redis is loading the dataset in memory"),
    MaxConnectionsError("Too many connections"),
    MasterNotFoundError("No master found for 'mymaster'"),
    SlaveNotFoundError("No slave found for 'mymaster'"),
    ReadOnlyError("You can't write against a read only replica."),
    ClusterDownError("The cluster is down"),
    MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
    ClusterError("TTL exhausted."),
    TryAgainError("Multiple keys request during rehashing of slot"),
    MovedError("3999 127.0.0.1:7001"),
    AskError("3999 127.0.0.1:7001"),
    OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's unable to"),
    ResponseError("NOREPLICAS Not enough good replicas to write."),
    ResponseError("BUSY Redis is busy running a script."),
    SlotNotCoveredError('Slot "5" is not covered by the cluster.'),
    RedisClusterException("Redis Cluster cannot be connected. Please provide at least one"),
    RedisClusterException("All slots are not covered after query all startup_nodes."),
]
MISTAKES = [
    ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ResponseError("ERR Error running script (call to f_0123): @user_script:3: oops"),
    NoScriptError("No matching script. Please use EVAL."),
    DataError("Invalid input of type: 'dict'."),
    ClusterCrossSlotError("Keys in request don't hash to the same slot"),
    RedisClusterException("EVALSHA - all keys must map to the same key slot"),
    CrossSlotTransactionError("Cannot execute a transaction across slots"),
]


def _name(error: Exception) -> str:
    return f"{type(error).__name__}:{str(error)[:20]}"


@pytest.mark.parametrize("error", UNAVAILABLE, ids=_name)
def test_outages_are_unavailable(error: Exception) -> None:
    assert redis_unavailable(error)


@pytest.mark.parametrize("error", MISTAKES, ids=_name)
def test_mistakes_are_not_outages(error: Exception) -> None:
    assert not redis_unavailable(error)


@pytest.fixture
async def raising_app(make_app: Callable[..., Any]) -> Quart:
    """The app with one more route, which raises the error its index names."""
    app: Quart = await make_app()
    errors = [*UNAVAILABLE, *MISTAKES]

    async def fail(number: int) -> str:
        raise errors[number]

    app.add_url_rule("/test-only/fail/<int:number>", view_func=fail)
    return app


async def test_every_outage_is_a_clean_503_in_every_form(raising_app: Quart) -> None:
    client = raising_app.test_client()
    for number in range(len(UNAVAILABLE)):
        path = f"/test-only/fail/{number}"
        page = await client.get(path)
        assert page.status_code == 503, UNAVAILABLE[number]
        assert page.headers["Retry-After"] == "5"
        assert "The session service is not answering" in await page.get_data(as_text=True)
        fragment = await client.get(path, headers=HTMX)
        assert fragment.status_code == 503
        assert "<html" not in await fragment.get_data(as_text=True)
        api = await client.get(path, headers=JSON)
        assert api.status_code == 503
        assert "session service" in (await api.get_json())["message"]


async def test_mistakes_stay_500s(raising_app: Quart) -> None:
    client = raising_app.test_client()
    for number in range(len(UNAVAILABLE), len(UNAVAILABLE) + len(MISTAKES)):
        response = await client.get(f"/test-only/fail/{number}", headers=JSON)
        assert response.status_code == 500


# -- helpers ------------------------------------------------------------------------------


@dataclass
class Browser:
    """One browser: a test client with its own cookies, address and deadline."""

    app: Quart
    email: str
    peer: str = "198.51.100.7"
    client: QuartClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    @property
    def scope(self) -> dict[str, Any]:
        return {"client": (self.peer, 50000)}

    async def get(self, path: str, **headers: str) -> Any:
        request = self.client.get(path, headers=headers, scope_base=self.scope)
        return await asyncio.wait_for(request, DEADLINE)

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, page: str, **headers: str
    ) -> Any:
        """POST as the form on ``page`` would, with its CSRF token."""
        token = await asyncio.wait_for(csrf_from(self.client, page), DEADLINE)
        request = self.client.post(
            path,
            form={**(data or {}), "csrf_token": token},
            headers=headers,
            scope_base=self.scope,
        )
        return await asyncio.wait_for(request, DEADLINE)

    async def sign_up(self) -> Any:
        return await self.post(
            "/api/v1/signup", {"email": self.email, "password": PASSWORD}, page="/register"
        )

    async def sign_in(self, password: str = PASSWORD) -> Any:
        return await self.post(
            "/api/v1/signin", {"email": self.email, "password": password}, page="/"
        )

    async def home_status(self) -> int:
        response = await self.get("/home")
        if response.status_code == 200:
            assert self.email in await response.get_data(as_text=True)
        return int(response.status_code)

    async def sessions(self) -> list[dict[str, Any]]:
        response = await self.get("/sessions", **JSON)
        assert response.status_code == 200, await response.get_data(as_text=True)
        sessions: list[dict[str, Any]] = (await response.get_json())["sessions"]
        return sessions

    async def public_id(self) -> str:
        (current,) = [entry for entry in await self.sessions() if entry["current"]]
        return str(current["id"])


async def signed_up(app: Quart, email: str, **options: Any) -> Browser:
    browser = Browser(app, email, **options)
    response = await browser.sign_up()
    assert response.status_code == 303, await response.get_data(as_text=True)
    return browser


async def signed_in(app: Quart, email: str, **options: Any) -> Browser:
    browser = Browser(app, email, **options)
    response = await browser.sign_in()
    assert response.status_code == 303, await response.get_data(as_text=True)
    return browser


@pytest.fixture
def servers() -> Iterator[RedisServers]:
    require_redis_server()
    with RedisServers() as started:
        yield started


# -- one server: a read-only replica, a restart -------------------------------------------


def replicated(master: RedisServer, replica: RedisServer) -> None:
    """Until ``replica`` holds everything ``master`` had written when this was called.

    (WAIT would not tell: on a connection of its own it waits only for that connection's
    writes, which are none.)"""
    written = int(master.info("replication")["master_repl_offset"])

    def caught_up() -> bool | None:
        return int(replica.info("replication").get("slave_repl_offset", -1)) >= written or None

    redis_servers.wait_for(f"{replica.name} to catch up with {master.name}", caught_up, 5)


async def test_a_read_only_replica_answers_503_for_writes(
    servers: RedisServers, make_app: Callable[..., Any]
) -> None:
    primary = servers.standalone("primary")
    replica = servers.standalone("replica", replica_of=primary)
    app: Quart = await make_app(REDIS_URL=primary.url, REDIS_TIMEOUT=1)
    on_replica: Quart = await make_app(REDIS_URL=replica.url, REDIS_TIMEOUT=1)
    ada = await signed_up(app, "ada@example.com")
    replicated(primary, replica)

    # The same browser, through an app that was pointed at the replica by mistake.
    mirror = Browser(on_replica, ada.email)
    mirror.client.set_cookie("localhost", "quartapp_session", session_cookie(ada.client) or "")
    assert (await mirror.get("/home")).status_code == 503  # a page slides the deadline
    assert (await mirror.get("/home", **JSON)).status_code == 503
    assert (await mirror.get("/session/countdown", **HTMX)).status_code == 200  # reads only
    grace = Browser(on_replica, "grace@example.com")
    assert (await grace.sign_up()).status_code == 503
    assert (await ada.get("/home")).status_code == 200


async def test_a_restarted_redis_keeps_its_sessions_and_the_app_recovers(
    servers: RedisServers, make_app: Callable[..., Any]
) -> None:
    # Loading its data takes the restarted server about a second (a delay per key, and
    # clients are answered "LOADING" meanwhile), so the test sees that state too.
    server = servers.standalone(
        persistent=True,
        extra=["key-load-delay 300", "loading-process-events-interval-bytes 1024"],
    )
    server.command("DEBUG", "POPULATE", 3000, "filler", 8)
    app: Quart = await make_app(REDIS_URL=server.url, REDIS_TIMEOUT=1)
    ada = await signed_up(app, "ada@example.com")
    ada_phone = await signed_in(app, "ada@example.com")
    bob = await signed_up(app, "bob@example.com")
    browsers = [ada, ada_phone, bob]
    assert [await browser.home_status() for browser in browsers] == [200, 200, 200]

    await asyncio.to_thread(server.stop)  # a normal shutdown: the data is saved
    visitor = Browser(app, "ada@example.com")
    for browser in browsers:
        assert (await browser.get("/home")).status_code == 503
        assert (await browser.get("/session/countdown", **HTMX)).status_code == 503
        assert (await browser.get("/sessions", **JSON)).status_code == 503
    assert (await visitor.sign_in()).status_code == 503
    assert (await ada.get("/readyz")).status_code == 503

    await asyncio.to_thread(server.start, loading_ok=True)
    seen_while_loading: set[int] = set()
    deadline = time.monotonic() + 30
    while server.info("persistence")["loading"] == 1:
        seen_while_loading.add(await ada.home_status())
        assert time.monotonic() < deadline, "the server never finished loading"
        await asyncio.sleep(0.05)
    assert 503 in seen_while_loading
    assert seen_while_loading <= {200, 503}

    # No manual step: the same sessions work, with the same app and the same clients.
    assert [await browser.home_status() for browser in browsers] == [200, 200, 200]
    assert len(await ada.sessions()) == 2
    assert (await ada.get("/session/countdown", **HTMX)).status_code == 200
    assert (await visitor.sign_in()).status_code == 303
    assert (await ada.get("/readyz")).status_code == 200


# -- Sentinel -----------------------------------------------------------------------------


@dataclass
class Outcome:
    what: str
    status: int | None  # None: no answer within DEADLINE
    started: float
    took: float


@dataclass
class Load:
    """Requests in a loop, as browsers would send them, recording every answer."""

    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def timed(self, what: str, request: Any) -> Outcome:
        started = time.monotonic()
        try:
            response = await asyncio.wait_for(request, DEADLINE)
            status: int | None = response.status_code
        except TimeoutError:
            status = None
        outcome = Outcome(what, status, started, time.monotonic() - started)
        self.outcomes.append(outcome)
        return outcome

    def run(self, loop: Callable[[], Any]) -> None:
        async def forever() -> None:
            while not self.stop.is_set():
                await loop()
                await asyncio.sleep(0.05)

        self.tasks.append(asyncio.create_task(forever()))

    def browse(self, browser: Browser) -> None:
        async def once() -> None:
            await self.timed("page", browser.get("/home"))
            await self.timed("poll", browser.get("/session/countdown", **HTMX))

        self.run(once)

    def sign_in_and_check_readiness(
        self, app: Quart, emails: list[str]
    ) -> list[tuple[Browser, Outcome]]:
        """Sign-ins through the form in a loop, to ``emails`` in turn, and /readyz in
        another; returns the list the sign-ins (a new browser each) are added to."""
        newcomers: list[tuple[Browser, Outcome]] = []

        async def sign_in_someone() -> None:
            newcomer = Browser(app, emails[len(newcomers) % len(emails)])
            token = await asyncio.wait_for(csrf_from(newcomer.client, "/"), DEADLINE)
            form = {"email": newcomer.email, "password": PASSWORD, "csrf_token": token}
            posted = newcomer.client.post("/api/v1/signin", form=form)
            newcomers.append((newcomer, await self.timed("sign-in", posted)))
            await asyncio.sleep(0.2)

        self.run(sign_in_someone)
        self.run(lambda: self.timed("ready", Browser(app, "").get("/readyz")))
        return newcomers

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if start <= outcome.started < end]

    def assert_clean_until(self, killed_at: float) -> None:
        """Only answers of a working app or of an outage (no 500, none past the deadline),
        and only working ones before ``killed_at``."""
        statuses: dict[str, set[int | None]] = {}
        for outcome in self.outcomes:
            statuses.setdefault(outcome.what, set()).add(outcome.status)
        assert statuses["page"] <= {200, 503}
        assert statuses["poll"] <= {200, 503}
        assert statuses["sign-in"] <= {303, 503}
        assert statuses["ready"] <= {200, 503}
        slowest = max(self.outcomes, key=lambda outcome: outcome.took)
        assert slowest.took < DEADLINE, slowest
        before = {outcome.status for outcome in self.between(0, killed_at - 0.2)}
        assert 200 in before
        assert before <= {200, 303}


# How soon after Sentinel names the new master every request must find it: a second on a
# quiet machine; a busy 2-core CI host once needed more (a 503 at 1.x s).
SETTLE_SECONDS = 3


async def test_sentinel_failover_503s_then_follows_the_new_master(
    servers: RedisServers, make_app: Callable[..., Any]
) -> None:
    sentinel = servers.sentinel()
    old_master = sentinel.current_master()
    app: Quart = await make_app(REDIS_URL=sentinel.url, REDIS_TIMEOUT=2, REDIS_MAX_CONNECTIONS=4)
    assert (await Browser(app, "").get("/readyz")).status_code == 200

    emails = ["ada@example.com", "bob@example.com", "cy@example.com"]
    browsers = [await signed_up(app, email) for email in emails]
    browsers += [await signed_in(app, email) for email in emails]
    for browser in browsers:
        assert await browser.home_status() == 200
        assert (await browser.get("/session/countdown", **HTMX)).status_code == 200
    assert len(await browsers[0].sessions()) == 2

    # Far more requests at once than connections: they wait their turn, none fails.
    burst = await asyncio.gather(
        *(browser.get("/session/countdown", **HTMX) for browser in browsers * 4),
        *(browser.get("/home") for browser in browsers * 2),
    )
    assert {response.status_code for response in burst} == {200}

    # Every session so far is on the replica, so it must survive the failover.
    replicated(old_master, sentinel.replica)

    load = Load()
    for browser in browsers:
        load.browse(browser)
    newcomers = load.sign_in_and_check_readiness(app, emails)

    await asyncio.sleep(1)
    killed_at = time.monotonic()
    old_master.kill()
    new_master = await asyncio.to_thread(sentinel.wait_for_failover, old_master, 30)
    switched_at = time.monotonic()
    assert new_master is sentinel.replica
    await asyncio.sleep(SETTLE_SECONDS + 2)
    await load.finish()

    load.assert_clean_until(killed_at)
    during = load.between(killed_at, switched_at)
    assert 503 in {outcome.status for outcome in during}, "no request saw the outage"
    # The app follows the new master by itself, soon after the switch.
    settled = load.between(switched_at + SETTLE_SECONDS, float("inf"))
    assert settled
    assert {outcome.status for outcome in settled} <= {200, 303}, settled

    # Every session made before the WAIT works, and every session the new master holds
    # (what each user's list shows: the list drops sessions whose record is gone) belongs
    # to a browser that is signed in with it, but for sign-ins that answered 503: one of
    # those may have written its session before the master died with its reply unsent.
    for browser in browsers:
        assert await browser.home_status() == 200
        assert (await browser.get("/session/countdown", **HTMX)).status_code == 200
    working: dict[str, set[str]] = {email: set() for email in emails}
    for browser in [*browsers, *(newcomer for newcomer, _ in newcomers)]:
        if await browser.home_status() == 200:
            working[browser.email].add(await browser.public_id())
    for email in emails:
        owner = next(browser for browser in browsers if browser.email == email)
        listed = {entry["id"] for entry in await owner.sessions()}
        refused = sum(
            1 for browser, outcome in newcomers if browser.email == email and outcome.status == 503
        )
        assert working[email] <= listed
        assert len(listed - working[email]) <= refused, (listed - working[email], refused)
    assert (await Browser(app, "").get("/readyz")).status_code == 200
    assert (await signed_in(app, emails[0])).email == emails[0]


async def test_sentinel_with_passwords(servers: RedisServers, make_app: Callable[..., Any]) -> None:
    sentinel = servers.sentinel(password="data pass/1", sentinel_password="watch#pass")
    hosts = sentinel.url.split("://", 1)[1]
    url = f"redis+sentinel://:data%20pass%2F1@{hosts}?sentinel_password=watch%23pass"
    app: Quart = await make_app(REDIS_URL=url, REDIS_TIMEOUT=1)
    assert (await Browser(app, "").get("/readyz")).status_code == 200
    ada = await signed_up(app, "ada@example.com")
    assert await ada.home_status() == 200
    assert len(await ada.sessions()) == 1

    # A wrong password for the data nodes is an outage to the app, not a crash.
    wrong: Quart = await make_app(
        REDIS_URL=url.replace("data%20pass", "wrong%20pass"), REDIS_TIMEOUT=1
    )
    mirror = Browser(wrong, ada.email)
    mirror.client.set_cookie("localhost", "quartapp_session", session_cookie(ada.client) or "")
    assert (await mirror.get("/home")).status_code == 503
    assert (await Browser(wrong, "").get("/readyz")).status_code == 503
    # And the Sentinels' own password is needed to ask them anything.
    unasked: Quart = await make_app(REDIS_URL=url.partition("?")[0], REDIS_TIMEOUT=1)
    assert (await Browser(unasked, "").get("/readyz")).status_code == 503


# -- Cluster ------------------------------------------------------------------------------

THROTTLED = {
    "THROTTLE_SIGN_IN_PER_ACCOUNT_IP": [3, 60],
    "THROTTLE_SIGN_IN_PER_IP": [100, 60],
    "THROTTLE_SIGN_IN_PER_ACCOUNT": [100, 60],
    "THROTTLE_SIGN_UP_PER_IP": [500, 60],
}


def throttle_keys(keys: list[str]) -> set[str]:
    return {key for key in keys if "{throttle}" in key}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_redis_server()
    with RedisServers() as started:
        yield started.cluster(masters=3)


@pytest.fixture
async def on_cluster(cluster: Cluster, make_app: Callable[..., Any]) -> Quart:
    app: Quart = await make_app(REDIS_URL=cluster.url, REDIS_TIMEOUT=1, **THROTTLED)
    return app


async def test_cluster_is_ready_and_spreads_sessions_over_the_masters(
    cluster: Cluster, on_cluster: Quart, redis_prefix: str
) -> None:
    ready = await Browser(on_cluster, "", peer="127.0.0.1").get("/readyz")  # the details
    assert ready.status_code == 200
    assert (await ready.get_json())["redis"] == "ok"
    # Users are signed up until their sessions sit on more than one master (sessions of
    # users who share a hash tag share a slot, so this may take a few dozen users).
    users = 0
    while True:
        batch = [f"user{users + n}@example.com" for n in range(8)]
        browsers = await asyncio.gather(*(signed_up(on_cluster, email) for email in batch))
        users += len(batch)
        for browser in browsers[:2]:
            assert await browser.home_status() == 200
        keys = cluster.keys_by_master(f"{redis_prefix}*")
        # (The throttle's keys all share one slot on purpose; they do not count here.)
        holding = [port for port, found in keys.items() if set(found) - throttle_keys(found)]
        if len(holding) > 1:
            break
        assert users < 200, f"{users} users' sessions all sit on one master: {keys}"


async def test_cluster_sign_up_in_home_countdown_and_sign_out(on_cluster: Quart) -> None:
    ada = await signed_up(on_cluster, "ada@example.com")
    assert await ada.home_status() == 200
    poll = await ada.get("/session/countdown", **HTMX)
    assert poll.status_code == 200
    assert "<html" not in await poll.get_data(as_text=True)
    assert (await ada.get("/session/countdown", **JSON)).status_code == 200
    assert (await ada.post("/session/extend", page="/home", **HTMX)).status_code == 200

    phone = await signed_in(on_cluster, "ada@example.com")
    assert await phone.home_status() == 200
    response = await phone.post("/logout", page="/home")
    assert response.status_code == 303
    assert await phone.home_status() == 303
    assert await ada.home_status() == 200
    again = await phone.sign_in()
    assert again.status_code == 303
    assert await phone.home_status() == 200


def cluster_calls(cluster: Cluster) -> dict[str, int]:
    """Commands run on all masters since their last RESETSTAT, by name."""
    calls: dict[str, int] = {}
    for node in cluster.masters:
        for name, stats in node.command("INFO", "commandstats").items():
            command = name.removeprefix("cmdstat_")
            calls[command] = calls.get(command, 0) + int(stats["calls"])
    return calls


async def test_cluster_keeps_the_budget_of_one_round_trip_per_request(
    cluster: Cluster, on_cluster: Quart
) -> None:
    """A signed-in page and a countdown poll are one script on one node, as on one server."""
    ada = await signed_up(on_cluster, "ada@example.com")
    for _ in range(2):  # the scripts are loaded on the session's node
        assert await ada.home_status() == 200
        assert (await ada.get("/session/countdown", **HTMX)).status_code == 200
    for node in cluster.masters:
        node.command("CONFIG", "RESETSTAT")
    for _ in range(10):
        assert await ada.home_status() == 200
        assert (await ada.get("/session/countdown", **HTMX)).status_code == 200
    calls = cluster_calls(cluster)
    for own in ("config|resetstat", "info", "hello"):  # this test's own connections
        calls.pop(own, None)
    # One EVALSHA per request; commandstats also counts what each script runs inside.
    assert calls.pop("evalsha") == 20
    assert calls.pop("get") == 20
    assert set(calls) <= {"time", "pttl", "pexpireat", "set"}


async def test_cluster_sessions_listing_and_revoking(on_cluster: Quart) -> None:
    ada = await signed_up(on_cluster, "ada@example.com")
    laptop = await signed_in(on_cluster, "ada@example.com")
    phone = await signed_in(on_cluster, "ada@example.com")
    tablet = await signed_in(on_cluster, "ada@example.com")
    bob = await signed_up(on_cluster, "bob@example.com")
    listed = await ada.sessions()
    assert len(listed) == 4
    assert {entry["id"] for entry in listed} == {
        await device.public_id() for device in (ada, laptop, phone, tablet)
    }
    page = await ada.get("/sessions")
    assert page.status_code == 200
    assert (await page.get_data(as_text=True)).count("<tr data-session=") == 4

    # Ending one session kills its cookie; another user's session is not found.
    response = await ada.post(f"/sessions/{await laptop.public_id()}/revoke", page="/sessions")
    assert response.status_code == 303
    assert await laptop.home_status() == 303
    assert len(await ada.sessions()) == 3
    theirs = await ada.post(f"/sessions/{await bob.public_id()}/revoke", page="/sessions")
    assert theirs.status_code == 404
    assert await bob.home_status() == 200

    # Sign out everywhere else.
    response = await ada.post("/sessions/revoke-others", page="/sessions")
    assert response.status_code == 303
    assert await phone.home_status() == 303
    assert await tablet.home_status() == 303
    assert await ada.home_status() == 200
    assert [entry["current"] for entry in await ada.sessions()] == [True]
    assert await bob.home_status() == 200


async def test_cluster_password_change(on_cluster: Quart) -> None:
    ada = await signed_up(on_cluster, "ada@example.com")
    laptop = await signed_in(on_cluster, "ada@example.com")
    old_cookie = session_cookie(ada.client)
    response = await ada.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        page="/account/password",
    )
    assert response.status_code == 303
    assert session_cookie(ada.client) not in (None, old_cookie)
    assert await ada.home_status() == 200
    assert await laptop.home_status() == 303
    assert len(await ada.sessions()) == 1
    assert (await Browser(on_cluster, ada.email).sign_in()).status_code == 401
    assert (await Browser(on_cluster, ada.email).sign_in(NEW_PASSWORD)).status_code == 303


async def test_cluster_account_deletion(on_cluster: Quart) -> None:
    ada = await signed_up(on_cluster, "ada@example.com")
    laptop = await signed_in(on_cluster, "ada@example.com")
    bob = await signed_up(on_cluster, "bob@example.com")
    response = await ada.post("/account/delete", {"password": PASSWORD}, page="/account/delete")
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/deleted"
    assert await ada.home_status() == 303
    assert await laptop.home_status() == 303
    assert await bob.home_status() == 200
    assert (await Browser(on_cluster, ada.email).sign_in()).status_code == 401


async def test_cluster_throttles_sign_ins(on_cluster: Quart) -> None:
    await signed_up(on_cluster, "ada@example.com")
    guesser = Browser(on_cluster, "ada@example.com", peer="203.0.113.9")
    for _ in range(3):
        assert (await guesser.sign_in("wrong password")).status_code == 401
    refused = await guesser.sign_in()
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    # The owner, from the address they signed up from, still gets in.
    assert (await Browser(on_cluster, "ada@example.com").sign_in()).status_code == 303


async def test_cluster_requests_wait_for_a_free_connection(
    cluster: Cluster, make_app: Callable[..., Any]
) -> None:
    app: Quart = await make_app(REDIS_URL=cluster.url, REDIS_TIMEOUT=2, REDIS_MAX_CONNECTIONS=2)
    browsers = [await signed_up(app, f"user{n}@example.com") for n in range(3)]
    burst = await asyncio.gather(
        *(browser.get("/session/countdown", **HTMX) for browser in browsers * 8),
        *(browser.get("/home") for browser in browsers * 4),
    )
    assert {response.status_code for response in burst} == {200}


async def test_cluster_master_down_is_503_and_the_app_recovers(
    servers: RedisServers, make_app: Callable[..., Any]
) -> None:
    cluster = servers.cluster(masters=3, node_timeout_ms=1000)
    app: Quart = await make_app(REDIS_URL=cluster.url, REDIS_TIMEOUT=1)
    browsers = [await signed_up(app, f"user{n}@example.com") for n in range(3)]
    victim: RedisServer = cluster.masters[0]
    victim.kill()
    # First the node refuses connections, then (after the node timeout) the others call
    # the cluster down: both are 503s, never a 500, never a hang.
    seen: set[int] = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for browser in browsers:
            seen.add(await browser.home_status())
        survivors = [node.command("CLUSTER", "INFO") for node in cluster.masters[1:]]
        if all("cluster_state:fail" in state for state in survivors) and 503 in seen:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"the cluster was never seen down: {seen}")
    assert seen <= {200, 503}
    for browser in browsers:
        assert await browser.home_status() == 503
    assert (await Browser(app, "").get("/readyz")).status_code == 503
    assert (await Browser(app, "someone@example.com").sign_up()).status_code == 503

    await asyncio.to_thread(victim.start)
    await asyncio.to_thread(cluster.wait_until_settled)
    deadline = time.monotonic() + 10
    while (await Browser(app, "").get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "the app never saw the cluster back"
        await asyncio.sleep(0.1)
    # The restarted node kept nothing, so its sessions are gone (signed out, not a 500).
    assert {await browser.home_status() for browser in browsers} <= {200, 303}
    assert await (await signed_up(app, "later@example.com")).home_status() == 200


def replica_of(cluster: Cluster, master: RedisServer) -> RedisServer:
    (replica,) = [
        node for node in cluster.replicas if node.info("replication")["master_port"] == master.port
    ]
    return replica


def replicas_caught_up(cluster: Cluster) -> None:
    """Until every replica holds everything its master had written when this was called."""
    for master in cluster.masters:
        replicated(master, replica_of(cluster, master))


def took_over(cluster: Cluster, old: RedisServer, replica: RedisServer) -> bool | None:
    """Whether ``replica`` is a master now and every running node calls the cluster ok."""
    if replica.info("replication")["role"] != "master":
        return None
    running = [node for node in cluster.nodes if node is not old]
    if all("cluster_state:ok" in node.command("CLUSTER", "INFO") for node in running):
        return True
    return None


async def test_cluster_failover_to_a_replica_under_load(
    servers: RedisServers, make_app: Callable[..., Any], redis_prefix: str
) -> None:
    cluster = servers.cluster(masters=3, replicas_per_master=1, node_timeout_ms=1000)
    app: Quart = await make_app(REDIS_URL=cluster.url, REDIS_TIMEOUT=1)

    # Users are signed up, many at once, until their sessions sit on more than one master
    # (16 users share a bucket, and so a slot).
    browsers: list[Browser] = []
    while True:
        batch = [f"user{len(browsers) + n}@example.com" for n in range(16)]
        browsers += await asyncio.gather(*(signed_up(app, email) for email in batch))
        records = cluster.keys_by_master(f"{redis_prefix}{{*}}s:*")
        if sum(1 for found in records.values() if found) > 1:
            break
        assert len(browsers) < 160, f"{len(browsers)} users' sessions all sit on one master"
    record_of: dict[str, tuple[int, str]] = {}  # email: the master's port, the record's key
    for browser in browsers:
        suffix = f"}}s:{await browser.public_id()}"
        (record_of[browser.email],) = [
            (port, key) for port, found in records.items() for key in found if suffix in key
        ]
    victim = next(node for node in cluster.masters if node.port in dict(record_of.values()))
    replica = replica_of(cluster, victim)
    on_victim = [browser for browser in browsers if record_of[browser.email][0] == victim.port]
    elsewhere = [browser for browser in browsers if record_of[browser.email][0] != victim.port]
    assert on_victim
    assert elsewhere

    # Every session so far is on its master's replica, so it must survive the failover.
    await asyncio.to_thread(replicas_caught_up, cluster)

    load = Load()
    watched = {"victim": on_victim[:3], "elsewhere": elsewhere[:3]}
    outcomes_of: dict[str, list[Outcome]] = {side: [] for side in watched}

    def browse(side: str, browser: Browser) -> None:
        async def once() -> None:
            outcomes_of[side].append(await load.timed("page", browser.get("/home")))
            poll = browser.get("/session/countdown", **HTMX)
            outcomes_of[side].append(await load.timed("poll", poll))

        load.run(once)

    for side, chosen in watched.items():
        for browser in chosen:
            browse(side, browser)
    # Every 7th browser's account in turn, so sign-ins reach every master.
    order = [browsers[n * 7 % len(browsers)].email for n in range(len(browsers))]
    newcomers = load.sign_in_and_check_readiness(app, order)

    await asyncio.sleep(1)
    killed_at = time.monotonic()
    victim.kill()
    await asyncio.to_thread(
        redis_servers.wait_for,
        f"{replica.name} to take over from {victim.name}",
        lambda: took_over(cluster, victim, replica),
        15,
    )
    switched_at = time.monotonic()
    await asyncio.sleep(2)
    await load.finish()

    load.assert_clean_until(killed_at)

    def during(side: str) -> set[int | None]:
        return {o.status for o in outcomes_of[side] if killed_at <= o.started < switched_at}

    # The failed master's sessions get 503s until its replica takes over. The others keep
    # working, except while the cluster calls itself down: from the moment the failure is
    # agreed on until the election ends.
    assert 503 in during("victim"), "no request saw the outage"
    assert 200 in during("elsewhere")
    # The app follows the promoted replica by itself, at the latest a second after it.
    settled = load.between(switched_at + 1, float("inf"))
    assert settled
    assert {outcome.status for outcome in settled} <= {200, 303}, settled

    # The replica took over the failed master's sessions, and every session made before the
    # replicas caught up works, whichever master held it.
    with replica.client() as client:
        assert all(client.exists(record_of[browser.email][1]) for browser in on_victim)
    for browser in browsers:
        assert await browser.home_status() == 200, browser.email
    for browser in [*on_victim[:3], *elsewhere[:3]]:
        assert (await browser.get("/session/countdown", **HTMX)).status_code == 200
    # A sign-in that reached the failed master just before it died may be lost with it:
    # that browser is signed out, never shown an error.
    for newcomer, outcome in newcomers:
        if outcome.status == 303:
            assert await newcomer.home_status() in {200, 303}
    assert (await Browser(app, "").get("/readyz")).status_code == 200
    for browser in (on_victim[0], elsewhere[0]):
        assert await (await signed_in(app, browser.email)).home_status() == 200
    assert await (await signed_up(app, "later@example.com")).home_status() == 200


async def test_a_cluster_connection_closed_under_a_command_is_a_dropped_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """redis-py's cluster client closes nodes' connections when it rebuilds its map, also
    ones another command is about to use. Not written yet: sent once more. Maybe written:
    a dropped connection (a 503), never an AttributeError (a 500)."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    from quartapp.engine.redis_topologies import BoundedRedisCluster

    client = BoundedRedisCluster(wait=1, startup_nodes=[ClusterNode("127.0.0.1", 1)])
    failures: list[str] = []
    calls = 0

    async def nothing() -> None:
        return None

    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if failures:
            raise AttributeError(f"'NoneType' object has no attribute '{failures.pop(0)}'")
        return "answer"

    monkeypatch.setattr(client, "initialize", nothing)
    monkeypatch.setattr(RedisCluster, "execute_command", execute)
    failures[:] = ["writelines"]
    assert await client.execute_command("GET", "k") == "answer"
    assert calls == 2
    failures[:] = ["writelines", "writelines"]
    with pytest.raises(RedisConnectionError):
        await client.execute_command("GET", "k")
    failures[:] = ["readline"]
    calls = 0
    with pytest.raises(RedisConnectionError):
        await client.execute_command("EVALSHA", "sha", 0)
    assert calls == 1  # it may have run: not sent again
    monkeypatch.setattr(
        RedisCluster, "execute_command", lambda *a, **k: (_ for _ in ()).throw(AttributeError("x"))
    )
    with pytest.raises(AttributeError):  # any other AttributeError is a bug, and stays one
        await client.execute_command("GET", "k")

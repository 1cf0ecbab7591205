"""Fixtures: a fresh app per test against real Redis and MariaDB, isolated per test.

Each test gets its own Redis key prefix (its keys are deleted afterwards) and an empty
``users`` table in a test database that the migrations build once per run.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomysql
import pytest
from quart import Quart
from quart.testing import QuartClient
from redis.asyncio import Redis

from quartapp import create_app
from quartapp.infra.database import database_name, migrate

from .support.http import CSRF_FIELD
from .support.mail_servers import MailCatcher, start_worker
from .support.processes import Process
from .support.settings import DATABASE_URL, PASSWORD, PUBLIC_URL, REDIS_URL

THROTTLE_RULES = (
    "THROTTLE_SIGN_IN_PER_ACCOUNT_IP",
    "THROTTLE_SIGN_IN_PER_IP",
    "THROTTLE_SIGN_IN_PER_ACCOUNT",
    "THROTTLE_SIGN_UP_PER_IP",
    "THROTTLE_PASSWORD_CHECK_PER_SESSION",
    "THROTTLE_PASSWORD_CHECK_PER_ACCOUNT",
    "THROTTLE_PASSWORD_STRENGTH_PER_IP",
    "THROTTLE_PASSWORD_STRENGTH_PER_ACCOUNT",
    "THROTTLE_PASSWORD_RESET_PER_IP",
    "THROTTLE_PASSWORD_RESET_PER_ADDRESS",
    "THROTTLE_PASSWORD_RESET_PER_ADDRESS_IP",
    "THROTTLE_VERIFICATION_MAIL_PER_ACCOUNT",
    "THROTTLE_EMAIL_CHANGE_PER_ACCOUNT",
    "THROTTLE_EMAIL_CHANGE_PER_ADDRESS",
    "THROTTLE_MAIL_PER_RECIPIENT",
    "THROTTLE_PASSKEY_OPTIONS_PER_IP",
)


async def _mysql(url: str, *, select_db: bool = True) -> aiomysql.Connection:
    parts = urlsplit(url)
    return await aiomysql.connect(
        db=database_name(url) if select_db else None,
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        autocommit=True,
    )


async def drop_database(url: str) -> None:
    conn = await _mysql(url, select_db=False)
    async with conn.cursor() as cursor:
        with warnings.catch_warnings():  # MariaDB notes that the database did not exist
            warnings.simplefilter("ignore")
            await cursor.execute(f"DROP DATABASE IF EXISTS `{database_name(url)}`")
    conn.close()


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[str]:
    """A test database built from scratch by the committed migrations, and dropped at the
    end of the run (its name is the run's own unless QUARTAPP_TEST_DATABASE_URL names one:
    tests/support/settings.py)."""
    await drop_database(DATABASE_URL)
    await migrate(DATABASE_URL)
    yield DATABASE_URL
    await drop_database(DATABASE_URL)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def raw_redis() -> AsyncIterator[Redis]:
    """A client that hands values back as bytes, for reading session records as stored."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


SECRET_KEY = "test secret key, not for production"


def test_config(database: str, prefix: str, **overrides: Any) -> dict[str, Any]:
    return {
        "ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "COOKIE_SECURE": False,
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "BCRYPT_ROUNDS": 4,
        # Links in mails start here; mail goes to a server the mail tests start (nothing
        # listens on this port otherwise, and no test without a worker sends anything).
        "PUBLIC_URL": PUBLIC_URL,
        "MAIL_URL": "smtp://127.0.0.1:9",
        "MAIL_FROM": "quartapp <no-reply@quartapp.test>",
        "MAIL_REDIS_URL": REDIS_URL,
        # Tests sign in and fail far more often than people do; tests/test_throttle_routes.py
        # turns the limits on.
        **dict.fromkeys(THROTTLE_RULES),
        **overrides,
    }


@pytest.fixture
def redis_prefix() -> str:
    return f"quartapp-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test config overrides; a test overrides this fixture or uses ``make_app``."""
    return {}


@pytest.fixture
async def make_app(
    database: str, redis: Redis, redis_prefix: str
) -> AsyncIterator[Callable[..., Any]]:
    """Start apps with extra settings; all of them share this test's Redis prefix."""
    started: list[Any] = []

    async def start(**overrides: Any) -> Quart:
        app = create_app(test_config(database, redis_prefix, **overrides))
        context = app.test_app()
        await context.__aenter__()
        started.append(context)
        return app

    yield start
    for context in reversed(started):
        await context.__aexit__(None, None, None)
    async for key in redis.scan_iter(match=f"{redis_prefix}*", count=1000):
        await redis.delete(key)
    conn = await _mysql(database)
    async with conn.cursor() as cursor:
        await cursor.execute("DELETE FROM users")
    conn.close()


@pytest.fixture
async def app(make_app: Callable[..., Any], app_config: dict[str, Any]) -> Quart:
    application: Quart = await make_app(**app_config)
    return application


@pytest.fixture
def client(app: Quart) -> QuartClient:
    return app.test_client()


async def csrf_from(client: QuartClient, path: str = "/") -> str:
    response = await client.get(path)
    match = CSRF_FIELD.search(await response.get_data(as_text=True))
    assert match, f"no CSRF field on {path}"
    return match.group(1)


@dataclass
class Auth:
    """Signs users up and in through the real routes, the way a browser would."""

    client: QuartClient

    async def sign_up(
        self, email: str = "ada@example.com", password: str = PASSWORD, **headers: str
    ) -> Any:
        token = await csrf_from(self.client, "/register")
        return await self.client.post(
            "/api/v1/signup",
            form={"email": email, "password": password, "csrf_token": token},
            headers=headers,
        )

    async def sign_in(
        self, email: str = "ada@example.com", password: str = PASSWORD, **headers: str
    ) -> Any:
        token = await csrf_from(self.client, "/")
        return await self.client.post(
            "/api/v1/signin",
            form={"email": email, "password": password, "csrf_token": token},
            headers=headers,
        )

    async def page_token(self) -> str:
        return await csrf_from(self.client, "/home")

    async def post(self, path: str, data: Mapping[str, str] | None = None, **kw: Any) -> Any:
        token = await self.page_token()
        return await self.client.post(path, form={**(data or {}), "csrf_token": token}, **kw)


@pytest.fixture
def auth(client: QuartClient) -> Auth:
    return Auth(client)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    """A real SMTP server for this test (tests/support/mail_servers.py); an app sends to it
    when started with ``MAIL_URL=catcher.url``, through a worker from ``workers``."""
    server = MailCatcher(tmp_path / "maildir")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(
    database: str, redis_prefix: str, catcher: MailCatcher
) -> Iterator[Callable[..., Process]]:
    """Start mail workers (with extra settings) on this test's queue, sending to
    ``catcher``; all of them are stopped after the test."""
    started: list[Process] = []

    def start(**settings: Any) -> Process:
        worker = start_worker(
            database,
            secret_key=SECRET_KEY,
            redis_prefix=redis_prefix,
            name=f"{redis_prefix.split(':')[1]}-{len(started)}",
            MAIL_URL=catcher.url,
            **settings,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(workers: Callable[..., Process]) -> Process:
    """One mail worker, for tests that need the mail sent and nothing more of the worker."""
    return workers()


def session_cookie(client: QuartClient) -> str | None:
    jar = client.cookie_jar
    assert jar is not None
    for cookie in jar:
        if cookie.name.endswith("quartapp_session"):
            return cookie.value
    return None


__all__ = [
    "DATABASE_URL",
    "PASSWORD",
    "REDIS_URL",
    "SECRET_KEY",
    "Auth",
    "asyncio",
    "csrf_from",
    "session_cookie",
]

"""``python -m quartapp migrate``, as script/server and the Docker image run it: what it
says, what it says when it fails, and any number of them at once on one database (an
orchestrator starting several instances, each of which migrates first)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

import pytest
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate as run_migrations

from quartapp.infra.database import (
    database_name,
    migration_lock_name,
    server_address,
    tortoise_config,
)

from .support.databases import connect, drop_database
from .support.processes import ROOT
from .support.settings import DATABASE_URL

MIGRATIONS = sorted(path.stem for path in (ROOT / "quartapp/accounts/migrations").glob("[0-9]*.py"))
# As many as an orchestrator may start at once.
INSTANCES = 5


def start(url: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "quartapp", "migrate"],
        cwd=ROOT,
        env={**os.environ, "QUARTAPP_DATABASE_URL": url, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def migrate(url: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return finish(start(url, env))


def migrate_at_once(url: str) -> list[subprocess.CompletedProcess[str]]:
    """INSTANCES migrate commands, all started before any is waited for."""
    processes = [start(url) for _ in range(INSTANCES)]
    return [finish(process) for process in processes]


def applied(url: str) -> list[str]:
    """The migrations the database records as applied, a row each, in order."""
    connection = connect(url, select_db=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM tortoise_migrations ORDER BY id")
            return [name for (name,) in cursor.fetchall()]
    finally:
        connection.close()


def database_exists(url: str) -> bool:
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                (database_name(url),),
            )
            return cursor.fetchone() is not None
    finally:
        connection.close()


async def apply_up_to(url: str, last: str) -> None:
    """Create the database ``url`` names and apply the migrations up to ``last``, as an
    older release of the app left it."""
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database_name(url)}`")
    finally:
        connection.close()
    try:
        await run_migrations(config=tortoise_config(url), target=f"quartapp.{last}")
    finally:
        await Tortoise.close_connections()


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's error: exit 1, one line on stderr, nothing on stdout."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """The URL of a database of this test's own, not created yet; dropped afterwards."""
    base, _, name = DATABASE_URL.rpartition("/")
    url = f"{base}/{name[:40]}_m{uuid.uuid4().hex[:12]}"
    yield url
    drop_database(url)


def test_up_to_date(database: str) -> None:
    result = migrate(database)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "quartapp: database is up to date\n"
    assert result.stderr == ""


def test_instances_started_at_once_on_an_empty_database(scratch_database: str) -> None:
    results = migrate_at_once(scratch_database)
    assert [r.returncode for r in results] == [0] * INSTANCES, [r.stderr for r in results]
    assert [r.stderr for r in results] == [""] * INSTANCES
    assert applied(scratch_database) == MIGRATIONS
    # One of them applied everything; the others waited for it and found nothing to do.
    assert sorted(r.stdout for r in results) == [
        f"quartapp: applied {', '.join(MIGRATIONS)}\n",
        *["quartapp: database is up to date\n"] * (INSTANCES - 1),
    ]


async def test_instances_started_at_once_on_an_outdated_database(scratch_database: str) -> None:
    await apply_up_to(scratch_database, MIGRATIONS[1])
    assert applied(scratch_database) == MIGRATIONS[:2]

    results = migrate_at_once(scratch_database)
    assert [r.returncode for r in results] == [0] * INSTANCES, [r.stderr for r in results]
    assert applied(scratch_database) == MIGRATIONS
    assert sorted(r.stdout for r in results) == [
        f"quartapp: applied {', '.join(MIGRATIONS[2:])}\n",
        *["quartapp: database is up to date\n"] * (INSTANCES - 1),
    ]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("foo", "must start with mysql://"),
        ("postgres://ada@127.0.0.1/quartapp", "must start with mysql://"),
        ("mysql://ada:secret@/quartapp", "needs a host and a valid port"),
        ("mysql://ada:secret@127.0.0.1:port/quartapp", "needs a host and a valid port"),
        ("mysql://ada:secret@127.0.0.1:3306/", "must end with a database name"),
        ("mysql://ada:secret@127.0.0.1:3306/no-dashes", "must end with a database name"),
    ],
)
def test_a_bad_database_url_is_named_before_anything_connects(url: str, says: str) -> None:
    line = one_line(migrate(url))
    assert line.startswith(f"quartapp: QUARTAPP_DATABASE_URL {says}"), line
    assert "secret" not in line


def test_unreachable_server() -> None:
    # Nothing listens on port 1 (only root may).
    url = DATABASE_URL.rsplit("@", 1)[0] + "@127.0.0.1:1/quartapp_nowhere"
    assert (
        one_line(migrate(url)) == "quartapp: cannot reach MySQL at 127.0.0.1:1: connection refused"
    )


def test_wrong_password_is_access_denied(scratch_database: str) -> None:
    parts = urlsplit(scratch_database)
    user = parts.username or "root"
    url = urlunsplit(
        parts._replace(netloc=f"{user}:not-the-password@{parts.hostname}:{parts.port}")
    )
    line = one_line(migrate(url))
    assert line.startswith(
        f"quartapp: access denied by MySQL at {server_address(url)} to user '{user}': (1045, "
    )
    assert "not-the-password" not in line
    assert not database_exists(scratch_database)


async def test_failing_migration_is_named(scratch_database: str) -> None:
    # A column added by hand before the migration that adds it.
    await apply_up_to(scratch_database, MIGRATIONS[2])
    connection = connect(scratch_database, select_db=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE users ADD COLUMN email_verified BOOL")
    finally:
        connection.close()

    line = one_line(migrate(scratch_database))
    assert line == (
        f"quartapp: migration {MIGRATIONS[3]} failed: "
        "(1060, \"Duplicate column name 'email_verified'\")"
    )
    assert applied(scratch_database) == MIGRATIONS[:3]


def test_waiting_too_long_for_the_lock(scratch_database: str) -> None:
    holder = connect(scratch_database)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", (migration_lock_name(scratch_database),))
            assert cursor.fetchone() == (1,)
        line = one_line(migrate(scratch_database, {"QUARTAPP_MIGRATE_LOCK_TIMEOUT": "0.5"}))
    finally:
        holder.close()
    assert line.startswith("quartapp: gave up after 0.5 s waiting for the migration lock ")
    assert f"(MySQL connection {holder.thread_id()} holds it)" in line
    # Nothing happened before the lock was held, not even creating the database.
    assert not database_exists(scratch_database)


def test_lock_timeout_setting_must_be_seconds() -> None:
    result = migrate(DATABASE_URL, {"QUARTAPP_MIGRATE_LOCK_TIMEOUT": "soon"})
    assert one_line(result) == (
        "quartapp: QUARTAPP_MIGRATE_LOCK_TIMEOUT must be 0 or more seconds, not 'soon'"
    )

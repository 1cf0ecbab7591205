"""``python -m quartapp migrate``, as script/server runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import DATABASE_URL


def migrate(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quartapp", "migrate"],
        env={**os.environ, "QUARTAPP_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_is_idempotent(database: str) -> None:
    result = migrate(database)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "quartapp: database is up to date"
    assert result.stderr == ""


def test_unreachable_database_is_one_clear_line() -> None:
    url = DATABASE_URL.rsplit("@", 1)[0] + "@127.0.0.1:1/quartapp_nowhere"
    result = migrate(url)
    assert result.returncode == 1
    assert result.stderr.startswith("quartapp: cannot reach MySQL at 127.0.0.1:1/quartapp_nowhere")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""The served app against its own OpenAPI document: Schemathesis (its default checks, and
tests/schemathesis.toml) generates requests for every described operation, valid and
invalid, and checks each answer's status, content type, headers and body against the
document. It runs against a real server process with real Redis and MariaDB, signed in with
a CSRF token obtained as a JSON client obtains them (tests/support/contract_auth.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.app_servers import AppServer, serve
from .support.contract_auth import BASE_URL
from .support.databases import connect
from .support.processes import ROOT

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Small enough for the whole run to take seconds; each operation still gets its examples,
# the coverage phase's edge cases and this many generated cases.
MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[AppServer]:
    """The served app; every account made while it ran (the provider's, the examples', and
    any a generated sign-up made) is deleted afterwards, as the other tests expect."""
    with connect(database, select_db=True) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM users")
        (last,) = cursor.fetchone() or (0,)
        try:
            with serve(database, "openapi-contract") as running:
                yield running
        finally:
            cursor.execute("DELETE FROM users WHERE id > %s", (last,))


def test_every_described_operation_answers_as_the_document_says(
    server: AppServer, tmp_path: Path
) -> None:
    with urllib.request.urlopen(server.url("/openapi.json"), timeout=10) as answer:  # noqa: S310
        described = json.load(answer)["paths"]
    operations = sum(len(methods) for methods in described.values())
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.support.contract_auth",
        BASE_URL: server.base_url,
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    run = subprocess.run(  # noqa: S603
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(ROOT / "tests" / "schemathesis.toml"),
            "run",
            server.url("/openapi.json"),
            "--max-examples",
            str(MAX_EXAMPLES),
            # JSON clients say so (docs/api.md): a browser is sent to sign in instead.
            "--header",
            "Accept: application/json",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        cwd=tmp_path,  # where Schemathesis keeps its cache
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert f"{operations} selected / {operations} total" in report, report
    assert f"Tested: {operations}" in report, report
    assert " passed" in report, report
    assert "failure" not in report.lower(), report

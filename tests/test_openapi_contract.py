"""The served app against its own OpenAPI document: Schemathesis (its default checks, and
tests/schemathesis.toml) generates requests for every described operation, valid and
invalid, and checks each answer's status, content type, headers and body against the
document. It runs against a real server process with real Redis and MariaDB.

Two runs: every operation on its own, each request signed in with a CSRF token obtained as
a JSON client obtains them (tests/support/contract_auth.py); and the stateful phase, whose
scenarios follow the document's links (sign up, sign in, list the sessions, revoke one),
each scenario one client that keeps the cookies and the CSRF tokens its answers give it
(tests/support/contract_client.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from .support.app_servers import AppServer, serve
from .support.contract_client import BASE_URL, JSON, Client
from .support.databases import connect
from .support.processes import ROOT

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Small enough for the whole run to take seconds; each operation still gets its examples,
# the coverage phase's edge cases and this many generated cases.
MAX_EXAMPLES = 40
CONFIG = ROOT / "tests" / "schemathesis.toml"
# Scenarios of each run of the stateful phase, the most steps each takes, and the most runs
# (runs stop as soon as one scenario has walked the whole chain: two or three, as a rule).
SCENARIOS = 100
STEPS = 10
RUNS = 20


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
            str(CONFIG),
            "run",
            server.url("/openapi.json"),
            # The stateful phase needs one client per scenario (the next test); here each
            # request is signed in by the hooks instead.
            "--phases",
            "examples,coverage,fuzzing",
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


def test_the_links_hold_for_a_client_that_follows_them(server: AppServer) -> None:
    """Schemathesis's stateful phase: scenarios of steps chosen along the document's links,
    with the same checks on every answer. Each scenario is one client: the sign-up's cookie
    and token are what the sign-in after it sends, the sign-in's what the list and the
    revoke send. The client's credentials are the run's auth, so that Schemathesis knows
    them for real ones (and leaves them out where it tests a request without them).

    As in ``schemathesis run``: a failure is kept as it happens, not replayed (the server's
    state has moved on: an address taken by the first run of a scenario is a 409 in its
    replay), and a run that Hypothesis stops because a replay went another way
    (``Flaky``) is followed by another, until the whole chain was walked."""
    document = schemathesis.openapi.from_url(
        server.url("/openapi.json"), config=SchemathesisConfig.from_path(CONFIG)
    )
    # The operations the links join: the others (each tested above) would only thin out
    # the scenarios, and their failed passkey sign-ins count in the sign-in throttle.
    schema = document.include(operation_id=sorted(linked_operations(document.raw_schema)))
    clients: list[Client] = []  # the current scenario's is the last
    # Each scenario's steps (method, path and status), the current scenario's last.
    walked: list[list[str]] = []
    failures: list[str] = []

    class AsTheClient:
        def get(self, case: Any, context: Any) -> Client | None:
            return clients[-1] if clients[-1].holds_credentials() else None

        def set(self, case: Any, client: Client, context: Any) -> None:
            headers, cookies = dict(case.headers or {}), dict(case.cookies or {})
            client.prepare(case.method, headers, cookies)
            case.headers, case.cookies = headers, cookies

    schema.auth(refresh_interval=None)(AsTheClient)

    class OneClientEachScenario(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            super().setup()
            clients.append(Client())
            walked.append([])

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": dict(JSON)}  # as JSON clients say they are (docs/api.md)

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            walked[-1].append(f"{case.method.upper()} {case.path} {response.status_code}")
            content_type = (response.headers.get("content-type") or [""])[0]
            body = response.json() if content_type.startswith("application/json") else None
            clients[-1].received(response.status_code, response.headers, body)

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            try:
                super().validate_response(response, case, *args, **kwargs)
            except FailureGroup as failure:
                failures.append(str(failure))

    runs = 0
    while runs < RUNS and not any(map(walks_the_chain, walked)):
        runs += 1
        with contextlib.suppress(hypothesis.errors.Flaky):
            OneClientEachScenario.run(
                settings=hypothesis.settings(
                    max_examples=SCENARIOS,
                    stateful_step_count=STEPS,
                    phases=[hypothesis.Phase.generate],
                    deadline=None,
                    database=None,
                    suppress_health_check=list(hypothesis.HealthCheck),
                )
            )
    assert not failures, "\n\n".join(failures)
    # The chain was walked to its end by one client, not only started: an account made,
    # signed in to, its sessions listed, and one of them ended.
    steps = Counter(step for scenario in walked for step in scenario)
    assert any(map(walks_the_chain, walked)), f"no scenario walked the chain: {steps}"


def linked_operations(document: dict[str, Any]) -> set[str]:
    """The operationIds of the operations ``document``'s links lead from or to."""
    found: set[str] = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for answer in operation["responses"].values():
                for link in answer.get("links", {}).values():
                    found |= {operation["operationId"], link["operationId"]}
    return found


CHAIN = (
    "POST /api/v1/signup 201",
    "POST /api/v1/signin 200",
    "GET /sessions 200",
    "POST /sessions/{public_id}/revoke 200",
)


def walks_the_chain(scenario: list[str]) -> bool:
    """Whether ``scenario``'s steps include the chain's, in its order."""
    steps = iter(scenario)
    return all(step in steps for step in CHAIN)

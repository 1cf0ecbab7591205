"""docs/api.md against the OpenAPI document the code makes: its table of error codes and its
list of described routes say what the document says, and its curl session runs as written
against a served app and answers what it shows."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from quart.testing import QuartClient

from quartapp.web.error_body import CODES

from .support.app_servers import serve
from .support.databases import connect

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def section(title: str) -> str:
    text = API_MD.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


async def test_the_codes_table_is_the_documents_codes_with_their_statuses(
    client: QuartClient,
) -> None:
    rows = re.findall(
        r"^\| `([a-z_]+)` \| (\d{3}) \| (.+?) \|$", section("Errors a program can read"), re.M
    )
    document = await (await client.get("/openapi.json")).get_json()
    listed = document["components"]["schemas"]
    error_schema = next(
        answer["content"]["application/json"]["schema"]
        for path in document["paths"].values()
        for operation in path.values()
        for status, answer in operation["responses"].items()
        if status == "422"
    )
    assert "ErrorBody" not in listed or listed["ErrorBody"] == error_schema
    assert [code for code, _, _ in rows] == error_schema["properties"]["code"]["enum"]
    assert [(code, int(status), when) for code, status, when in rows] == [
        (code, status, when) for code, (status, when) in CODES.items()
    ]


async def test_the_described_routes_listed_are_the_documents(client: QuartClient) -> None:
    listed = re.findall(
        r"^- `(GET|POST) (/[^`]*)`$", section("The described API: /openapi.json"), re.M
    )
    document = await (await client.get("/openapi.json")).get_json()
    described = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    ]
    assert sorted(listed) == sorted(described)


@pytest.mark.slow
def test_the_curl_session_runs_as_written(database: str) -> None:
    text = API_MD.read_text()
    start = text.index("A session, step by step")
    block = text[text.index("```sh\n", start) + len("```sh\n") : text.index("```\n", start + 30)]
    expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    assert expected
    with connect(database, select_db=True) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM users")
        (last,) = cursor.fetchone() or (0,)
        try:
            with serve(database, "curl-session") as server:
                run = subprocess.run(  # noqa: S603
                    ["/bin/bash", "-euo", "pipefail", "-c", block],
                    env={**os.environ, "QUARTAPP_URL": server.base_url},
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
        finally:
            cursor.execute("DELETE FROM users WHERE id > %s", (last,))
    assert run.returncode == 0, run.stderr
    answers = run.stdout.splitlines()
    assert len(answers) == len(expected), run.stdout
    for answer, shown in zip(answers, expected, strict=True):
        # "..." in the doc stands for any value: a string's text, or a number.
        pattern = re.escape(shown).replace(re.escape("..."), r'[^",{}]*')
        assert re.fullmatch(pattern, answer), f"{answer}\nis not what docs/api.md shows:\n{shown}"

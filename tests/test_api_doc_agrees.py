"""docs/api.md against the OpenAPI document the code makes: its table of error codes and its
list of described routes say what the document says."""

from __future__ import annotations

import re
from pathlib import Path

from quart.testing import QuartClient

from quartapp.web.error_body import CODES

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

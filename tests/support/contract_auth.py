"""Schemathesis hooks (``SCHEMATHESIS_HOOKS``) for tests/test_openapi_contract.py: every
generated request is made signed in, with the session's CSRF token, both obtained the way
a JSON client obtains them (GET /api/v1/csrf, then POST /api/v1/signup).

A generated sign-up or sign-in that succeeds replaces the session it was made in, so the
next request's 401 or 403 has the provider sign a new account up (``retry_on``)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import requests
import schemathesis

from .settings import PASSWORD

BASE_URL = "QUARTAPP_CONTRACT_BASE_URL"
JSON = {"Accept": "application/json"}


def sign_up(base_url: str) -> dict[str, str]:
    """A new account, signed in: its session cookie and its session's CSRF token."""
    with requests.Session() as client:
        anonymous = client.get(f"{base_url}/api/v1/csrf", headers=JSON, timeout=10)
        anonymous.raise_for_status()
        answer = client.post(
            f"{base_url}/api/v1/signup",
            json={"email": f"contract-{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD},
            headers={**JSON, "X-CSRF-Token": anonymous.json()["csrf_token"]},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return {
            "session": client.cookies["quartapp_session"],
            "csrf_token": answer.json()["csrf_token"],
        }


@schemathesis.auth(retry_on=[401, 403])
class SignedIn:
    def get(self, case: Any, context: Any) -> dict[str, str]:
        return sign_up(os.environ[BASE_URL])

    def set(self, case: Any, data: dict[str, str], context: Any) -> None:
        case.cookies = {**(case.cookies or {}), "quartapp_session": data["session"]}
        case.headers = {**(case.headers or {}), "X-CSRF-Token": data["csrf_token"]}

"""The served app's JSON clients for tests/test_openapi_contract.py, made the way a program
makes one: a CSRF token from GET /api/v1/csrf (with the cookie it is bound to), then a
sign-up, whose answer sets the session cookie and carries the session's CSRF token."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from typing import Any

import requests

from .settings import PASSWORD

# The variable that tells the Schemathesis hooks (contract_auth.py) where the app is.
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


class Client:
    """One program's use of the API across requests: it keeps the cookies its answers set
    (and forgets those they delete), and sends with each POST the CSRF token of the latest
    answer that carried one (the links' tokens are the same ones)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}
        self.csrf_token: str | None = None

    def holds_credentials(self) -> bool:
        return bool(self.cookies) or self.csrf_token is not None

    def prepare(
        self, method: str, headers: MutableMapping[str, Any], cookies: MutableMapping[str, Any]
    ) -> None:
        """Before a request: the cookies, and the token on a POST."""
        cookies.update(self.cookies)
        if method.upper() == "POST" and self.csrf_token is not None:
            for name in [name for name in headers if name.lower() == "x-csrf-token"]:
                del headers[name]
            headers["X-CSRF-Token"] = self.csrf_token

    def received(self, status: int, headers: Mapping[str, list[str]], body: Any) -> None:
        """After an answer: the cookies it sets or deletes, and the token it carries."""
        for header in headers.get("set-cookie", []):
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or _expired(morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if status < 300 and isinstance(body, dict) and isinstance(body.get("csrf_token"), str):
            self.csrf_token = body["csrf_token"]


def _expired(expires: str) -> bool:
    return bool(expires) and parsedate_to_datetime(expires) <= datetime.now(UTC)

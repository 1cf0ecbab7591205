"""Schemathesis hooks (``SCHEMATHESIS_HOOKS``) for tests/test_openapi_contract.py's run of
every operation on its own: each generated request is made signed in, with the session's
CSRF token, both obtained the way a JSON client obtains them (contract_client.sign_up).

A generated sign-up or sign-in that succeeds replaces the session it was made in, so the
next request's 401 or 403 has the provider sign a new account up (``retry_on``)."""

from __future__ import annotations

import os
from typing import Any

import schemathesis

from .contract_client import BASE_URL, sign_up


@schemathesis.auth(retry_on=[401, 403])
class SignedIn:
    def get(self, case: Any, context: Any) -> dict[str, str]:
        return sign_up(os.environ[BASE_URL])

    def set(self, case: Any, data: dict[str, str], context: Any) -> None:
        case.cookies = {**(case.cookies or {}), "quartapp_session": data["session"]}
        case.headers = {**(case.headers or {}), "X-CSRF-Token": data["csrf_token"]}

"""The described JSON API: the OpenAPI document made from the code, the machine codes of
errors, and the one responder answering every kind of client from one outcome."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from quart import Quart
from quart.testing import QuartClient
from werkzeug.exceptions import RequestTimeout

from quartapp.web.error_body import API_MESSAGES, CODES
from quartapp.web.errors import STATUS_CODES

from .conftest import PASSWORD, Auth

ROOT = Path(__file__).resolve().parent.parent
JSON = {"Accept": "application/json"}
DESCRIBED = {
    ("get", "/api/v1/csrf"),
    ("get", "/api/v1/account"),
    ("post", "/api/v1/signup"),
    ("post", "/api/v1/signin"),
    # Session countdown, extension, sign-out, strength, health
    ("get", "/session/countdown"),
    ("post", "/session/extend"),
    ("post", "/logout"),
    ("post", "/api/v1/password-strength"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    # Mailed links (tests/test_api_mail_links.py)
    ("get", "/password/forgot"),
    ("post", "/password/forgot"),
    ("get", "/password/reset/{token}"),
    ("post", "/password/reset/{token}"),
    ("get", "/email/verify/{token}"),
    ("post", "/email/verify/{token}"),
    ("post", "/email/verify/resend"),
    ("get", "/email/change/{token}"),
    ("post", "/email/change/{token}"),
    ("get", "/email/undo/{token}"),
    ("post", "/email/undo/{token}"),
    # Passkeys (tests/test_passkeys.py)
    ("get", "/api/v1/passkeys"),
    ("post", "/api/v1/passkeys/registration/options"),
    ("post", "/api/v1/passkeys/registration"),
    ("post", "/api/v1/passkeys/{passkey_id}/rename"),
    ("post", "/api/v1/passkeys/{passkey_id}/remove"),
    ("post", "/api/v1/passkeys/authentication/options"),
    ("post", "/api/v1/signin/passkey"),
    # Sessions and account changes (tests/test_account_api.py)
    ("get", "/sessions"),
    ("post", "/sessions/{public_id}/revoke"),
    ("post", "/sessions/revoke-others"),
    ("get", "/account"),
    ("post", "/account/password"),
    ("get", "/account/email"),
    ("post", "/account/email"),
    ("post", "/account/delete"),
    # The second factor.
    ("post", "/api/v1/signin/two-factor"),
    ("get", "/account/two-factor"),
    ("post", "/account/two-factor"),
    ("post", "/account/two-factor/confirm"),
    ("post", "/account/two-factor/recovery-codes"),
    ("post", "/account/two-factor/off"),
}


async def document(client: QuartClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data: dict[str, Any] = await response.get_json()
    return data


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, by_method in doc["paths"].items()
        for method, operation in by_method.items()
    }


async def api_token(client: QuartClient) -> dict[str, str]:
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    return {"X-CSRF-Token": token}


# -- the document ---------------------------------------------------------------------------


async def test_the_document_is_openapi_3_1_of_the_described_json_routes_only(
    client: QuartClient,
) -> None:
    doc = await document(client)
    assert doc["openapi"] == "3.1.0"
    # The browsers' own form addresses (POST / and POST /register) share the views but are
    # not part of the API.
    assert set(operations(doc)) == DESCRIBED


async def test_every_operation_id_is_unique(client: QuartClient) -> None:
    """Client generators name a method after each; two views of one name (an address
    change asked for, and one confirmed by its link) once shared theirs."""
    doc = await document(client)
    ids = [
        operation["operationId"]
        for operations_of_path in doc["paths"].values()
        for operation in operations_of_path.values()
    ]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


async def test_every_status_a_described_route_answers_is_in_the_document(
    client: QuartClient,
) -> None:
    ops = operations(await document(client))
    statuses = {key: set(op["responses"]) for key, op in ops.items()}
    assert statuses[("get", "/api/v1/csrf")] == {"200", "431", "503"}
    assert statuses[("get", "/api/v1/account")] == {"200", "401", "431", "503"}
    body_errors = {"400", "403", "413", "415", "422", "429", "431", "503"}
    assert statuses[("post", "/api/v1/signup")] == {"201", "409"} | body_errors
    assert statuses[("post", "/api/v1/signin")] == {"200", "401"} | body_errors
    assert statuses[("get", "/session/countdown")] == {"200", "431", "503"}
    # A POST without a body of its own still has its CSRF token read from a web form's.
    bodiless_post = {"401", "403", "413", "431", "503"}
    assert statuses[("post", "/session/extend")] == {"200"} | bodiless_post
    assert statuses[("post", "/logout")] == {"200"} | bodiless_post
    assert statuses[("post", "/api/v1/password-strength")] == {"200"} | body_errors
    # They never read the session: only oversized cookies are refused before them.
    assert statuses[("get", "/healthz")] == {"200", "431"}
    assert statuses[("get", "/readyz")] == {"200", "431", "503"}
    for op in ops.values():
        for status, answer in op["responses"].items():
            assert answer["description"], status
            schema = answer["content"]["application/json"]["schema"]
            assert schema["examples"], status
            if op is ops[("get", "/readyz")] and status == "503":
                # Not an error but an answer: take this instance out of rotation.
                assert schema["title"] == "NotReady"
                assert "headers" not in answer
                continue
            if status.startswith(("4", "5")):
                assert schema["title"] == "ErrorBody"
            if status.startswith("4") and status != "422":
                # An example of each code the status can carry, and only those.
                examples = answer["content"]["application/json"]["examples"]
                assert examples, status
                for code, example in examples.items():
                    assert example["value"]["code"] == code
                    assert CODES[code][0] == int(status)
            if status in ("429", "503"):
                assert answer["headers"]["Retry-After"]["required"] is True


async def test_the_session_cookie_and_the_csrf_header_are_security_schemes(
    client: QuartClient,
) -> None:
    doc = await document(client)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "quartapp_session",
        "description": schemes["session"]["description"],
    }
    assert (schemes["csrfHeader"]["in"], schemes["csrfHeader"]["name"]) == (
        "header",
        "X-CSRF-Token",
    )
    assert (schemes["csrfCookie"]["in"], schemes["csrfCookie"]["name"]) == (
        "cookie",
        "quartapp_csrf",
    )
    ops = operations(doc)
    assert ops[("get", "/api/v1/account")]["security"] == [{"session": []}]
    for path in ("/api/v1/signup", "/api/v1/signin"):
        assert {"csrfHeader": [], "csrfCookie": []} in ops[("post", path)]["security"]
    assert "security" not in ops[("get", "/api/v1/csrf")]
    for key in (("post", "/session/extend"), ("post", "/logout")):
        assert ops[key]["security"] == [{"csrfHeader": [], "session": []}]
    assert {"csrfHeader": [], "csrfCookie": []} in ops[("post", "/api/v1/password-strength")][
        "security"
    ]
    # Answered to anyone; a session, or the health token, is told more.
    assert ops[("get", "/session/countdown")]["security"] == [{"session": []}, {}]
    assert ops[("get", "/readyz")]["security"] == [{"healthToken": []}, {}]
    assert (schemes["healthToken"]["type"], schemes["healthToken"]["scheme"]) == ("http", "bearer")
    assert "security" not in ops[("get", "/healthz")]


async def test_requests_are_described_with_their_fields(client: QuartClient) -> None:
    ops = operations(await document(client))
    for path in ("/api/v1/signup", "/api/v1/signin"):
        body = ops[("post", path)]["requestBody"]
        # Found by the contract test: without it an empty POST counts as valid, and is a 415.
        assert body["required"] is True
        schema = body["content"]["application/json"]["schema"]
        assert schema["required"] == ["email", "password"]
        assert schema["examples"]


async def test_the_document_is_public_and_made_per_request_from_the_routes(
    app: Quart, client: QuartClient
) -> None:
    assert app.view_functions["api_docs.openapi"].access == "public"  # type: ignore[attr-defined]
    signed_out = await document(client)
    assert signed_out == await document(client)


async def test_the_reference_page_loads_only_the_apps_own_assets(
    app: Quart, client: QuartClient
) -> None:
    assert app.view_functions["api_docs.reference"].access == "public"  # type: ignore[attr-defined]
    page = await client.get("/api/docs")
    assert page.status_code == 200
    html = await page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in assets
    for asset in assets:
        assert asset.startswith("/"), asset
        assert (await client.get(asset)).status_code == 200, asset


def test_answers_are_not_converted_by_quart_schema(app: Quart) -> None:
    """The document only: quart-schema's conversion of every answer (a wrapper round
    make_response, tens of microseconds each) and its JSON provider are not installed."""
    assert "make_response" not in vars(app)
    assert type(app.json) is app.json_provider_class


# -- errors a program can read ----------------------------------------------------------------


def test_every_code_an_error_can_carry_is_listed() -> None:
    named = set(
        re.findall(
            r'code="([a-z_]+)"',
            "".join(path.read_text() for path in (ROOT / "quartapp").rglob("*.py")),
        )
    )
    assert named - {"error"} <= set(CODES)
    assert set(STATUS_CODES.values()) <= set(CODES)
    assert set(API_MESSAGES) <= set(CODES)


async def test_json_errors_carry_a_code_an_api_message_and_the_failing_fields(
    client: QuartClient,
) -> None:
    refused = await client.post(
        "/api/v1/signup", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert await refused.get_json() == {
        "code": "csrf_failed",
        "message": API_MESSAGES["csrf_failed"],
    }

    headers = await api_token(client)
    invalid = await client.post(
        "/api/v1/signup", json={"email": "not an address", "password": "short"}, headers=headers
    )
    assert invalid.status_code == 422
    body = await invalid.get_json()
    assert body["code"] == "validation_failed"
    assert "below" not in body["message"]
    assert set(body["fields"]) == {"email", "password"}

    empty = await client.post("/api/v1/signin", json={}, headers=headers)
    assert empty.status_code == 422
    assert set((await empty.get_json())["fields"]) == {"email", "password"}

    wrong_type = await client.post(
        "/api/v1/signin", json={"email": ["a"], "password": PASSWORD}, headers=headers
    )
    assert wrong_type.status_code == 422
    assert (await wrong_type.get_json())["fields"] == {"email": "This must be a string."}


async def test_the_browser_wording_stays_on_pages(client: QuartClient, auth: Auth) -> None:
    response = await client.post("/register", form={"email": "x", "password": "y"})
    assert response.status_code == 403
    assert "Reload the page" in await response.get_data(as_text=True)


async def test_a_throttled_answer_carries_retry_after_and_its_code(make_app: Any) -> None:
    app = await make_app(THROTTLE_SIGN_IN_PER_ACCOUNT_IP=[2, 60])
    client = app.test_client()
    headers = await api_token(client)
    body = {"email": "nobody@example.com", "password": "wrong password"}
    answers = [await client.post("/api/v1/signin", json=body, headers=headers) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert (await answers[0].get_json())["code"] == "invalid_credentials"
    assert (await answers[-1].get_json())["code"] == "throttled"
    assert int(answers[-1].headers["Retry-After"]) > 0


async def test_an_unknown_address_and_a_wrong_method_have_codes(client: QuartClient) -> None:
    assert (await (await client.get("/nowhere", headers=JSON)).get_json())["code"] == "not_found"
    wrong = await client.get("/api/v1/signin", headers=JSON)
    assert (await wrong.get_json())["code"] == "method_not_allowed"


async def test_a_body_that_does_not_arrive_in_time_has_its_code(app: Quart) -> None:
    """Quart's body timeout is a werkzeug RequestTimeout, answered by the app's handler."""
    from quartapp.web.access import public

    @app.get("/test-body-timeout")
    @public
    async def body_timeout() -> None:
        raise RequestTimeout()

    response = await app.test_client().get("/test-body-timeout", headers=JSON)
    assert response.status_code == 408
    assert (await response.get_json())["code"] == "request_timeout"


# -- one responder, every kind of client ---------------------------------------------------------


async def test_one_outcome_answers_json_htmx_and_a_plain_form(make_app: Any) -> None:
    async def signed_up(email: str, **headers: str) -> Any:
        client = (await make_app()).test_client()
        token = await api_token(client)
        return await client.post(
            "/api/v1/signup",
            form={"email": email, "password": PASSWORD},
            headers={**token, **headers},
        )

    as_json = await signed_up("json@example.com", **JSON)
    assert as_json.status_code == 201
    assert set(await as_json.get_json()) == {"message", "email", "session", "csrf_token"}
    as_htmx = await signed_up("htmx@example.com", **{"HX-Request": "true"})
    assert (as_htmx.status_code, as_htmx.headers["HX-Redirect"]) == (204, "/home")
    as_form = await signed_up("form@example.com")
    assert (as_form.status_code, as_form.headers["Location"]) == (303, "/home")


async def test_a_refused_form_is_the_form_again_for_browsers_and_an_error_for_json(
    client: QuartClient,
) -> None:
    token = await api_token(client)
    bad = {"email": "ada@example.com", "password": ""}
    fragment = await client.post("/register", form=bad, headers={**token, "HX-Request": "true"})
    assert fragment.status_code == 422
    html = await fragment.get_data(as_text=True)
    assert "<html" not in html
    assert 'value="ada@example.com"' in html
    page = await client.post("/register", form=bad, headers=token)
    assert page.status_code == 422
    assert "<html" in await page.get_data(as_text=True)
    as_json = await client.post("/register", json=bad, headers=token)
    assert (await as_json.get_json())["code"] == "validation_failed"


async def test_the_account_route_answers_its_described_shape(
    client: QuartClient, auth: Auth
) -> None:
    anonymous = await client.get("/api/v1/account", headers=JSON)
    assert anonymous.status_code == 401
    assert (await anonymous.get_json())["code"] == "unauthenticated"
    await auth.sign_up()
    account = await (await client.get("/api/v1/account")).get_json()
    assert set(account) == {
        "email", "email_verified", "two_factor_enabled", "created_at", "passkeys", "session"
    }  # fmt: skip
    assert account["passkeys"] == 0
    assert account["two_factor_enabled"] is False
    assert set(account["session"]) == {"id", "expires_in"}

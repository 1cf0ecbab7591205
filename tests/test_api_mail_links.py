"""The routes mailed links lead to, as described JSON routes: what the OpenAPI document says
of them, and that each JSON answer is the declared model, with API wording; browsers keep
their pages (tests/test_mail.py and tests/test_dead_links.py hold the flows)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from quart import Quart
from quart.testing import QuartClient

from quartapp.accounts.email_undo import offer_undo
from quartapp.accounts.mail_tokens import LinkGrant, Purpose, get_mail_tokens
from quartapp.accounts.queries import (
    change_email,
    find_user,
    find_user_by_id,
    mark_email_verified,
)
from quartapp.web.error_body import API_MESSAGES
from quartapp.web.schemas import (
    ChangeLink,
    ChangeUndone,
    EmailChanged,
    EmailVerified,
    ForgotForm,
    PasswordReset,
    ResetLink,
    ResetLinkSent,
    UndoLink,
    VerificationSent,
    VerifyLink,
)

from .conftest import Auth, csrf_from

JSON = {"Accept": "application/json"}
HTMX = {"HX-Request": "true"}
TOKEN_PATHS = {
    "reset": "/password/reset/{token}",
    "verify": "/email/verify/{token}",
    "email": "/email/change/{token}",
    "undo": "/email/undo/{token}",
}
A_TOKEN = "A" * 43  # the shape of a token, naming no link


async def document(client: QuartClient) -> dict[str, Any]:
    data: dict[str, Any] = await (await client.get("/openapi.json")).get_json()
    return data


def shaped(model: type[BaseModel], body: Any) -> Any:
    """``body`` is exactly what ``model`` declares: every key, and no other."""
    assert set(body) == set(model.model_fields), body
    model.model_validate(body)
    return body


async def api_headers(client: QuartClient) -> dict[str, str]:
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    return {**JSON, "X-CSRF-Token": token}


async def signed_up(app: Quart, email: str = "ada@example.com") -> tuple[Auth, int]:
    auth = Auth(app.test_client())
    assert (await auth.sign_up(email)).status_code == 303
    user = await find_user(email)
    assert user is not None
    return auth, int(user.id)


async def live_link(app: Quart, purpose: Purpose, user_id: int, email: str) -> str:
    """The path of a live link of ``purpose`` for the account, granting ``email``."""
    user = await find_user_by_id(user_id)
    assert user is not None
    async with app.app_context():
        tokens = get_mail_tokens()
        grant = LinkGrant(user_id, user.credentials_version, email)
        link_id = await tokens.issue(purpose, grant, 3600)
        return TOKEN_PATHS[purpose].format(token=tokens.token(purpose, link_id))


async def changed_with_undo(app: Quart, user_id: int) -> str:
    """Change ada@example.com's address to ada@new.example.com, and return the path of the
    undo link that puts it back."""
    user = await find_user("ada@example.com")
    assert user is not None
    async with app.app_context():
        await change_email(user, "ada@new.example.com")
        link_id = await offer_undo(user_id, "ada@example.com")
        return f"/email/undo/{get_mail_tokens().token('undo', link_id)}"


# -- the document ---------------------------------------------------------------------------


async def test_each_mailed_link_route_lists_every_status_it_answers(client: QuartClient) -> None:
    paths = (await document(client))["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    always = {"431", "503"}
    body = {"400", "403", "413", "415", "422"}
    assert statuses("/password/forgot", "get") == {"200"} | always
    assert statuses("/password/forgot", "post") == {"202", "429"} | body | always
    assert statuses("/password/reset/{token}", "get") == {"200", "404", "410"} | always
    assert statuses("/password/reset/{token}", "post") == (
        {"200", "404", "410", "429"} | body | always
    )
    for path in ("/email/verify/{token}", "/email/change/{token}", "/email/undo/{token}"):
        assert statuses(path, "get") == {"200", "404", "410"} | always
    # Without a body: the CSRF token, and a web form read for it.
    no_body = {"403", "413"}
    assert statuses("/email/verify/{token}", "post") == {"200", "404", "410"} | no_body | always
    for path in ("/email/change/{token}", "/email/undo/{token}"):
        assert statuses(path, "post") == {"200", "404", "409", "410"} | no_body | always
    assert statuses("/email/verify/resend", "post") == (
        {"200", "202", "401", "429"} | no_body | always
    )
    dead = paths["/email/undo/{token}"]["post"]["responses"]["410"]
    assert "link_dead" in dead["content"]["application/json"]["examples"]


async def test_the_token_in_a_links_address_is_described(client: QuartClient) -> None:
    paths = (await document(client))["paths"]
    for path in TOKEN_PATHS.values():
        for method, operation in paths[path].items():
            (parameter,) = operation["parameters"]
            assert parameter["name"] == "token"
            assert parameter["in"] == "path"
            assert parameter["required"] is True
            assert "410" in parameter["description"], (path, method)
            schema = parameter["schema"]
            assert schema["type"] == "string"
            assert re.fullmatch(schema["pattern"].strip("^$"), schema["examples"][0])
    forgot = paths["/password/forgot"]["post"]["requestBody"]["content"]["application/json"]
    assert forgot["schema"]["required"] == ["email"]
    reset = paths["/password/reset/{token}"]["post"]["requestBody"]["content"]
    assert reset["application/json"]["schema"]["required"] == ["new_password"]
    assert "requestBody" not in paths["/email/change/{token}"]["post"]
    assert paths["/email/verify/resend"]["post"]["security"] == [{"csrfHeader": [], "session": []}]


# -- forgot -----------------------------------------------------------------------------------


async def test_the_forgot_page_answers_json_clients_in_json(client: QuartClient) -> None:
    """It used to answer them with the browsers' page."""
    answer = await client.get("/password/forgot", headers=JSON)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    form = shaped(ForgotForm, await answer.get_json())
    assert form["link_lifetime"] == 3600
    page = await client.get("/password/forgot")
    assert page.mimetype == "text/html"
    assert "forgot-form" in await page.get_data(as_text=True)


async def test_asking_for_a_reset_link_answers_json_202_and_pages_200(
    client: QuartClient,
) -> None:
    headers = await api_headers(client)
    asked = await client.post(
        "/password/forgot", json={"email": "ada@example.com"}, headers=headers
    )
    assert asked.status_code == 202
    shaped(ResetLinkSent, await asked.get_json())
    refused = await client.post("/password/forgot", json={"email": " "}, headers=headers)
    assert refused.status_code == 422
    body = await refused.get_json()
    assert (body["code"], body["message"]) == (
        "validation_failed",
        API_MESSAGES["validation_failed"],
    )
    assert set(body["fields"]) == {"email"}
    token = await csrf_from(client, "/password/forgot")
    form = {"email": "ada@example.com", "csrf_token": token}
    page = await client.post("/password/forgot", form=form)
    assert page.status_code == 200  # a page, though JSON clients get a 202
    assert "If an account exists" in await page.get_data(as_text=True)
    fragment = await client.post("/password/forgot", form=form, headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in await fragment.get_data(as_text=True)


# -- dead, malformed and impossible tokens ------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", list(TOKEN_PATHS.values()))
async def test_a_token_naming_no_link_is_a_410_and_an_address_without_one_a_404(
    client: QuartClient, path: str, method: str
) -> None:
    headers = await api_headers(client)
    body = {"new_password": "a fine new passphrase"}
    for token in (A_TOKEN, "not-a-link", "resendx", "%E2%82%AC", "..."):
        dead = await client.open(
            path.format(token=token), method=method, json=body, headers=headers
        )
        assert dead.status_code == 410, token
        assert (await dead.get_json())["code"] == "link_dead"
    for impossible in ("", "a/b"):
        missing = await client.open(
            path.format(token=impossible), method=method, json=body, headers=headers
        )
        assert missing.status_code == 404, impossible
        assert (await missing.get_json())["code"] == "not_found"


async def test_a_post_without_a_body_still_reads_a_form_for_its_token(
    client: QuartClient,
) -> None:
    """Hence the 413 in the document of POSTs that take no body."""
    form = {"Content-Type": "application/x-www-form-urlencoded", **JSON}
    for path in ("/email/verify/", "/email/change/", "/email/undo/"):
        big = await client.post(path + A_TOKEN, data="a=" + "b" * 20_000, headers=form)
        assert big.status_code == 413
        assert (await big.get_json())["code"] == "too_large"


async def test_the_resend_address_is_not_a_verification_token(client: QuartClient) -> None:
    """Found by Schemathesis: /email/verify/resend also matched the verification link's
    route, so it said it took GET, which the document (rightly) does not."""
    answer = await client.get("/email/verify/resend", headers=JSON)
    assert answer.status_code == 405
    assert (await answer.get_json())["code"] == "method_not_allowed"
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    options = await client.options("/email/verify/resend")
    assert set(options.headers["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}


# -- live links, over JSON ------------------------------------------------------------------------


async def test_a_reset_link_over_json(app: Quart) -> None:
    auth, user_id = await signed_up(app)
    path = await live_link(app, "reset", user_id, "ada@example.com")
    client = app.test_client()
    looked = await client.get(path, headers=JSON)
    assert looked.headers["Referrer-Policy"] == "no-referrer"
    assert shaped(ResetLink, await looked.get_json()) == {"email": "ada@example.com", "valid": True}
    headers = await api_headers(client)
    weak = await client.post(path, json={"new_password": "password"}, headers=headers)
    assert weak.status_code == 422
    assert set((await weak.get_json())["fields"]) == {"new_password"}
    done = await client.post(path, json={"new_password": "a fine new passphrase"}, headers=headers)
    assert done.status_code == 200
    shaped(PasswordReset, await done.get_json())
    assert (await auth.client.get("/api/v1/account", headers=JSON)).status_code == 401
    again = await client.post(path, json={"new_password": "a fine new passphrase"}, headers=headers)
    assert again.status_code == 410


async def test_a_verification_link_over_json(app: Quart) -> None:
    _, user_id = await signed_up(app)
    path = await live_link(app, "verify", user_id, "ada@example.com")
    client = app.test_client()
    looked = await client.get(path, headers=JSON)
    assert shaped(VerifyLink, await looked.get_json())["email"] == "ada@example.com"
    done = await client.post(path, headers=await api_headers(client))
    assert done.status_code == 200
    assert shaped(EmailVerified, await done.get_json()) == {
        "message": "email verified",
        "email": "ada@example.com",
    }


async def test_sending_the_verification_link_again(app: Quart) -> None:
    auth, user_id = await signed_up(app)
    headers = {**JSON, "X-CSRF-Token": await auth.page_token()}
    sent = await auth.client.post("/email/verify/resend", headers=headers)
    assert sent.status_code == 202
    assert shaped(VerificationSent, await sent.get_json())["sent"] is True
    fragment = await auth.post("/email/verify/resend", headers=HTMX)
    assert fragment.status_code == 200
    html = await fragment.get_data(as_text=True)
    assert html.startswith('<div id="verify-notice">')
    assert "We sent a new link to ada@example.com." in html
    await mark_email_verified(user_id, "ada@example.com")
    verified = await auth.client.post("/email/verify/resend", headers=headers)
    assert verified.status_code == 200
    assert shaped(VerificationSent, await verified.get_json())["sent"] is False
    # Without JavaScript: home, saying so (it used to say a link was sent).
    plain = await auth.post("/email/verify/resend")
    assert (plain.status_code, plain.headers["Location"]) == (303, "/home?verified=1")


async def test_an_address_change_link_used_signed_in_over_json(app: Quart) -> None:
    auth, user_id = await signed_up(app)
    path = await live_link(app, "email", user_id, "ada@new.example.com")
    looked = await auth.client.get(path, headers=JSON)
    assert shaped(ChangeLink, await looked.get_json())["new_email"] == "ada@new.example.com"
    headers = {**JSON, "X-CSRF-Token": await auth.page_token()}
    done = await auth.client.post(path, headers=headers)
    assert done.status_code == 200
    changed = shaped(EmailChanged, await done.get_json())
    assert (changed["email"], changed["signed_in"]) == ("ada@new.example.com", True)
    assert set(changed["session"]) == {"id", "expires_in"}
    # The answer's token is the new session's: it works for the next POST.
    extended = await auth.client.post(
        "/session/extend", headers={**JSON, "X-CSRF-Token": changed["csrf_token"]}
    )
    assert extended.status_code == 200


async def test_an_undo_refused_because_another_account_has_the_address_is_email_taken(
    app: Quart,
) -> None:
    """It was a 409 `conflict`, whose API message says to read the account and retry."""
    _, user_id = await signed_up(app)
    path = await changed_with_undo(app, user_id)
    client = app.test_client()
    looked = await client.get(path, headers=JSON)
    assert shaped(UndoLink, await looked.get_json())["email"] == "ada@example.com"
    await signed_up(app, "ada@example.com")  # someone else takes the old address
    headers = await api_headers(client)
    refused = await client.post(path, headers=headers)
    assert refused.status_code == 409
    body = await refused.get_json()
    assert body["code"] == "email_taken"
    assert "another account" in body["message"]
    page = await client.post(path, form={"csrf_token": await csrf_from(client, path)})
    assert page.status_code == 409
    assert "another account" in await page.get_data(as_text=True)


async def test_an_undo_link_used_over_json(app: Quart) -> None:
    auth, user_id = await signed_up(app)
    path = await changed_with_undo(app, user_id)
    client = app.test_client()
    done = await client.post(path, headers=await api_headers(client))
    assert done.status_code == 200
    undone = shaped(ChangeUndone, await done.get_json())
    assert undone["email"] == "ada@example.com"
    reset = await client.get(undone["reset_path"], headers=JSON)
    assert (await reset.get_json())["email"] == "ada@example.com"
    assert (await auth.client.get("/api/v1/account", headers=JSON)).status_code == 401


async def test_the_forgot_page_says_how_long_the_link_lasts_as_configured(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(PASSWORD_RESET_TTL=1800)
    client = app.test_client()
    token = await csrf_from(client, "/password/forgot")
    form = {"email": "ada@example.com", "csrf_token": token}
    sent = await client.post("/password/forgot", form=form)
    assert sent.status_code == 200
    text = await sent.get_data(as_text=True)
    assert "It is good for 30 minutes." in text
    assert "hour" not in text

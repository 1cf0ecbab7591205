"""Your sessions and your account as described JSON routes: what the OpenAPI document says of
each, the answers' declared shapes, the wording JSON clients get, and the one outcome each
view returns answering htmx, plain forms and JSON alike."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from quart import Quart
from quart.testing import QuartClient

from quartapp.accounts import email_change
from quartapp.blueprints import account
from quartapp.web.schemas import (
    Account,
    AccountDeleted,
    EmailAddress,
    EmailChangeSent,
    OtherSessionsEnded,
    PasswordChanged,
    SessionEnded,
    SessionList,
)

from .conftest import PASSWORD, session_cookie
from .test_account import CHROME, HTMX, JSON, NEW_PASSWORD, Device, device, store_of
from .test_account import ada as ada  # the fixture: Ada, signed up from Firefox on Linux

ALWAYS = {"431", "503"}
BODY = {"400", "403", "413", "415", "422"}


async def document(client: QuartClient) -> dict[str, Any]:
    data: dict[str, Any] = await (await client.get("/openapi.json")).get_json()
    return data


async def api_headers(device: Device) -> dict[str, str]:
    token = (await (await device.get("/api/v1/csrf")).get_json())["csrf_token"]
    return {**JSON, "X-CSRF-Token": token, "User-Agent": device.agent}


def shaped(model: type[BaseModel], body: Any) -> None:
    """``body`` is exactly ``model``'s shape: every field, and nothing else."""
    assert set(body) == set(model.model_fields), body
    model.model_validate(body)


# -- the document ---------------------------------------------------------------------------


async def test_each_route_lists_every_status_it_answers(client: QuartClient) -> None:
    paths = (await document(client))["paths"]

    def statuses(method: str, path: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert statuses("get", "/sessions") == {"200", "401"} | ALWAYS
    assert statuses("get", "/account") == {"200", "401"} | ALWAYS
    assert statuses("get", "/account/email") == {"200", "401"} | ALWAYS
    # No body: the CSRF token comes in the header (or a form field, which can be too large).
    assert statuses("post", "/sessions/{public_id}/revoke") == {
        "200", "401", "403", "404", "413",
    } | ALWAYS  # fmt: skip
    assert statuses("post", "/sessions/revoke-others") == {"200", "401", "403", "413"} | ALWAYS
    assert statuses("post", "/account/password") == {"200", "401", "409", "429"} | BODY | ALWAYS
    assert statuses("post", "/account/email") == {"202", "401", "429"} | BODY | ALWAYS
    assert statuses("post", "/account/delete") == {"200", "401", "429"} | BODY | ALWAYS

    # The forms' pages at the same addresses are HTML for browsers, outside the document
    # (tests/schemathesis.toml expects their addresses' Allow headers to name them).
    assert set(paths["/account/password"]) == set(paths["/account/delete"]) == {"post"}

    not_found = paths["/sessions/{public_id}/revoke"]["post"]["responses"]["404"]
    assert "not_found" in not_found["description"]
    assert set(not_found["content"]["application/json"]["examples"]) == {"not_found"}
    wrong = paths["/account/delete"]["post"]["responses"]["403"]
    assert {"csrf_failed", "wrong_password"} <= set(
        wrong["content"]["application/json"]["examples"]
    )


async def test_signed_in_routes_name_the_session_and_posts_the_csrf_header(
    client: QuartClient,
) -> None:
    paths = (await document(client))["paths"]
    for path in ("/sessions", "/account", "/account/email"):
        assert paths[path]["get"]["security"] == [{"session": []}]
    for path in (
        "/sessions/{public_id}/revoke",
        "/sessions/revoke-others",
        "/account/password",
        "/account/email",
        "/account/delete",
    ):
        assert paths[path]["post"]["security"] == [{"csrfHeader": [], "session": []}]
    revoke = paths["/sessions/{public_id}/revoke"]["post"]
    (public_id,) = revoke["parameters"]
    assert (public_id["in"], public_id["name"], public_id["required"]) == (
        "path", "public_id", True,
    )  # fmt: skip
    assert public_id["schema"]["pattern"] == "^[A-Za-z0-9_-]{12}$"
    assert "404" in public_id["description"]


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/account/password", ["current_password", "new_password"]),
        ("/account/email", ["current_password", "new_email"]),
        ("/account/delete", ["password"]),
    ],
)
async def test_bodies_are_required_with_their_fields_and_an_example(
    client: QuartClient, path: str, fields: list[str]
) -> None:
    body = (await document(client))["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert schema["required"] == fields
    (example,) = schema["examples"]
    assert set(example) == set(fields)


async def test_the_links_lead_from_a_sign_up_to_revoking_a_session(client: QuartClient) -> None:
    """The document's links, as Schemathesis's stateful run follows them: each names an
    operation of the document, and they chain csrf, sign-up, sign-in, the list, revoke."""
    paths = (await document(client))["paths"]
    by_id = {
        operation["operationId"]: (method, path)
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    links = {
        (method, path, status, name): link
        for path, operations in paths.items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        for name, link in answer.get("links", {}).items()
    }
    for link in links.values():
        assert link["operationId"] in by_id, link
        assert link["description"]

    def target(method: str, path: str, status: str, name: str) -> tuple[str, str]:
        return by_id[links[(method, path, status, name)]["operationId"]]

    assert target("get", "/api/v1/csrf", "200", "signUp") == ("post", "/api/v1/signup")
    assert target("post", "/api/v1/signup", "201", "signIn") == ("post", "/api/v1/signin")
    assert target("post", "/api/v1/signin", "200", "listSessions") == ("get", "/sessions")
    revoke = links[("get", "/sessions", "200", "revokeSession")]
    assert by_id[revoke["operationId"]] == ("post", "/sessions/{public_id}/revoke")
    assert revoke["parameters"] == {"path.public_id": "$response.body#/sessions/0/id"}
    sign_in = links[("post", "/api/v1/signup", "201", "signIn")]
    assert sign_in["parameters"] == {"header.X-CSRF-Token": "$response.body#/csrf_token"}
    assert set(sign_in["requestBody"]) == {"email", "password"}


# -- the answers ----------------------------------------------------------------------------


async def test_the_session_list_and_the_account_answer_their_shapes(
    app: Quart, ada: Device
) -> None:
    laptop = await device(app, agent=CHROME)
    listed = await (await ada.get("/sessions", **JSON)).get_json()
    shaped(SessionList, listed)
    assert [session["id"] for session in listed["sessions"]] == [ada.public_id, laptop.public_id]
    assert [session["current"] for session in listed["sessions"]] == [True, False]
    shaped(Account, await (await ada.get("/account", **JSON)).get_json())
    address = await (await ada.get("/account/email", **JSON)).get_json()
    shaped(EmailAddress, address)
    assert address == {"email": "ada@example.com"}
    # Browsers still get the pages.
    page = await ada.get("/account/email")
    assert page.mimetype == "text/html"
    assert 'id="email-form"' in await page.get_data(as_text=True)


async def test_the_session_list_is_made_for_json_clients_only(
    ada: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its models cost the page about a seventh of its work (bench/instructions.py), so the
    outcome carries a function that makes them, which the responder calls for JSON only."""
    made: list[int] = []
    make = account.session_list

    def counted(*args: Any) -> SessionList:
        made.append(1)
        return make(*args)

    monkeypatch.setattr(account, "session_list", counted)
    assert (await ada.get("/sessions")).status_code == 200
    assert (await ada.get("/sessions", **HTMX)).status_code == 200
    assert made == []
    shaped(SessionList, await (await ada.get("/sessions", **JSON)).get_json())
    assert made == [1]


async def test_ending_a_session_reads_the_list_again_for_htmx_only(
    app: Quart, ada: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(app)
    reads: list[int] = []
    list_sessions = store.list_sessions

    async def counted(user_id: int) -> Any:
        reads.append(user_id)
        return await list_sessions(user_id)

    monkeypatch.setattr(store, "list_sessions", counted)
    laptop, phone, tablet = [await device(app, agent=CHROME) for _ in range(3)]
    as_json = await ada.client.post(
        f"/sessions/{laptop.public_id}/revoke", headers=await api_headers(ada)
    )
    assert as_json.status_code == 200
    # The form's token from a page that lists nothing (the sessions page would).
    as_form = await ada.post(f"/sessions/{phone.public_id}/revoke", page="/account/delete")
    assert (as_form.status_code, as_form.headers["Location"]) == (303, "/sessions")
    assert reads == []
    as_htmx = await ada.post(f"/sessions/{tablet.public_id}/revoke", page="/account/delete", **HTMX)
    assert f"Session {tablet.public_id} ended." in await as_htmx.get_data(as_text=True)
    assert len(reads) == 1


async def test_ending_this_session_as_json_names_it_and_signs_out(ada: Device) -> None:
    public_id = ada.public_id
    response = await ada.client.post(
        f"/sessions/{public_id}/revoke", headers=await api_headers(ada)
    )
    assert response.status_code == 200
    body = await response.get_json()
    shaped(SessionEnded, body)
    assert body == {"message": "signed out", "id": public_id}
    assert session_cookie(ada.client) is None
    assert (await ada.get("/sessions", **JSON)).status_code == 401


async def test_ending_others_and_another_session_answer_their_shapes(
    app: Quart, ada: Device
) -> None:
    laptop = await device(app, agent=CHROME)
    phone = await device(app, agent=CHROME, peer="203.0.113.9")
    one = await ada.client.post(
        f"/sessions/{laptop.public_id}/revoke", headers=await api_headers(ada)
    )
    shaped(SessionEnded, await one.get_json())
    others = await ada.client.post("/sessions/revoke-others", headers=await api_headers(ada))
    body = await others.get_json()
    shaped(OtherSessionsEnded, body)
    assert body["ended"] == 1
    assert not await phone.signed_in()


async def test_a_password_change_as_json_answers_its_shape_and_a_new_cookie(
    ada: Device,
) -> None:
    before = session_cookie(ada.client)
    response = await ada.client.post(
        "/account/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=await api_headers(ada),
    )
    assert response.status_code == 200
    body = await response.get_json()
    shaped(PasswordChanged, body)
    assert body["session"]["id"] == ada.public_id != before
    assert session_cookie(ada.client) not in (None, before)


async def test_an_address_change_answers_json_htmx_and_a_plain_form(ada: Device) -> None:
    """One outcome: JSON gets 202 and API wording, htmx the form saying the link went, a
    form without JavaScript a redirect to the page that says so."""
    as_json = await ada.client.post(
        "/account/email",
        json={"current_password": PASSWORD, "new_email": "Ada.New@example.com"},
        headers=await api_headers(ada),
    )
    assert as_json.status_code == 202
    body = await as_json.get_json()
    shaped(EmailChangeSent, body)
    assert body == {"message": "link sent to the new address", "new_email": "ada.new@example.com"}

    fields = {"current_password": PASSWORD, "new_email": "ada.htmx@example.com"}
    as_htmx = await ada.post("/account/email", fields, page="/account/email", **HTMX)
    html = await as_htmx.get_data(as_text=True)
    assert as_htmx.status_code == 200  # the page's status; 202 is the JSON answer's
    assert html.lstrip().startswith('<form id="email-form"')
    assert email_change.SENT in html

    fields = {"current_password": PASSWORD, "new_email": "ada.form@example.com"}
    as_form = await ada.post("/account/email", fields, page="/account/email")
    assert (as_form.status_code, as_form.headers["Location"]) == (303, "/account/email?sent=1")


async def test_refusals_keep_their_codes_in_api_wording(ada: Device) -> None:
    headers = await api_headers(ada)
    wrong = await ada.client.post(
        "/account/email",
        json={"current_password": "not my password", "new_email": "ada.new@example.com"},
        headers=headers,
    )
    assert wrong.status_code == 403
    assert (await wrong.get_json())["code"] == "wrong_password"
    invalid = await ada.client.post(
        "/account/email", json={"current_password": PASSWORD, "new_email": "nope"}, headers=headers
    )
    assert invalid.status_code == 422
    body = await invalid.get_json()
    assert (body["code"], set(body["fields"])) == ("validation_failed", {"new_email"})
    assert "below" not in body["message"]
    missing = await ada.client.post("/account/delete", json={}, headers=headers)
    assert missing.status_code == 422
    assert (await missing.get_json())["fields"] == {"password": "Enter your password."}
    not_a_string = await ada.client.post("/account/delete", json={"password": 1}, headers=headers)
    assert not_a_string.status_code == 422
    assert (await not_a_string.get_json())["fields"] == {"password": "This must be a string."}


async def test_deleting_the_account_as_json_answers_its_shape(ada: Device) -> None:
    response = await ada.client.post(
        "/account/delete", json={"password": PASSWORD}, headers=await api_headers(ada)
    )
    assert response.status_code == 200
    shaped(AccountDeleted, await response.get_json())


@pytest.mark.parametrize("path", ["/sessions/revoke-others", "/sessions/AAAAAAAAAAAA/revoke"])
async def test_the_statuses_of_a_post_without_a_body_are_real(ada: Device, path: str) -> None:
    """They take no body, but the CSRF token may come as a form field: a form too large to
    look for it in is a 413, one without it a 403; with no session, a 401 comes first."""
    headers = {**JSON, "User-Agent": ada.agent, "Content-Type": "application/x-www-form-urlencoded"}
    large = await ada.client.post(path, data=b"x=" + b"y" * 20_000, headers=headers)
    assert large.status_code == 413
    assert (await large.get_json())["code"] == "too_large"
    missing = await ada.client.post(path, data=b"x=y", headers=headers)
    assert missing.status_code == 403
    assert (await missing.get_json())["code"] == "csrf_failed"
    stranger = await ada.app.test_client().post(path, headers=JSON)
    assert stranger.status_code == 401

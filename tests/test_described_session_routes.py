"""The countdown, the extension, sign-out, the strength hint and the health routes as
described: each answers JSON clients its declared shape (web/schemas.py), and browsers,
htmx and forms without JavaScript what they always got, from one typed outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp.infra.database import EXTENSION as DATABASE
from quartapp.web.schemas import (
    Countdown,
    Extended,
    Health,
    NotReady,
    PasswordStrength,
    Ready,
    SignedOut,
)

from .conftest import Auth

JSON = {"Accept": "application/json"}
HTMX = {"HX-Request": "true"}
LOOPBACK = {"client": ("127.0.0.1", 50000)}
OUTSIDE = {"client": ("198.51.100.7", 50000)}


async def api_token(client: QuartClient) -> str:
    token: str = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    return token


async def json_of(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    data: dict[str, Any] = await response.get_json()
    return data


# -- the countdown and the extension ---------------------------------------------------------


async def test_the_countdown_answers_its_shape_signed_in_or_not(
    client: QuartClient, auth: Auth
) -> None:
    anonymous = await json_of(await client.get("/session/countdown", headers=JSON))
    assert Countdown.model_validate(anonymous) == Countdown(expires_in=0, expired=True)
    await auth.sign_up()
    live = Countdown.model_validate(
        await json_of(await client.get("/session/countdown", headers=JSON))
    )
    assert not live.expired
    assert 598 <= live.expires_in <= 600


async def test_the_countdown_says_why_another_session_ended_this_one(app: Quart) -> None:
    ada = Auth(app.test_client())
    await ada.sign_up()
    laptop = Auth(app.test_client())
    await laptop.sign_in()
    assert (await ada.post("/sessions/revoke-others")).status_code == 303
    ended = await json_of(await laptop.client.get("/session/countdown", headers=JSON))
    assert Countdown.model_validate(ended) == Countdown(
        expires_in=0, expired=True, ended="elsewhere"
    )
    # Its own sign-out is no news to it: no reason.
    await ada.post("/logout")
    signed_out = await json_of(await ada.client.get("/session/countdown", headers=JSON))
    assert signed_out == {"expires_in": 0, "expired": True}


async def test_extend_answers_json_htmx_and_a_form_without_javascript(
    client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    token = await auth.page_token()
    as_json = await client.post("/session/extend", headers={**JSON, "X-CSRF-Token": token})
    assert as_json.status_code == 200
    assert set(await json_of(as_json)) == set(Extended.model_fields)
    as_htmx = await client.post("/session/extend", headers={**HTMX, "X-CSRF-Token": token})
    assert as_htmx.status_code == 200
    assert "Your session has been extended." in await as_htmx.get_data(as_text=True)
    as_form = await client.post("/session/extend", form={"csrf_token": token})
    assert (as_form.status_code, as_form.headers["Location"]) == (303, "/home")


async def test_extend_and_sign_out_need_a_session(client: QuartClient) -> None:
    for path in ("/session/extend", "/logout"):
        refused = await client.post(path, headers=JSON)
        assert refused.status_code == 401
        assert (await json_of(refused))["code"] == "unauthenticated"


async def test_a_post_without_a_body_of_its_own_refuses_an_oversized_form(
    client: QuartClient, auth: Auth
) -> None:
    """The CSRF token of a web form is read from the body: a body over the limit is a 413,
    as the document says."""
    await auth.sign_up()
    for path in ("/session/extend", "/logout"):
        response = await client.post(path, form={"filler": "x" * 20_000}, headers=JSON)
        assert response.status_code == 413
        assert (await json_of(response))["code"] == "too_large"


# -- sign-out ---------------------------------------------------------------------------------


async def test_sign_out_answers_json_htmx_and_a_form_without_javascript(
    make_app: Callable[..., Any],
) -> None:
    async def signed_out(**headers: str) -> Any:
        auth = Auth((await make_app()).test_client())
        email = f"{next(iter(headers), 'form').lower()}@example.com"
        assert (await auth.sign_up(email)).status_code == 303
        token = await auth.page_token()
        return await auth.client.post("/logout", headers={**headers, "X-CSRF-Token": token})

    as_json = await signed_out(**JSON)
    assert as_json.status_code == 200
    assert SignedOut.model_validate(await json_of(as_json)) == SignedOut(message="signed out")
    as_htmx = await signed_out(**HTMX)
    assert (as_htmx.status_code, as_htmx.headers["HX-Redirect"]) == (204, "/?signed_out=1")
    as_form = await signed_out()
    assert (as_form.status_code, as_form.headers["Location"]) == (303, "/?signed_out=1")


# -- the strength hint ------------------------------------------------------------------------


async def test_the_strength_of_a_password_as_json(client: QuartClient) -> None:
    headers = {"X-CSRF-Token": await api_token(client)}
    weak = await client.post(
        "/api/v1/password-strength", json={"password": "password123"}, headers=headers
    )
    assert weak.status_code == 200
    judged = PasswordStrength.model_validate(await json_of(weak))
    assert not judged.acceptable
    assert judged.message
    strong = await client.post(
        "/api/v1/password-strength",
        json={"new_password": "tulip granite harbour kettle"},
        headers=headers,
    )
    body = await json_of(strong)
    assert body == {"score": body["score"], "acceptable": True, "message": None}
    assert "tulip" not in await strong.get_data(as_text=True)


async def test_no_password_is_a_422_for_json_and_no_hint_for_htmx(client: QuartClient) -> None:
    token = await api_token(client)
    as_json = await client.post(
        "/api/v1/password-strength",
        json={"email": "ada@example.com"},
        headers={"X-CSRF-Token": token},
    )
    assert as_json.status_code == 422
    assert (await json_of(as_json))["fields"] == {"password": "Enter a password."}
    as_htmx = await client.post(
        "/api/v1/password-strength",
        form={"password": "", "csrf_token": token},
        headers=HTMX,
    )
    assert as_htmx.status_code == 200
    assert (await as_htmx.get_data(as_text=True)).strip() == ""


async def test_the_strength_body_is_read_as_its_model(client: QuartClient) -> None:
    headers = {"X-CSRF-Token": await api_token(client)}
    wrong_type = await client.post(
        "/api/v1/password-strength", json={"password": 12345678}, headers=headers
    )
    assert wrong_type.status_code == 422
    assert (await json_of(wrong_type))["fields"] == {"password": "This must be a string."}
    not_an_object = await client.post(
        "/api/v1/password-strength", json=["password"], headers=headers
    )
    assert not_an_object.status_code == 400


# -- health -----------------------------------------------------------------------------------


async def test_healthz_answers_its_shape(client: QuartClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert Health.model_validate(await json_of(response)) == Health(status="ok")


async def test_readyz_is_ready_with_its_shape(client: QuartClient) -> None:
    public = await json_of(await client.get("/readyz", scope_base=OUTSIDE))
    assert public == {"status": "ok"}  # the details are left out, not null
    detailed = Ready.model_validate(await json_of(await client.get("/readyz", scope_base=LOOPBACK)))
    assert (detailed.redis, detailed.mysql) == ("ok", "ok")


@pytest.mark.parametrize(("scope", "details"), [(OUTSIDE, False), (LOOPBACK, True)])
async def test_readyz_unready_is_its_own_503(
    app: Quart, monkeypatch: pytest.MonkeyPatch, scope: dict[str, Any], details: bool
) -> None:
    async def refused() -> None:
        raise ConnectionRefusedError()

    monkeypatch.setattr(app.extensions[DATABASE], "ping", refused)
    response = await app.test_client().get("/readyz", scope_base=scope)
    assert response.status_code == 503
    assert response.headers["Cache-Control"] == "no-store"
    body = await json_of(response)
    if not details:
        assert body == {"status": "unavailable"}
        return
    unready = NotReady.model_validate(body)
    assert unready.redis == "ok"
    assert unready.mysql == "unavailable: ConnectionRefusedError"

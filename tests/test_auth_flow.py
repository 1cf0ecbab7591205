"""Sign-up, sign-in and sign-out through the routes, as browsers, htmx and JSON clients."""

from __future__ import annotations

from quart import Quart
from quart.testing import QuartClient
from redis.asyncio import Redis

from quartapp.accounts.models import User
from quartapp.accounts.sign_in_flow import Way, way_of
from quartapp.sessions.store import SessionRecord

from .conftest import PASSWORD, Auth, csrf_from, session_cookie

HTMX = {"HX-Request": "true"}


async def test_sign_up_signs_in_and_shows_home(client: QuartClient, auth: Auth) -> None:
    response = await auth.sign_up("Ada@Example.com")
    assert response.status_code == 303
    assert response.headers["Location"] == "/home"
    home = await client.get("/home")
    text = await home.get_data(as_text=True)
    assert home.status_code == 200
    assert "ada@example.com" in text
    assert 'id="session-countdown"' in text
    assert 'hx-get="/session/countdown"' in text
    assert await User.filter(email="ada@example.com").count() == 1


async def test_password_is_stored_as_bcrypt_hash(auth: Auth) -> None:
    await auth.sign_up()
    user = await User.get(email="ada@example.com")
    assert user.password_hash.startswith("$2b$04$")
    assert PASSWORD not in user.password_hash


async def test_sign_in_and_out(client: QuartClient, auth: Auth) -> None:
    await auth.sign_up()
    await auth.post("/logout")
    assert (await client.get("/home")).status_code == 303

    response = await auth.sign_in("ADA@example.com")
    assert response.status_code == 303
    assert response.headers["Location"] == "/home"
    assert (await client.get("/home")).status_code == 200

    response = await auth.post("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/?signed_out=1"
    signed_out = await (await client.get("/?signed_out=1")).get_data(as_text=True)
    assert "You are signed out." in signed_out
    assert "You are signed out." not in await (await client.get("/")).get_data(as_text=True)
    home = await client.get("/home")
    assert home.status_code == 303
    assert home.headers["Location"] == "/"


async def test_signed_in_visitor_is_sent_home(client: QuartClient, auth: Auth) -> None:
    await auth.sign_up()
    for path in ("/", "/register"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"] == "/home"


async def test_htmx_sign_up_redirects_with_hx_redirect(client: QuartClient, auth: Auth) -> None:
    response = await auth.sign_up(**HTMX)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/home"
    assert (await client.get("/home")).status_code == 200


async def test_htmx_errors_come_back_as_the_form_alone(auth: Auth) -> None:
    response = await auth.sign_up("not-an-email", "short", **HTMX)
    text = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert text.lstrip().startswith("<form")
    assert "<html" not in text
    assert 'value="not-an-email"' in text
    assert "This is not a valid email address" in text
    assert "Use at least 8 characters." in text
    assert 'aria-invalid="true"' in text
    assert "short" not in text.replace("Use at least", "")  # the password is never echoed
    assert response.headers["Vary"] == "HX-Request"


async def test_form_errors_without_javascript_render_the_whole_page(auth: Auth) -> None:
    response = await auth.sign_up("ada@example.com", "short")
    text = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" in text
    assert 'value="ada@example.com"' in text
    assert "Use at least 8 characters." in text


async def test_browser_forms_post_to_their_own_page(client: QuartClient, auth: Auth) -> None:
    """Without JavaScript a refused form comes back at its page's own address, so a reload
    shows the page instead of posting again; with htmx, and for JSON, the API answers."""
    for page, api in (("/register", "/api/v1/signup"), ("/", "/api/v1/signin")):
        html = await (await client.get(page)).get_data(as_text=True)
        assert f'method="post" action="{page}"' in html
        assert f'hx-post="{api}"' in html
    token = await csrf_from(client, "/register")
    refused = await client.post(
        "/register", form={"email": "ada@example.com", "password": "short", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "Use at least 8 characters." in await refused.get_data(as_text=True)
    created = await client.post(
        "/register", form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert created.status_code == 303
    assert created.headers["Location"] == "/home"
    await auth.post("/logout")
    token = await csrf_from(client, "/")
    wrong = await client.post(
        "/", form={"email": "ada@example.com", "password": "not it", "csrf_token": token}
    )
    assert wrong.status_code == 401
    assert "Incorrect email or password." in await wrong.get_data(as_text=True)
    right = await client.post(
        "/", form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert right.status_code == 303
    assert right.headers["Location"] == "/home"
    assert (await client.post("/", form={"email": "x"})).status_code == 403  # no CSRF token


async def test_the_signed_out_message_never_echoes_the_address(client: QuartClient) -> None:
    html = await (await client.get("/?signed_out=<b>hi</b>")).get_data(as_text=True)
    assert "You are signed out." not in html
    assert "<b>hi</b>" not in html


async def test_wrong_password_and_unknown_email_read_the_same(
    client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    await auth.post("/logout")
    wrong = await auth.sign_in("ada@example.com", "wrong password", **HTMX)
    unknown = await auth.sign_in("nobody@example.com", PASSWORD, **HTMX)
    assert wrong.status_code == unknown.status_code == 401
    wrong_text = (await wrong.get_data(as_text=True)).replace("ada@example.com", "EMAIL")
    unknown_text = (await unknown.get_data(as_text=True)).replace("nobody@example.com", "EMAIL")
    strip = lambda t: "\n".join(  # noqa: E731 - CSRF tokens differ by design
        line for line in t.splitlines() if "csrf_token" not in line
    )
    assert strip(wrong_text) == strip(unknown_text)
    assert "Incorrect email or password." in wrong_text
    assert session_cookie(client) is None


async def test_duplicate_email_in_any_case_is_409(auth: Auth, client: QuartClient) -> None:
    await auth.sign_up("ada@example.com")
    await auth.post("/logout")
    response = await auth.sign_up("ADA@EXAMPLE.COM", **HTMX)
    assert response.status_code == 409
    assert "This email is already registered." in await response.get_data(as_text=True)
    assert await User.all().count() == 1


async def test_json_api(client: QuartClient) -> None:
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    headers = {"X-CSRF-Token": token}
    body = {"email": "ada@example.com", "password": PASSWORD}

    created = await client.post("/api/v1/signup", json=body, headers=headers)
    assert created.status_code == 201
    data = await created.get_json()
    assert data["message"] == "account created"
    assert data["email"] == "ada@example.com"
    assert 590 <= data["session"]["expires_in"] <= 600

    # Signed in, the anonymous token counts no more; the answer carries the session's own.
    stale = await client.post("/api/v1/signup", json=body, headers=headers)
    assert stale.status_code == 403
    headers = {"X-CSRF-Token": data["csrf_token"]}
    duplicate = await client.post("/api/v1/signup", json=body, headers=headers)
    assert duplicate.status_code == 409
    assert (await duplicate.get_json())["code"] == "email_taken"
    assert "already" in (await duplicate.get_json())["message"]

    invalid = await client.post(
        "/api/v1/signup", json={"email": "x", "password": "y"}, headers=headers
    )
    assert invalid.status_code == 422
    assert set((await invalid.get_json())["fields"]) == {"email", "password"}

    bad = await client.post(
        "/api/v1/signin", json={**body, "password": "nope nope"}, headers=headers
    )
    assert bad.status_code == 401
    assert await bad.get_json() == {
        "code": "invalid_credentials",
        "message": "Incorrect email or password.",
    }

    good = await client.post("/api/v1/signin", json=body, headers=headers)
    assert good.status_code == 200
    signed_in = await good.get_json()
    assert signed_in["email"] == "ada@example.com"

    out = await client.post("/logout", json={}, headers={"X-CSRF-Token": signed_in["csrf_token"]})
    assert out.status_code == 200
    assert (await client.get("/home", headers={"Accept": "application/json"})).status_code == 401


async def test_failed_sign_in_leaves_no_session(
    auth: Auth, redis: Redis, redis_prefix: str
) -> None:
    await auth.sign_in("nobody@example.com", PASSWORD)
    assert [key async for key in redis.scan_iter(match=f"{redis_prefix}*")] == []


async def test_sign_out_confirmation_page(client: QuartClient, auth: Auth) -> None:
    anonymous = await client.get("/logout")
    assert anonymous.status_code == 303
    await auth.sign_up()
    page = await client.get("/logout")
    text = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'action="/logout"' in text
    assert 'method="post"' in text


async def test_a_token_from_before_sign_in_is_refused_after_it(client: QuartClient) -> None:
    """Once signed in, only tokens bound to the session count, and the anonymous cookie is
    dropped at sign-in (a planted one cannot carry over either)."""
    anonymous = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    signed_up = await client.post(
        "/api/v1/signup",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"X-CSRF-Token": anonymous},
    )
    assert signed_up.status_code == 201
    dropped = [c for c in signed_up.headers.getlist("Set-Cookie") if "quartapp_csrf=" in c]
    assert dropped
    assert all("Max-Age=0" in cookie or "01 Jan 1970" in cookie for cookie in dropped)
    stale = await client.post(
        "/sessions/revoke-others", json={}, headers={"X-CSRF-Token": anonymous}
    )
    assert stale.status_code == 403
    fresh = (await signed_up.get_json())["csrf_token"]
    ok = await client.post(
        "/sessions/revoke-others",
        json={},
        headers={"X-CSRF-Token": fresh, "Accept": "application/json"},
    )
    assert ok.status_code == 200


async def test_the_accept_header_chooses_json_or_a_page(client: QuartClient, auth: Auth) -> None:
    """JSON only when the client ranks it above HTML, however it spells it."""
    await auth.sign_up()
    cases = {
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": "page",
        "*/*": "page",
        "application/xhtml+xml": "page",
        "text/html;q=0.9, application/json": "json",
        "Application/JSON": "json",
        "application/*": "json",
        "application/json;q=0.5, text/html": "page",
    }
    for accept, wanted in cases.items():
        response = await client.get("/sessions", headers={"Accept": accept})
        assert response.status_code == 200, accept
        got = "json" if response.mimetype == "application/json" else "page"
        assert got == wanted, accept


async def test_each_session_keeps_how_it_was_signed_in(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    store = app.extensions["quartapp.sessions"].store
    auth_extension = app.extensions["QUART_AUTH"][0]

    async def this_session() -> SessionRecord | None:
        token = auth_extension.load_token(session_cookie(client), app)
        return await store.load(token, touch=False)  # type: ignore[no-any-return]

    await auth.sign_up()
    signed_up = await this_session()
    assert signed_up is not None
    assert way_of(signed_up) is Way.SIGN_UP
    await auth.post("/logout")
    await auth.sign_in()
    signed_in = await this_session()
    assert signed_in is not None
    assert way_of(signed_in) is Way.PASSWORD

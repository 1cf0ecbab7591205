"""Policies over the whole URL map, so a new route cannot forget them."""

from __future__ import annotations

import re

from quart import Quart
from quart.testing import QuartClient

from .conftest import Auth

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def routes(app: Quart) -> list[tuple[str, str, set[str]]]:
    """Each route's path (a whole number where it takes one), endpoint and methods."""
    return [
        (
            re.sub(r"<int:\w+>", "1", rule.rule),
            rule.endpoint,
            set(rule.methods or ()) - {"HEAD", "OPTIONS"},
        )
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    ]


def test_every_route_is_public_or_behind_sign_in(app: Quart) -> None:
    undeclared = [
        path
        for path, endpoint, _ in routes(app)
        if getattr(app.view_functions[endpoint], "access", None) not in {"public", "signed_in"}
    ]
    assert undeclared == []


async def test_signed_in_routes_send_anonymous_visitors_to_sign_in(
    app: Quart, client: QuartClient
) -> None:
    guarded = [
        (path, methods)
        for path, endpoint, methods in routes(app)
        if app.view_functions[endpoint].access == "signed_in"  # type: ignore[attr-defined]
    ]
    assert guarded
    for path, methods in guarded:
        for method in methods - STATE_CHANGING:
            response = await client.open(path, method=method)
            # Back to the page asked for once signed in (tests/test_next_page.py).
            expected = "/" if path == "/home" else f"/?next={path}"
            assert (response.status_code, response.headers.get("Location")) == (303, expected), path


async def test_every_state_changing_route_checks_csrf(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()  # signed in, so only the missing token can be the reason for a 403
    changing = [(p, m) for p, _, methods in routes(app) for m in methods & STATE_CHANGING]
    assert changing
    for path, method in changing:
        response = await client.open(path, method=method, form={"email": "a@example.com"})
        assert response.status_code == 403, f"{method} {path} answered {response.status_code}"
    assert (await client.get("/home")).status_code == 200


async def test_every_form_carries_a_csrf_token(client: QuartClient, auth: Auth, app: Quart) -> None:
    pages = ["/", "/register"]
    bodies = [await (await client.get(p)).get_data(as_text=True) for p in pages]
    await auth.sign_up()
    await Auth(app.test_client()).sign_in()  # a second session, so every sessions form shows
    for page in ("/home", "/logout", "/sessions", "/account/password", "/account/delete"):
        bodies.append(await (await client.get(page)).get_data(as_text=True))
    forms = 0
    for body in bodies:
        for form in re.findall(r"<form\b.*?</form>", body, flags=re.S):
            forms += 1
            assert 'name="csrf_token"' in form, form
    assert forms >= 12

"""A used or expired mailed link offers the step that fits its kind and the visitor: a new
verification link (or signing in to send one), a new address change, a new password link;
only a visitor who is not signed in is offered to sign in, a signed-in one the way home.
The same for a whole page, an htmx swap and JSON (a 410 with the step in words)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from quart import Quart

from quartapp.accounts.mail_tokens import LinkGrant, Purpose, get_mail_tokens
from quartapp.accounts.queries import find_user, mark_email_verified

from .conftest import Auth, csrf_from

JSON = {"Accept": "application/json"}
HTMX = {"HX-Request": "true"}
PATHS: dict[Purpose, str] = {
    "reset": "/password/reset/",
    "verify": "/email/verify/",
    "email": "/email/change/",
    "undo": "/email/undo/",
}
# What each kind's dead link offers, signed out and signed in (the words of its links and
# buttons, in order).
STEPS: dict[Purpose, tuple[list[str], list[str]]] = {
    "reset": (
        ["Ask for a new password link", "Sign in"],
        ["Ask for a new password link", "Back home"],
    ),
    "verify": (
        ["Sign in to send a new verification link"],
        ["Send a new verification link", "Back home"],
    ),
    "email": (
        ["Sign in to ask for a new address change"],
        ["Ask for a new address change", "Back home"],
    ),
    "undo": (
        ["Ask for a new password link", "Sign in"],
        ["Ask for a new password link", "Back home"],
    ),
}
# The step in words on the page, signed out and signed in.
SAID: dict[Purpose, tuple[str, str]] = {
    "reset": ("Ask for a new password link.", "Ask for a new password link."),
    "verify": ("Sign in to send yourself a new one.", "Send yourself a new one."),
    "email": (
        "Sign in to ask for a new address change.",
        "Ask for a new address change on your account page.",
    ),
    "undo": ("contact the people who run this site.", "contact the people who run this site."),
}
# And for JSON clients, naming the API's routes instead of the pages.
SAID_TO_PROGRAMS: dict[Purpose, tuple[str, str]] = {
    "reset": (
        "Ask for a new one: POST /password/forgot.",
        "Ask for a new one: POST /password/forgot.",
    ),
    "verify": (
        "Sign in, then POST /email/verify/resend for a new one.",
        "POST /email/verify/resend for a new one.",
    ),
    "email": (
        "Sign in, then ask for a new address change: POST /account/email.",
        "Ask for a new address change: POST /account/email.",
    ),
    "undo": SAID["undo"],
}
NAMED = {
    "reset": "password reset link",
    "verify": "verification link",
    "email": "address-change link",
    "undo": "undo link",
}
STEP = re.compile(r'<a href="([^"]*)">([^<]*)</a>|<button type="submit">([^<]*)</button>')


async def used_link(app: Quart, purpose: Purpose, user_id: int, email: str) -> str:
    """The path of a real link of ``purpose`` for the account, already used up."""
    async with app.app_context():
        tokens = get_mail_tokens()
        link_id = await tokens.issue(purpose, LinkGrant(user_id, 1, email), 3600)
        token = tokens.token(purpose, link_id)
        assert await tokens.use(purpose, token) is not None
    return PATHS[purpose] + token


def steps_in(body: str) -> list[tuple[str, str]]:
    """The (label, href or "post") of each way on in the dead-link part of a page."""
    part = body[body.index('id="link-dead"') :]
    found = []
    for href, label, button in STEP.findall(part):
        found.append((button, "post") if button else (label, href))
    return found


async def ada(app: Quart) -> tuple[Auth, int]:
    """Ada, signed up and signed in, and her account's id."""
    auth = Auth(app.test_client())
    assert (await auth.sign_up()).status_code == 303
    user = await find_user("ada@example.com")
    assert user is not None
    return auth, int(user.id)


@pytest.mark.parametrize("purpose", list(PATHS))
@pytest.mark.parametrize("signed_in", [False, True], ids=["signed out", "signed in"])
async def test_a_dead_link_offers_the_step_that_fits_it(
    app: Quart, purpose: Purpose, signed_in: bool
) -> None:
    auth, user_id = await ada(app)
    path = await used_link(app, purpose, user_id, "ada@example.com")
    client = auth.client if signed_in else app.test_client()
    expected = STEPS[purpose][signed_in]
    for method in ("GET", "POST"):
        kw: dict[str, Any] = {}
        if method == "POST":
            token = await csrf_from(client, "/home" if signed_in else "/")
            kw["form"] = {"csrf_token": token, "new_password": "a fine new passphrase"}
        for headers in ({}, HTMX):
            dead = await client.open(path, method=method, headers=headers, **kw)
            assert dead.status_code == 410, (method, headers)
            assert dead.headers["Referrer-Policy"] == "no-referrer"
            body = await dead.get_data(as_text=True)
            assert NAMED[purpose] in body
            assert SAID[purpose][signed_in] in body
            steps = steps_in(body)
            assert [label for label, _ in steps] == expected, (method, headers)
            if headers:
                assert "<html" not in body  # the fragment alone
                if signed_in:
                    assert "Sign in" not in body
            if signed_in:
                assert ("Back home", "/home") in steps
                assert not any(label.startswith("Sign in") for label, _ in steps)
            else:
                assert steps[-1][1] == "/"  # the sign-in page
            if purpose in ("verify", "email"):
                assert "Ask for a new password link" not in body
        answer = await client.open(path, method=method, headers=JSON, **kw)
        assert answer.status_code == 410
        body = await answer.get_json()
        assert body["code"] == "link_dead"
        message = body["message"]
        assert NAMED[purpose] in message
        assert message.endswith(SAID_TO_PROGRAMS[purpose][signed_in])
        assert "page" not in message


async def test_the_dead_verification_link_sends_a_new_one_for_the_signed_in(app: Quart) -> None:
    auth, user_id = await ada(app)
    path = await used_link(app, "verify", user_id, "ada@example.com")
    dead = await auth.client.get(path)
    (_, action), _ = steps_in(await dead.get_data(as_text=True))
    assert action == "post"
    form = re.search(r'<form method="post" action="([^"]+)">', await dead.get_data(as_text=True))
    assert form is not None
    sent = await auth.post(form.group(1))
    assert (sent.status_code, sent.headers["Location"]) == (303, "/home?sent=1")


async def test_a_dead_verification_link_of_a_verified_address_says_so(app: Quart) -> None:
    auth, user_id = await ada(app)
    path = await used_link(app, "verify", user_id, "ada@example.com")
    await mark_email_verified(user_id, "ada@example.com")
    dead = await auth.client.get(path)
    body = await dead.get_data(as_text=True)
    assert "Your email address is verified already." in body
    assert [label for label, _ in steps_in(body)] == ["Back home"]

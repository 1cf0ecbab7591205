"""Passkeys through the routes: adding one (after the password), listing, renaming and
removing them, and signing in with one, answered by a software authenticator
(tests/support/authenticator.py) that can also answer wrongly in every way the server
must refuse: malformed JSON, another challenge, origin or RP id, a used challenge, an
unknown credential, another account's user handle, no user verification, a counter that
goes back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart
from quart.testing import QuartClient
from redis.asyncio import Redis

from quartapp.accounts.email_undo import offer_undo
from quartapp.accounts.mail_tokens import get_mail_tokens
from quartapp.accounts.models import Passkey, User
from quartapp.accounts.sign_in_flow import Way, way_of
from quartapp.sessions.store import SessionStore

from .conftest import PASSWORD, PUBLIC_URL, Auth, csrf_from
from .support.authenticator import SoftAuthenticator, b64url, unb64url
from .support.mail_servers import MailCatcher, text_of, to
from .support.processes import Process
from .test_sessions import Counter
from .test_two_factor import Clock, clock, code_form, signed_up_and_enrolled

__all__ = ["clock"]  # a fixture, from the second factor's tests

JSON = {"Accept": "application/json"}


# Answers the authenticator can be made to give wrongly, for adding a passkey and signing in
# with one alike, each with what makes it wrong.
TAMPERED: list[tuple[dict[str, Any], str]] = [
    ({"origin": "https://evil.example"}, "another origin"),
    ({"rp_id": "evil.example"}, "another RP id"),
    ({"challenge": b64url(b"x" * 64)}, "a challenge the server never made"),
    ({"verified": False}, "no user verification"),
]


def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator(origin=PUBLIC_URL)


async def token_of(client: QuartClient, signed_in: bool = True) -> str:
    return await csrf_from(client, "/home" if signed_in else "/")


async def post_json(client: QuartClient, path: str, body: Any, token: str) -> Any:
    return await client.post(path, json=body, headers={"X-CSRF-Token": token, **JSON})


async def registration_options(
    client: QuartClient, password: str = PASSWORD
) -> tuple[Any, dict[str, Any]]:
    token = await token_of(client)
    answer = await post_json(
        client,
        "/api/v1/passkeys/registration/options",
        {"current_password": password},
        token,
    )
    body = await answer.get_json()
    return answer, body.get("public_key", body)


async def register(
    client: QuartClient, device: SoftAuthenticator, name: str = "", **tamper: Any
) -> Any:
    answer, options = await registration_options(client)
    assert answer.status_code == 200, options
    return await add_credential(client, device.create(options, **tamper), name=name)


async def add_credential(client: QuartClient, credential: dict[str, Any], **fields: Any) -> Any:
    """Post a made credential (with any other ``fields``) to add it as a passkey."""
    return await post_json(
        client,
        "/api/v1/passkeys/registration",
        {"credential": credential, **fields},
        await token_of(client),
    )


async def sign_in_options(client: QuartClient) -> dict[str, Any]:
    answer = await post_json(
        client, "/api/v1/passkeys/authentication/options", {}, await token_of(client, False)
    )
    assert answer.status_code == 200, await answer.get_data(as_text=True)
    options: dict[str, Any] = (await answer.get_json())["public_key"]
    return options


async def sign_in_with(client: QuartClient, credential: dict[str, Any]) -> Any:
    return await post_json(
        client,
        "/api/v1/signin/passkey",
        {"credential": credential},
        await token_of(client, False),
    )


async def passkey_sign_in(app: Quart, device: SoftAuthenticator, **tamper: Any) -> Any:
    """A new browser signs in with ``device``'s (first) passkey."""
    client = app.test_client()
    options = await sign_in_options(client)
    return await sign_in_with(client, device.get(options, **tamper))


@pytest.fixture
async def ada(auth: Auth) -> Auth:
    assert (await auth.sign_up()).status_code == 303
    return auth


async def test_add_list_rename_and_remove_a_passkey_as_json(app: Quart, ada: Auth) -> None:
    device = authenticator()
    added = await register(ada.client, device, name="  My   laptop ")
    assert added.status_code == 201, await added.get_data(as_text=True)
    passkey = (await added.get_json())["passkey"]
    assert passkey["name"] == "My laptop"
    assert passkey["last_used_at"] is None
    listed = await (await ada.client.get("/api/v1/passkeys", headers=JSON)).get_json()
    assert [item["id"] for item in listed["passkeys"]] == [passkey["id"]]
    account = await (await ada.client.get("/api/v1/account", headers=JSON)).get_json()
    assert account["passkeys"] == 1

    token = await token_of(ada.client)
    renamed = await post_json(
        ada.client, f"/api/v1/passkeys/{passkey['id']}/rename", {"name": "Phone"}, token
    )
    assert renamed.status_code == 200
    assert (await renamed.get_json())["passkey"]["name"] == "Phone"
    blank = await post_json(
        ada.client, f"/api/v1/passkeys/{passkey['id']}/rename", {"name": " \x1b\x07 "}, token
    )
    assert blank.status_code == 422
    noisy = await post_json(
        ada.client, f"/api/v1/passkeys/{passkey['id']}/rename", {"name": "Ph\x1bone\n2"}, token
    )
    assert (await noisy.get_json())["passkey"]["name"] == "Ph one 2"
    assert "name" in (await blank.get_json())["fields"]

    removed = await post_json(ada.client, f"/api/v1/passkeys/{passkey['id']}/remove", {}, token)
    assert removed.status_code == 200
    body = await removed.get_json()
    assert body["credential_id"] == b64url(device.credentials[0].id)
    assert body["accepted"] == {
        "rp_id": "quartapp.test",
        "user_id": b64url(device.credentials[0].user_handle),
        "credential_ids": [],
    }
    assert (await (await ada.client.get("/api/v1/passkeys", headers=JSON)).get_json())[
        "passkeys"
    ] == []
    again = await post_json(ada.client, f"/api/v1/passkeys/{passkey['id']}/remove", {}, token)
    assert again.status_code == 404
    # The removed passkey signs in no more (and the browser may forget it).
    refused = await passkey_sign_in(app, device)
    assert refused.status_code == 401
    assert (await refused.get_json())["code"] == "passkey_unknown"


async def test_a_passkey_without_a_printable_name_is_named_for_its_device(ada: Auth) -> None:
    added = await register(ada.client, authenticator(), name="\x1c\x95 ")
    assert added.status_code == 201
    # The test client's device, as the sessions list names it.
    assert (await added.get_json())["passkey"]["name"] == "Unknown browser"


async def test_the_page_adds_through_its_script_and_renames_and_removes_with_plain_forms(
    ada: Auth,
) -> None:
    page = await ada.client.get("/account/passkeys")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert "You have no passkeys yet." in html
    assert 'id="passkey-add-form" hidden' in html  # shown by static/passkeys.js
    assert "/static/passkeys.js" in html
    said = "A passkey signs you in with your fingerprint, face or a security key"
    assert f"You have no passkeys. {said}" in await account_text(ada.client)
    assert (await register(ada.client, authenticator(), name="Laptop")).status_code == 201
    assert f"You have 1 passkey. {said}" in await account_text(ada.client)
    html = await (await ada.client.get("/account/passkeys?added=1")).get_data(as_text=True)
    assert "Your passkey has been added." in html
    assert "<strong>Laptop</strong>" in html
    (passkey,) = await Passkey.all()

    blank = await ada.post(f"/account/passkeys/{passkey.id}/rename", {"name": ""})
    assert blank.status_code == 422
    assert "Give the passkey a name." in await blank.get_data(as_text=True)
    renamed = await ada.post(f"/account/passkeys/{passkey.id}/rename", {"name": "Desk"})
    assert renamed.status_code == 303
    assert renamed.headers["Location"].endswith("/account/passkeys?renamed=1")
    assert (await Passkey.get(id=passkey.id)).name == "Desk"
    removed = await ada.post(f"/account/passkeys/{passkey.id}/remove")
    assert removed.status_code == 303
    assert removed.headers["Location"].endswith("/account/passkeys?removed=1")
    assert await Passkey.all().count() == 0
    account = await (await ada.client.get("/account")).get_data(as_text=True)
    assert "Add a passkey" in account


async def account_text(client: QuartClient) -> str:
    """The account page, its runs of white space read as one space, as a browser shows it."""
    return " ".join((await (await client.get("/account")).get_data(as_text=True)).split())


async def test_sign_in_with_a_passkey_is_a_complete_sign_in(app: Quart, ada: Auth) -> None:
    device = authenticator()
    assert (await register(ada.client, device)).status_code == 201
    (stored,) = await Passkey.all()
    assert stored.sign_count == 0
    assert stored.transports == "internal"
    browser = app.test_client()
    options = await sign_in_options(browser)
    assert options["rpId"] == "quartapp.test"
    assert options["userVerification"] == "required"
    assert "allowCredentials" not in options or options["allowCredentials"] == []
    signed = await sign_in_with(browser, device.get(options))
    assert signed.status_code == 200, await signed.get_data(as_text=True)
    body = await signed.get_json()
    assert body["message"] == "signed in"
    assert body["email"] == "ada@example.com"
    assert body["accepted"]["credential_ids"] == [b64url(device.credentials[0].id)]
    # A session of its own, signed in by passkey (as /sessions shows it).
    home = await browser.get("/home")
    assert home.status_code == 200
    store: SessionStore = app.extensions["quartapp.sessions"].store
    user = await User.get(email="ada@example.com")
    ways = [way_of(record) for record in await store.list_sessions(user.id)]
    assert sorted(str(way) for way in ways) == sorted([Way.SIGN_UP, Way.PASSKEY])
    stored = await Passkey.get(id=stored.id)
    assert stored.sign_count == 1
    assert stored.last_used_at is not None


async def test_options_come_from_the_public_url_never_the_host(app: Quart, ada: Auth) -> None:
    token = await token_of(ada.client)
    answer = await ada.client.post(
        "/api/v1/passkeys/registration/options",
        json={"current_password": PASSWORD},
        headers={"X-CSRF-Token": token, "Host": "evil.example", **JSON},
    )
    options = (await answer.get_json())["public_key"]
    assert options["rp"]["id"] == "quartapp.test"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    # The user handle is random: neither the account's id nor its address.
    handle = unb64url(options["user"]["id"])
    user = await User.get(email="ada@example.com")
    assert len(handle) == 32
    assert str(user.id).encode() != handle
    assert b"ada" not in handle


async def test_challenges_live_five_minutes_at_most_and_hold_no_secret(
    app: Quart, ada: Auth, redis: Redis, redis_prefix: str
) -> None:
    await registration_options(ada.client)
    await sign_in_options(app.test_client())
    keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}passkey:*")]
    assert len(keys) == 2
    for key in keys:
        assert 0 < await redis.ttl(key) <= 300
        assert "ada@example.com" not in await redis.get(key)


async def test_adding_needs_the_password(ada: Auth) -> None:
    wrong, body = await registration_options(ada.client, "not the password")
    assert wrong.status_code == 403
    assert body["code"] == "wrong_password"
    assert "current_password" in body["fields"]
    empty, body = await registration_options(ada.client, "")
    assert empty.status_code == 422
    # Signed out: no options at all.
    anonymous = await post_json(
        ada.client.app.test_client(),
        "/api/v1/passkeys/registration/options",
        {"current_password": PASSWORD},
        await csrf_from(ada.client.app.test_client(), "/"),
    )
    assert anonymous.status_code in (401, 403)


@pytest.mark.parametrize(("tamper", "why"), TAMPERED)
async def test_a_registration_that_does_not_check_out_is_a_400(
    ada: Auth, tamper: dict[str, Any], why: str
) -> None:
    answer = await register(ada.client, authenticator(), **tamper)
    assert answer.status_code == 400, why
    assert (await answer.get_json())["code"] == "passkey_invalid"
    assert await Passkey.all().count() == 0


async def test_registration_bad_input(app: Quart, ada: Auth) -> None:
    token = await token_of(ada.client)
    path = "/api/v1/passkeys/registration"
    malformed = await ada.client.post(
        path, data="{not json", headers={"X-CSRF-Token": token, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    form = await ada.post(path, {"credential": "x"})
    assert form.status_code == 415
    missing = await post_json(ada.client, path, {}, token)
    assert missing.status_code == 422
    assert "credential" in (await missing.get_json())["fields"]
    for junk in ({}, {"id": 1}, {"id": "a", "rawId": "a", "response": "x"}):
        answer = await post_json(ada.client, path, {"credential": junk}, token)
        assert answer.status_code == 400, junk
        assert (await answer.get_json())["code"] == "passkey_invalid"


@pytest.mark.parametrize("named", ["", "AAAA", "other-id"])
async def test_a_registration_naming_another_id_than_the_attested_one_is_a_400(
    ada: Auth, named: str
) -> None:
    """Found by the property test below: an empty ``id`` and ``rawId`` passed, since
    py_webauthn only checks that the two agree."""
    _answer, options = await registration_options(ada.client)
    credential = authenticator().create(options)
    credential["id"] = credential["rawId"] = named
    answer = await add_credential(ada.client, credential)
    assert answer.status_code == 400
    assert (await answer.get_json())["code"] == "passkey_invalid"
    assert await Passkey.all().count() == 0


async def test_a_registration_challenge_is_used_once_and_only_by_its_account(
    app: Quart, ada: Auth
) -> None:
    device = authenticator()
    _answer, options = await registration_options(ada.client)
    credential = device.create(options)
    token = await token_of(ada.client)
    path = "/api/v1/passkeys/registration"
    # Another account cannot use Ada's challenge.
    grace = Auth(app.test_client())
    await grace.sign_up("grace@example.com")
    stolen = await post_json(
        grace.client, path, {"credential": credential}, await token_of(grace.client)
    )
    assert stolen.status_code == 400
    # Taken (and so used up) by the attempt above.
    replay = await post_json(ada.client, path, {"credential": credential}, token)
    assert replay.status_code == 400
    # A fresh one works once; its replay is refused.
    _answer, options = await registration_options(ada.client)
    credential = device.create(options)
    assert (await post_json(ada.client, path, {"credential": credential}, token)).status_code == 201
    replay = await post_json(ada.client, path, {"credential": credential}, token)
    assert replay.status_code == 400
    assert await Passkey.all().count() == 1


async def test_a_passkey_is_registered_once(app: Quart, ada: Auth) -> None:
    device = authenticator()
    assert (await register(ada.client, device)).status_code == 201
    # The browser is told which passkeys the account has, so it does not make a second.
    _answer, options = await registration_options(ada.client)
    assert [item["id"] for item in options["excludeCredentials"]] == [
        b64url(device.credentials[0].id)
    ]
    assert options["excludeCredentials"][0]["transports"] == ["internal"]
    # The same credential again, for another account: refused.
    grace = Auth(app.test_client())
    await grace.sign_up("grace@example.com")
    copied = await register(grace.client, authenticator(), copy_of=device.credentials[0])
    assert copied.status_code == 409
    assert (await copied.get_json())["code"] == "passkey_taken"


@pytest.mark.parametrize(
    ("tamper", "why"), [*TAMPERED, ({"user_handle": b"someone else"}, "another user handle")]
)
async def test_a_sign_in_that_does_not_check_out_is_a_401(
    app: Quart, ada: Auth, tamper: dict[str, Any], why: str
) -> None:
    device = authenticator()
    assert (await register(ada.client, device)).status_code == 201
    refused = await passkey_sign_in(app, device, **tamper)
    assert refused.status_code == 401, why
    assert (await refused.get_json())["code"] == "passkey_refused"
    assert "session" not in (await refused.get_json())
    # The passkey itself still works.
    assert (await passkey_sign_in(app, device)).status_code == 200


async def test_a_sign_in_challenge_is_used_once(app: Quart, ada: Auth) -> None:
    device = authenticator()
    assert (await register(ada.client, device)).status_code == 201
    browser = app.test_client()
    assertion = device.get(await sign_in_options(browser))
    assert (await sign_in_with(browser, assertion)).status_code == 200
    replayed = await sign_in_with(app.test_client(), assertion)
    assert replayed.status_code == 401
    assert (await replayed.get_json())["code"] == "passkey_refused"


async def test_another_accounts_passkey_signs_in_only_to_that_account(
    app: Quart, ada: Auth
) -> None:
    ours, theirs = authenticator(), authenticator()
    assert (await register(ada.client, ours)).status_code == 201
    grace = Auth(app.test_client())
    await grace.sign_up("grace@example.com")
    assert (await register(grace.client, theirs)).status_code == 201
    # Grace's passkey claiming Ada's user handle: refused.
    ada_handle = ours.credentials[0].user_handle
    refused = await passkey_sign_in(app, theirs, user_handle=ada_handle)
    assert refused.status_code == 401
    # Each signs in to its own account.
    assert (await (await passkey_sign_in(app, theirs)).get_json())["email"] == "grace@example.com"
    assert (await (await passkey_sign_in(app, ours)).get_json())["email"] == "ada@example.com"


async def test_a_counter_that_goes_back_is_refused(app: Quart, ada: Auth) -> None:
    device = authenticator()
    assert (await register(ada.client, device)).status_code == 201
    assert (await passkey_sign_in(app, device, sign_count=5)).status_code == 200
    for cloned in (5, 3):  # the same counter again, or a lower one: a copy of the key
        refused = await passkey_sign_in(app, device, sign_count=cloned)
        assert refused.status_code == 401
        assert (await refused.get_json())["code"] == "passkey_refused"
    assert (await Passkey.get()).sign_count == 5
    assert (await passkey_sign_in(app, device, sign_count=6)).status_code == 200


async def test_sign_in_bad_input(app: Quart) -> None:
    client = app.test_client()
    token = await token_of(client, False)
    path = "/api/v1/signin/passkey"
    malformed = await client.post(
        path, data="[1, 2", headers={"X-CSRF-Token": token, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert (await malformed.get_json())["code"] == "bad_request"
    not_json = await client.post(path, form={"credential": "{}", "csrf_token": token})
    assert not_json.status_code == 415
    missing = await post_json(client, path, {"credential": "text"}, token)
    assert missing.status_code == 422
    no_token = await client.post(path, json={"credential": {}}, headers=JSON)
    assert no_token.status_code == 403
    for junk in (
        {},
        {"id": "a", "rawId": "a", "type": "public-key", "response": {}},
        {
            "id": "@@",
            "rawId": "@@",
            "type": "public-key",
            "response": {"clientDataJSON": "@@", "authenticatorData": "@@", "signature": "@@"},
        },
    ):
        answer = await post_json(client, path, {"credential": junk}, token)
        assert answer.status_code == 401, junk
        assert (await answer.get_json())["code"] == "passkey_refused"


async def test_failed_passkey_sign_ins_count_in_the_sign_in_throttle(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(THROTTLE_SIGN_IN_PER_IP=[3, 600])
    owner = Auth(app.test_client())
    await owner.sign_up()
    device = authenticator()
    assert (await register(owner.client, device)).status_code == 201
    # A right passkey gives its attempt back.
    for _ in range(3):
        assert (await passkey_sign_in(app, device)).status_code == 200
    for _ in range(3):
        assert (
            await passkey_sign_in(app, device, origin="https://evil.example")
        ).status_code == 401
    throttled = await passkey_sign_in(app, device)
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    # The same log as password sign-ins from this client (but for the accounts that
    # remember it: the owner's, here).
    assert (await Auth(app.test_client()).sign_in("grace@example.com")).status_code == 429
    assert (await Auth(app.test_client()).sign_in()).status_code == 303


async def test_sign_in_options_are_throttled_per_client(make_app: Callable[..., Any]) -> None:
    app = await make_app(THROTTLE_PASSKEY_OPTIONS_PER_IP=[2, 300])
    client = app.test_client()
    token = await token_of(client, False)
    path = "/api/v1/passkeys/authentication/options"
    for _ in range(2):
        assert (await post_json(client, path, {}, token)).status_code == 200
    assert (await post_json(client, path, {}, token)).status_code == 429


async def test_deleting_the_account_deletes_its_passkeys(app: Quart, ada: Auth) -> None:
    device = authenticator()
    assert (await register(ada.client, device)).status_code == 201
    assert await Passkey.all().count() == 1
    deleted = await post_json(
        ada.client, "/account/delete", {"password": PASSWORD}, await token_of(ada.client)
    )
    assert deleted.status_code == 200
    assert await Passkey.all().count() == 0
    assert (await passkey_sign_in(app, device)).status_code == 401


async def test_an_account_has_a_bounded_number_of_passkeys(
    ada: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("quartapp.accounts.passkeys.MAX_PASSKEYS", 2)
    for _ in range(2):
        assert (await register(ada.client, authenticator())).status_code == 201
    full, body = await registration_options(ada.client)
    assert full.status_code == 409
    assert body["code"] == "passkey_limit"


async def test_passkeys_are_only_their_owners(app: Quart, ada: Auth) -> None:
    assert (await register(ada.client, authenticator())).status_code == 201
    (passkey,) = await Passkey.all()
    grace = Auth(app.test_client())
    await grace.sign_up("grace@example.com")
    token = await token_of(grace.client)
    for action, body in (("rename", {"name": "mine"}), ("remove", {})):
        answer = await post_json(
            grace.client, f"/api/v1/passkeys/{passkey.id}/{action}", body, token
        )
        assert answer.status_code == 404
    assert (await Passkey.get(id=passkey.id)).name != "mine"


async def test_the_passkey_endpoints_are_well_known(client: QuartClient) -> None:
    answer = await client.get("/.well-known/passkey-endpoints")
    assert answer.status_code == 200
    assert await answer.get_json() == {
        "enroll": f"{PUBLIC_URL}/account/passkeys",
        "manage": f"{PUBLIC_URL}/account/passkeys",
    }


async def test_the_sign_in_page_offers_passkeys_where_the_browser_can(client: QuartClient) -> None:
    html = await (await client.get("/")).get_data(as_text=True)
    assert 'autocomplete="username webauthn"' in html
    assert 'id="passkey-sign-in" class="passkey-sign-in" hidden data-rp-id="quartapp.test"' in html
    assert "Sign in with a passkey" in html
    assert "/static/passkeys.js" in html


async def test_undoing_a_takeover_removes_the_passkeys_added_meanwhile(
    app: Quart, ada: Auth
) -> None:
    """Whoever moved the account to their own address may have added a passkey too: the
    undo link mailed to the old address removes every passkey with the password."""
    thiefs = authenticator()
    assert (await register(ada.client, thiefs)).status_code == 201
    user = await User.get(email="ada@example.com")
    await User.filter(id=user.id).update(email="thief@example.com")
    async with app.app_context():
        token = get_mail_tokens().token("undo", await offer_undo(user.id, "ada@example.com"))
    owner = app.test_client()
    done = await owner.post(
        f"/email/undo/{token}", form={"csrf_token": await csrf_from(owner, "/password/forgot")}
    )
    assert done.status_code == 303
    assert await Passkey.filter(user_id=user.id).count() == 0
    assert (await passkey_sign_in(app, thiefs)).status_code == 401


# --- the browser's offer after a password sign-in (a conditional create) ------------------


async def conditional_options(client: QuartClient) -> Any:
    return await post_json(
        client,
        "/api/v1/passkeys/registration/options",
        {"mediation": "conditional"},
        await token_of(client),
    )


async def test_right_after_a_password_sign_in_the_browser_may_add_a_passkey_unasked(
    app: Quart, ada: Auth
) -> None:
    browser = Auth(app.test_client())
    assert (await browser.sign_in()).status_code == 303
    answer = await conditional_options(browser.client)
    assert answer.status_code == 200
    options = (await answer.get_json())["public_key"]
    # A conditional create may come without presence or verification: the password was
    # just typed.
    credential = authenticator().create(options, present=False, verified=False)
    added = await add_credential(browser.client, credential)
    assert added.status_code == 201, await added.get_data(as_text=True)
    # Once the account has a passkey, no more offers: the server refuses them, and /home
    # no longer makes one in the session that added it.
    assert (await conditional_options(browser.client)).status_code == 409
    assert not await offers_passkey(browser.client)
    # The page carries the offer after a password sign-in only.
    assert not await offers_passkey(ada.client)


async def offers_passkey(client: QuartClient) -> bool:
    """Whether /home offers this browser to add a passkey (static/passkeys.js)."""
    home = await client.get("/home")
    assert home.status_code == 200
    return 'id="passkey-offer"' in await home.get_data(as_text=True)


async def test_a_password_sign_in_offers_a_passkey_only_to_an_account_without_one(
    app: Quart, ada: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    without = Auth(app.test_client())
    assert (await without.sign_in()).status_code == 303
    assert await offers_passkey(without.client)
    # A passkey added with the password typed again ends the offer in that session too.
    assert (await register(without.client, authenticator())).status_code == 201
    assert not await offers_passkey(without.client)

    # An account that has a passkey is offered none (the browser would only be told 409
    # passkey_exists), and its sign-in still reads the account in one query.
    counter = Counter(app, monkeypatch)
    await counter.install()
    again = Auth(app.test_client())
    assert (await again.sign_in()).status_code == 303
    assert counter.mysql == 1
    assert not await offers_passkey(again.client)
    # The session keeps its note when it goes on under a new token (a password change).
    changed = await again.post(
        "/account/password", {"current_password": PASSWORD, "new_password": "another horse battery"}
    )
    assert changed.status_code == 303
    assert not await offers_passkey(again.client)


async def test_a_password_and_code_sign_in_offers_a_passkey_only_to_an_account_without_one(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)

    async def with_a_code() -> QuartClient:
        browser = app.test_client()
        assert (await Auth(browser).sign_in()).status_code == 303
        assert (await code_form(browser, enrolled.code(clock))).status_code == 303
        clock.step(1)  # each code works once
        return browser

    assert await offers_passkey(await with_a_code())
    assert (await register(client, authenticator())).status_code == 201
    assert not await offers_passkey(await with_a_code())


async def test_the_offer_needs_a_fresh_password_sign_in(
    app: Quart, ada: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signed up, not signed in with a password: refused.
    refused = await conditional_options(ada.client)
    assert refused.status_code == 403
    # A password sign-in, but longer ago than a challenge lives.
    browser = Auth(app.test_client())
    assert (await browser.sign_in()).status_code == 303
    assert await offers_passkey(browser.client)
    monkeypatch.setattr("quartapp.accounts.sign_in_flow.FRESH_SIGN_IN_SECONDS", -1)
    assert (await conditional_options(browser.client)).status_code == 403
    # And /home no longer offers what would be refused.
    assert not await offers_passkey(browser.client)
    monkeypatch.undo()
    # Without the conditional options, presence and verification are required.
    _answer, options = await registration_options(browser.client)
    credential = authenticator().create(options, present=False, verified=False)
    unverified = await add_credential(browser.client, credential)
    assert unverified.status_code == 400


# --- any answer at all is a 4xx --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=80) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def mangled(field: str) -> st.SearchStrategy[Any]:
    """What may stand in a credential's field: anything JSON holds, base64url of random
    bytes, of JSON, of CBOR, or of a client data object with the wrong types."""
    return st.one_of(
        json_values,
        st.binary(max_size=300).map(b64url),
        json_values.map(lambda value: b64url(json.dumps(value).encode())),
        cbor_values.map(lambda value: b64url(cbor2.dumps(value))),
        st.fixed_dictionaries(
            {"type": json_values, "challenge": json_values, "origin": json_values}
        ).map(lambda value: b64url(json.dumps(value).encode())),
    )


# The fields each answer is checked by (a field that is not read can hold anything).
REGISTRATION_FIELDS = ("id", "rawId", "type", "clientDataJSON", "attestationObject")
ASSERTION_FIELDS = ("id", "rawId", "type", "clientDataJSON", "authenticatorData", "signature",
                    "userHandle")  # fmt: skip


@pytest.fixture
async def registered(ada: Auth) -> SoftAuthenticator:
    """An authenticator holding a passkey of Ada's."""
    device = authenticator()
    assert (await register(ada.client, device)).status_code == 201
    return device


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_credential_is_answered_with_a_4xx(
    app: Quart, ada: Auth, registered: SoftAuthenticator, data: Any
) -> None:
    registering = data.draw(st.booleans(), label="registering")
    if registering:
        answer, options = await registration_options(ada.client)
        assert answer.status_code == 200, options
        credential = authenticator().create(options)
    else:
        credential = registered.get(await sign_in_options(app.test_client()))
    fields = REGISTRATION_FIELDS if registering else ASSERTION_FIELDS
    for name in data.draw(st.sets(st.sampled_from(fields), min_size=1), label="fields"):
        target = credential if name in ("id", "rawId", "type") else credential["response"]
        target[name] = data.draw(mangled(name), label=name)
    path = "/api/v1/passkeys/registration" if registering else "/api/v1/signin/passkey"
    client = ada.client if registering else app.test_client()
    answer = await post_json(
        client, path, {"credential": credential}, await token_of(client, registering)
    )
    assert 400 <= answer.status_code < 500, await answer.get_data(as_text=True)
    assert (await answer.get_json())["code"]


# --- the notices by mail -----------------------------------------------------------------


async def test_adding_and_removing_a_passkey_is_told_by_mail(
    make_app: Callable[..., Any], catcher: MailCatcher, worker: Process
) -> None:
    app = await make_app(MAIL_URL=catcher.url)
    owner = Auth(app.test_client())
    await owner.sign_up()
    assert (await register(owner.client, authenticator(), name="Work laptop")).status_code == 201
    (added,) = catcher.wait_for(to("ada@example.com", "A passkey was added"))
    assert '"Work laptop"' in text_of(added)
    assert f"{PUBLIC_URL}/account/passkeys" in text_of(added)
    (passkey,) = await Passkey.all()
    await owner.post(f"/account/passkeys/{passkey.id}/remove")
    (removed,) = catcher.wait_for(to("ada@example.com", "A passkey was removed"))
    assert '"Work laptop"' in text_of(removed)
    assert json.dumps(passkey.user_handle) not in text_of(removed)

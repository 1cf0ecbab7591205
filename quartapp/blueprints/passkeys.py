"""Passkeys: the account's passkeys page (add, rename, remove), the WebAuthn ceremonies'
JSON endpoints (options, then the browser's answer) for adding one and for signing in with
one, and ``/.well-known/passkey-endpoints``. Every route is described (``/openapi.json``).

The browser's part is ``static/passkeys.js``: without JavaScript or WebAuthn the page
lists, renames and removes passkeys with plain forms, and sign-in is by password."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Response, current_app, jsonify, url_for
from quart.blueprints import BlueprintSetupState
from quart_auth import Unauthorized

from quartapp.accounts import passkeys, queries, service
from quartapp.accounts.models import Passkey
from quartapp.engine.quart_context import current_request
from quartapp.sessions.csrf import csrf_token
from quartapp.sessions.extension import current_record, session_access
from quartapp.sessions.store import SessionRecord
from quartapp.web.access import public, signed_in
from quartapp.web.api import (
    POST_ANYONE,
    POST_SIGNED_IN,
    SIGNED_IN,
    described,
    read_json_model,
    read_model,
)
from quartapp.web.errors import AppError
from quartapp.web.responder import Outcome, Page, Refused, respond
from quartapp.web.schemas import (
    AcceptedCredentials,
    CeremonyOptions,
    PasskeyAssertion,
    PasskeyChanged,
    PasskeyInfo,
    PasskeyList,
    PasskeyName,
    PasskeyReauthentication,
    PasskeyRegistration,
    PasskeyRemoved,
    PasskeySignedIn,
    SessionSummary,
)
from quartapp.web.templating import iso_time

bp = Blueprint("passkeys", __name__)


@bp.record_once
def name_the_relying_party(state: BlueprintSetupState) -> None:
    """The relying party id, for the pages (``config.PASSKEY_RP_ID``): static/passkeys.js
    offers passkeys only on a page opened under that name. (A setting derived from
    QUARTAPP_PUBLIC_URL, not a template global: pages remembered per shape may read the
    app's config, never a global that could depend on the request.)"""
    public_url = str(state.app.config["PUBLIC_URL"])
    state.app.config["PASSKEY_RP_ID"] = urlsplit(public_url).hostname or ""


# Fixed messages for flags in the page's address, never text taken from it.
NOTICES = {
    "added": "Your passkey has been added. You can sign in with it now.",
    "renamed": "The passkey has been renamed.",
    "removed": "The passkey has been removed.",
}


def signed_in_record() -> SessionRecord:
    record = current_record()
    assert record is not None, "only for @signed_in views"
    return record


def milliseconds(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def passkey_info(passkey: Passkey) -> PasskeyInfo:
    return PasskeyInfo(
        id=passkey.id,
        name=passkey.name,
        created_at=iso_time(milliseconds(passkey.created_at)),
        last_used_at=iso_time(milliseconds(passkey.last_used_at)) if passkey.last_used_at else None,
        backed_up=passkey.backed_up,
    )


async def passkeys_page_of(user_id: int, **context: Any) -> Page:
    """The passkeys page, with the account's passkeys as they are now."""
    found = await queries.list_passkeys(user_id)
    accepted = None
    if found:
        accepted = AcceptedCredentials.model_validate(
            await passkeys.accepted_credentials(found[0].user_handle, user_id)
        )
    return Page(
        "account/passkeys.html",
        context={
            "passkeys": found,
            "milliseconds": milliseconds,
            "accepted": accepted,
            "email": signed_in_record().email,  # the add form's username
            **context,
        },
    )


@bp.get("/api/v1/passkeys")
@bp.get("/account/passkeys", endpoint="passkeys_page")
@signed_in
@described(answers={200: PasskeyList}, errors=[401], security=SIGNED_IN)
async def list_passkeys() -> Response:
    """The account's passkeys, the oldest first (the passkeys page for browsers)."""
    record = signed_in_record()
    args = current_request().args
    notice = next((text for flag, text in NOTICES.items() if args.get(flag) == "1"), None)
    page = await passkeys_page_of(record.user_id, notice=notice)
    listed = PasskeyList(passkeys=[passkey_info(passkey) for passkey in page.context["passkeys"]])
    return await respond(Outcome(listed, page=page))


@bp.post("/api/v1/passkeys/registration/options")
@signed_in
@described(
    request=PasskeyReauthentication,
    answers={200: CeremonyOptions},
    errors=[401, 409, 429],
    security=POST_SIGNED_IN,
)
async def registration_options() -> Response:
    """The options for adding a passkey (``navigator.credentials.create()``), once the
    account's password is typed again (or, with a second factor on, a current code from
    the authenticator app): a wrong one is a 403 `wrong_password` (`wrong_code`). The
    challenge is good once, for five minutes. A 409 when the account has 20 passkeys."""
    typed = await read_model(PasskeyReauthentication)
    try:
        options = await passkeys.registration_options(
            signed_in_record(),
            typed.current_password,
            conditional=typed.mediation == "conditional",
        )
    except service.SignedOut:
        raise Unauthorized() from None
    return await respond(Outcome(CeremonyOptions(public_key=options)))


@bp.post("/api/v1/passkeys/registration")
@signed_in
@described(
    request=PasskeyRegistration,
    answers={201: PasskeyChanged},
    errors=[401, 409],
    security=POST_SIGNED_IN,
)
async def add_passkey() -> Response:
    """Add the passkey the browser made with the options from
    POST /api/v1/passkeys/registration/options (JSON only). Refused with a 400
    `passkey_invalid` when it does not check out (challenge unknown, used or expired,
    another origin or RP id, no user verification); a 409 `passkey_taken` when it is
    registered already. A notice goes to the account's address."""
    typed = await read_json_model(PasskeyRegistration)
    passkey = await passkeys.add_passkey(signed_in_record(), typed.credential, typed.name)
    answer = PasskeyChanged(message="passkey added", passkey=passkey_info(passkey))
    return await respond(Outcome(answer, status=201))


@bp.post("/api/v1/passkeys/<int:passkey_id>/rename")
@bp.post("/account/passkeys/<int:passkey_id>/rename", endpoint="rename_passkey_form")
@signed_in
@described(
    request=PasskeyName, answers={200: PasskeyChanged}, errors=[401, 404], security=POST_SIGNED_IN
)
async def rename_passkey(passkey_id: int) -> Response:
    """Give one of the account's passkeys a new name (1 to 64 characters)."""
    record = signed_in_record()
    typed = await read_model(PasskeyName)
    try:
        passkey = await passkeys.rename_passkey(record.user_id, passkey_id, typed.name)
    except AppError as error:
        page = await passkeys_page_of(record.user_id, renaming=passkey_id, typed_name=typed.name)
        return await respond(Refused(error, page))
    answer = PasskeyChanged(message="passkey renamed", passkey=passkey_info(passkey))
    return await respond(Outcome(answer, redirect=url_for("passkeys.passkeys_page", renamed=1)))


@bp.post("/api/v1/passkeys/<int:passkey_id>/remove")
@bp.post("/account/passkeys/<int:passkey_id>/remove", endpoint="remove_passkey_form")
@signed_in
@described(answers={200: PasskeyRemoved}, errors=[401, 403, 404, 409], security=POST_SIGNED_IN)
async def remove_passkey(passkey_id: int) -> Response:
    """Remove one of the account's passkeys; a notice goes to the account's address. The
    answer names the removed credential and those that remain, for the browser's password
    manager (the WebAuthn Signals API). A 409 when it is the account's last way in."""
    record = signed_in_record()
    removed, _remaining = await passkeys.remove_passkey(record.user_id, passkey_id)
    accepted = await passkeys.accepted_credentials(removed.user_handle, record.user_id)
    answer = PasskeyRemoved(
        message="passkey removed",
        id=removed.id,
        credential_id=removed.credential_id,
        accepted=AcceptedCredentials.model_validate(accepted),
    )
    return await respond(Outcome(answer, redirect=url_for("passkeys.passkeys_page", removed=1)))


@bp.post("/api/v1/passkeys/authentication/options")
@public
@session_access("read")
@described(answers={200: CeremonyOptions}, errors=[403, 429], security=POST_ANYONE)
async def authentication_options() -> Response:
    """The options for signing in with a passkey (``navigator.credentials.get()``, also
    with ``mediation: "conditional"``): no credentials named, user verification
    required. The challenge is good once, for five minutes."""
    options = await passkeys.authentication_options()
    return await respond(Outcome(CeremonyOptions(public_key=options)))


@bp.post("/api/v1/signin/passkey")
@public
@described(
    request=PasskeyAssertion,
    answers={200: PasskeySignedIn},
    errors=[401, 429],
    security=POST_ANYONE,
)
async def sign_in_with_passkey() -> Response:
    """Sign in with a passkey, answering the options from
    POST /api/v1/passkeys/authentication/options (JSON only): a complete sign-in, with a
    new session and its cookie. Refused with a 401 `passkey_refused` (or
    `passkey_unknown` for a passkey no account has), counted in the sign-in throttle."""
    typed = await read_json_model(PasskeyAssertion)
    signed = await passkeys.sign_in(typed.credential)
    accepted = await passkeys.accepted_credentials(
        signed.passkey.user_handle, signed.record.user_id
    )
    answer = PasskeySignedIn(
        message="signed in",
        email=signed.record.email,
        session=SessionSummary.of(signed.record),
        csrf_token=csrf_token(),
        accepted=AcceptedCredentials.model_validate(accepted),
    )
    return await respond(Outcome(answer))


@bp.get("/.well-known/passkey-endpoints")
@public
@session_access("none")
async def passkey_endpoints() -> Response:
    """Where password managers send their users to add and manage passkeys (the W3C
    "Well-Known URL for Passkey Endpoints"), on ``PUBLIC_URL``."""
    page = f"{current_app.config['PUBLIC_URL']}{url_for('passkeys.passkeys_page')}"
    return jsonify({"enroll": page, "manage": page})

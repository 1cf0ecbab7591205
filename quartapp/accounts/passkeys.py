"""Passkeys: adding one to an account, signing in with one, renaming and removing them.

The ceremonies' options and their verification are py_webauthn's; this module decides
what goes into them and what happens around them:

- the relying party is the app at ``PUBLIC_URL``: its host is the RP id and the URL the
  one origin accepted, never anything from the request's Host header;
- every challenge is random (py_webauthn's 64 bytes), kept in Redis for
  ``CHALLENGE_SECONDS`` under the SHA-256 of the challenge, with what it was made for
  (adding a passkey to one account, or a sign-in), and taken with GETDEL when the answer
  comes back: used once, whatever the answer;
- a passkey is discoverable and user-verified, so a sign-in with one is complete on its
  own (``sign_in_flow.start_session(user, Way.PASSKEY)``, no second step);
- an assertion's credential id names the passkey (by the SHA-256 of the id), its user
  handle must be that passkey's account's, its signature must verify with the stored
  public key, and its signature counter must move on from the stored one (a counter that
  goes back, or stays put above zero, is a cloned authenticator's: refused);
- each account has one random user handle, shared by its passkeys (not its id, not its
  address), so that an authenticator keeps one passkey per account and the browser can be
  told which of them are still valid (the Signals API);
- a passkey sign-in counts in the sign-in throttle like a password (per client: the
  account is not known before the answer is read); a refused one stays counted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from quart import current_app, request
from tortoise.exceptions import IntegrityError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from quartapp.accounts import queries
from quartapp.accounts.models import Passkey, User
from quartapp.accounts.queries import find_user_by_id
from quartapp.accounts.service import (
    SignedOut,
    confirm_password,
    given_back_unless_wrong,
    queue_notice,
)
from quartapp.accounts.sign_in_flow import (
    FRESH_SIGN_IN_SECONDS,
    Way,
    fresh_password_sign_in,
    note_passkey_added,
    start_session,
)
from quartapp.accounts.throttle import get_throttle, too_many_attempts
from quartapp.infra.redis_client import get_redis
from quartapp.sessions.devices import describe_device
from quartapp.sessions.extension import get_sessions
from quartapp.sessions.store import SessionRecord
from quartapp.web.errors import AppError, InvalidFields

log = logging.getLogger(__name__)

# How long a challenge waits for its answer (seconds); the browser is given the same time.
CHALLENGE_SECONDS = FRESH_SIGN_IN_SECONDS
# The most passkeys one account may have.
MAX_PASSKEYS = 20
NAME_MAX = 64
RP_NAME = "quartapp"

REFUSED = "This passkey could not sign you in. Try again, or sign in with your password."
UNKNOWN = "This passkey is not registered here any more. Sign in with your password."
INVALID = "The passkey could not be added: the browser's answer did not check out. Try again."
EXPIRED = "This passkey request has expired or was used already. Try again."
TAKEN = "This passkey is registered already."
NO_SUCH_PASSKEY = "There is no such passkey."
TOO_MANY = f"An account can have at most {MAX_PASSKEYS} passkeys. Remove one first."
NOT_FRESH = "Type your password to add a passkey."
HAS_PASSKEYS = "The account has a passkey already."
LAST_WAY_IN = "This is your last way to sign in: add a passkey or keep a password first."


# The sign-ins that typed the account's password.


class Purpose:
    REGISTER = "register"
    SIGN_IN = "sign_in"


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the passkeys are for: the RP id (a host name) and the one origin accepted."""

    id: str
    origin: str

    @classmethod
    def of_app(cls) -> RelyingParty:
        origin = str(current_app.config["PUBLIC_URL"])
        return cls(id=urlsplit(origin).hostname or "", origin=origin)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def credential_key(credential_id: bytes) -> str:
    """What a passkey is looked up by: the SHA-256 of its credential id, in hex."""
    return hashlib.sha256(credential_id).hexdigest()


def descriptors(passkeys: Sequence[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    """The passkeys as WebAuthn names them, with the transports their browsers reported."""
    found = []
    for passkey in passkeys:
        transports = []
        for name in filter(None, passkey.transports.split(",")):
            with contextlib.suppress(ValueError):
                transports.append(AuthenticatorTransport(name))
        found.append(
            PublicKeyCredentialDescriptor(id=unb64url(passkey.credential_id), transports=transports)
        )
    return found


# --- challenges ------------------------------------------------------------------------


def _challenge_key(challenge: bytes) -> str:
    prefix = current_app.config["REDIS_PREFIX"]
    return f"{prefix}passkey:{hashlib.sha256(challenge).hexdigest()}"


async def _keep_challenge(challenge: bytes, purpose: str, **details: Any) -> None:
    value = json.dumps({"purpose": purpose, **details})
    await get_redis().set(_challenge_key(challenge), value, ex=CHALLENGE_SECONDS)


def _client_challenge(response: Any) -> bytes | None:
    """The challenge the browser says it answered (from clientDataJSON), or None."""
    try:
        return parse_client_data_json(response.client_data_json).challenge
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        return None


async def _take_challenge(challenge: bytes | None, purpose: str) -> dict[str, Any] | None:
    """The details kept with ``challenge`` if it is live and was made for ``purpose``;
    taken in one step (GETDEL), so that it is used once whatever follows."""
    if not challenge:
        return None
    raw = await get_redis().getdel(_challenge_key(challenge))
    if raw is None:
        return None
    details: dict[str, Any] = json.loads(raw)
    return details if details.get("purpose") == purpose else None


# --- the account's passkeys --------------------------------------------------------------


async def find_passkey(user_id: int, passkey_id: int) -> Passkey:
    """One of the account's passkeys; another account's, or none, is a 404."""
    passkey = await queries.find_passkey(user_id, passkey_id)
    if passkey is None:
        raise AppError(NO_SUCH_PASSKEY, status=404)
    return passkey


def printable_name(name: str) -> str:
    """``name`` without control characters, its white space collapsed (maybe empty)."""
    printable = "".join(" " if unicodedata.category(c) == "Cc" else c for c in name)
    return " ".join(printable.split())


def clean_name(name: str) -> str:
    """A passkey's name as stored: trimmed, on one line, without control characters (it
    goes into mails), 1 to ``NAME_MAX`` characters."""
    cleaned = printable_name(name)
    if not cleaned:
        raise InvalidFields({"name": "Give the passkey a name."})
    if len(cleaned) > NAME_MAX:
        raise InvalidFields({"name": f"Use at most {NAME_MAX} characters."})
    return cleaned


async def rename_passkey(user_id: int, passkey_id: int, name: str) -> Passkey:
    cleaned = clean_name(name)
    passkey = await find_passkey(user_id, passkey_id)
    passkey.name = cleaned
    await queries.rename_passkey(passkey.id, cleaned)
    return passkey


async def remove_passkey(user_id: int, passkey_id: int) -> tuple[Passkey, list[Passkey]]:
    """Remove one of the account's passkeys and tell the owner by mail; returns it and the
    passkeys that remain (what the browser is told: ``accepted_credentials``).

    An account always keeps a way in: a password, or another passkey."""
    user = await find_user_by_id(user_id)
    if user is None:
        raise AppError("Sign in first.", status=401)
    passkey = await find_passkey(user_id, passkey_id)
    remaining = [other for other in await queries.list_passkeys(user_id) if other.id != passkey.id]
    if not user.password_hash and not remaining:
        raise AppError(LAST_WAY_IN, status=409, code="last_way_in")
    if not await queries.delete_passkey(passkey.id):
        raise AppError(NO_SUCH_PASSKEY, status=404)  # removed by another request meanwhile
    await queue_notice("passkey_notice", user_id, change="removed", passkey=passkey.name)
    return passkey, remaining


# --- adding a passkey ----------------------------------------------------------------------


async def registration_options(
    record: SessionRecord, password: str, *, conditional: bool = False
) -> dict[str, Any]:
    """The options for ``navigator.credentials.create()``, once the signed-in user has
    typed their password again, or with a second factor on a current code from their
    authenticator app (ASVS 6.4: a new authenticator needs a current factor).

    ``conditional``: for the browser's own offer right after a password sign-in (a
    conditional create, ``mediation: "conditional"``), which needs no password typed again
    but a session signed in with one moments ago, and an account without passkeys.

    Raises SignedOut (``service``) when the account has gone; a wrong password is a 403
    ``wrong_password`` naming ``current_password``."""
    if conditional:
        if not fresh_password_sign_in(record):
            raise AppError(NOT_FRESH, status=403)
        user = await find_user_by_id(record.user_id)
        if user is None:
            raise SignedOut()
        if await queries.count_passkeys(user.id):
            raise AppError(HAS_PASSKEYS, status=409, code="passkey_exists")
        return await _registration_options(user, conditional=True)
    if not password:
        raise InvalidFields({"current_password": "Enter your current password."})
    user = await confirm_password(record, password, "current_password", or_code=True)
    return await _registration_options(user)


async def _registration_options(user: User, *, conditional: bool = False) -> dict[str, Any]:
    existing = await queries.list_passkeys(user.id)
    if len(existing) >= MAX_PASSKEYS:
        raise AppError(TOO_MANY, status=409, code="passkey_limit")
    handle = existing[0].user_handle if existing else b64url(secrets.token_bytes(32))
    party = RelyingParty.of_app()
    options = generate_registration_options(
        rp_id=party.id,
        rp_name=RP_NAME,
        user_id=unb64url(handle),
        user_name=user.email,
        user_display_name=user.email,
        timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=descriptors(existing),
    )
    await _keep_challenge(
        options.challenge,
        Purpose.REGISTER,
        user_id=user.id,
        handle=handle,
        conditional=conditional,
    )
    return options_to_json_dict(options)


def _parse_registration(credential: Mapping[str, Any]) -> RegistrationCredential:
    try:
        return parse_registration_credential_json(dict(credential))
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        raise AppError(INVALID, status=400, code="passkey_invalid") from None


async def add_passkey(record: SessionRecord, credential: Mapping[str, Any], name: str) -> Passkey:
    """Store the passkey the browser created with the options of ``registration_options``
    (its challenge is used up here, whatever the answer)."""
    # No name, or nothing printable: the device's, until its owner renames it.
    cleaned = clean_name(name) if printable_name(name) else None
    parsed = _parse_registration(credential)
    details = await _take_challenge(_client_challenge(parsed.response), Purpose.REGISTER)
    if details is None or details.get("user_id") != record.user_id:
        raise AppError(EXPIRED, status=400, code="passkey_invalid")
    party = RelyingParty.of_app()
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=_client_challenge(parsed.response) or b"",
            expected_rp_id=party.id,
            expected_origin=party.origin,
            # A conditional create (the browser's offer after a password sign-in) may
            # come without the user's presence or verification: the password was just
            # typed. Every sign-in with the passkey requires its user verification.
            require_user_presence=not details.get("conditional"),
            require_user_verification=not details.get("conditional"),
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, IndexError):
        raise AppError(INVALID, status=400, code="passkey_invalid") from None
    # The credential's id as the browser names it must be the one the authenticator
    # attested (py_webauthn checks only that ``id`` and ``rawId`` agree, so two empty ones
    # passed): the id is what every later sign-in is looked up by.
    if parsed.raw_id != verified.credential_id:
        raise AppError(INVALID, status=400, code="passkey_invalid")
    if await queries.count_passkeys(record.user_id) >= MAX_PASSKEYS:
        raise AppError(TOO_MANY, status=409, code="passkey_limit")
    transports = [str(t.value) for t in (parsed.response.transports or [])]
    try:
        passkey = await queries.create_passkey(
            user_id=record.user_id,
            credential_key=credential_key(verified.credential_id),
            credential_id=b64url(verified.credential_id),
            public_key=b64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            backup_eligible=verified.credential_device_type.value == "multi_device",
            backed_up=verified.credential_backed_up,
            transports=",".join(transports)[:255],
            user_handle=str(details["handle"]),
            name=cleaned or default_name(),
        )
    except IntegrityError:
        raise AppError(TAKEN, status=409, code="passkey_taken") from None
    note_passkey_added(record.user_id)  # /home offers one no more
    await queue_notice("passkey_notice", record.user_id, change="added", passkey=passkey.name)
    return passkey


def default_name() -> str:
    """A new passkey's name until its owner gives it one: the device it was made on."""
    return clean_name(describe_device(request.headers.get("User-Agent")))[:NAME_MAX]


# --- signing in with a passkey -------------------------------------------------------------


async def authentication_options() -> dict[str, Any]:
    """The options for ``navigator.credentials.get()``: no credentials named (the browser
    offers the passkeys it has for this site), user verification required. Counted per
    client (``passkey_options_per_ip``): each one is a key in Redis for five minutes."""
    decision = await get_throttle().attempt_passkey_options(get_sessions().client_ip())
    if not decision.allowed:
        raise too_many_attempts(decision)
    party = RelyingParty.of_app()
    options = generate_authentication_options(
        rp_id=party.id,
        timeout=CHALLENGE_SECONDS * 1000,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    await _keep_challenge(options.challenge, Purpose.SIGN_IN)
    return options_to_json_dict(options)


@dataclass(frozen=True, slots=True)
class PasskeySignIn:
    record: SessionRecord
    user: User
    passkey: Passkey


async def sign_in(credential: Mapping[str, Any]) -> PasskeySignIn:
    """Check a passkey's answer to a sign-in challenge and start a new session for its
    account. Every refusal (unknown passkey, wrong user handle, signature, challenge,
    origin or RP id, a counter that went back) is one 401 ``passkey_refused`` that stays
    counted in the sign-in throttle; a 429 when the client has failed too often."""
    throttle = get_throttle()
    client = get_sessions().client_ip()
    reservation = await throttle.reserve_passkey_sign_in(client)
    if not reservation.allowed:
        raise too_many_attempts(reservation)
    async with given_back_unless_wrong(reservation):
        found = await _check_assertion(credential)
    if isinstance(found, str):
        raise AppError(UNKNOWN if found == "passkey_unknown" else REFUSED, status=401, code=found)
    await throttle.release(reservation)
    user, passkey = found
    await throttle.record_sign_in(user.email, client)
    record = await start_session(user, Way.PASSKEY)
    return PasskeySignIn(record, user, passkey)


def _parse_assertion(credential: Mapping[str, Any]) -> AuthenticationCredential | None:
    try:
        return parse_authentication_credential_json(dict(credential))
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        return None


async def _check_assertion(credential: Mapping[str, Any]) -> tuple[User, Passkey] | str:
    """The account and passkey a valid assertion signs in, else the refusal's code:
    ``passkey_unknown`` for an answer to a live challenge from a passkey no account has
    (the browser may then forget it), else ``passkey_refused``."""
    refused = "passkey_refused"
    parsed = _parse_assertion(credential)
    if parsed is None:
        return refused
    challenge = _client_challenge(parsed.response)
    if await _take_challenge(challenge, Purpose.SIGN_IN) is None:
        return refused
    passkey = await queries.find_passkey_by_key(credential_key(parsed.raw_id))
    if passkey is None:
        return "passkey_unknown"
    handle = parsed.response.user_handle
    if handle is None or b64url(handle) != passkey.user_handle:
        return refused
    party = RelyingParty.of_app()
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge or b"",
            expected_rp_id=party.id,
            expected_origin=party.origin,
            credential_public_key=unb64url(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, IndexError):
        return refused
    if not await queries.passkey_used(
        passkey, verified.new_sign_count, verified.credential_backed_up
    ):
        return refused  # another answer with the same counter got there first
    return passkey.user, passkey


async def accepted_credentials(user_handle: str, user_id: int) -> dict[str, Any]:
    """What the browser is told is still valid for the account with ``user_handle``
    (the Signals API's ``signalAllAcceptedCredentials``): the RP id, the user handle and
    the credential ids, base64url."""
    passkeys = await queries.list_passkeys(user_id)
    return {
        "rp_id": RelyingParty.of_app().id,
        "user_id": user_handle,
        "credential_ids": [passkey.credential_id for passkey in passkeys],
    }

"""The sign-in flow: every way into an account ends here, in ``start_session``.

A sign-in has steps: a first proof (a password today), then, for some accounts, a second
one still pending, and last the session's start. This module is the one place where a
proof becomes a session, so that each way in (password, password and a code, a
recovery code, a passkey) is recorded the same way and nothing that belongs to "a
session has started" happens earlier:

- the session gets a brand-new token (``Sessions.sign_in``), only if the password the
  first step checked is still the account's current one (``User.credentials_version``);
- how it was signed in (``Way``) is kept in the session's data, for ``/sessions``, and,
  after a password, whether the account had a passkey then (read with the account, in the
  sign-in's one query), for /home's offer to add one;
- the device is noted (known devices, the new-device notice) and the unverified-address
  reminder set.

The first proof belongs to the module that checks it (``service.authenticate`` for the
password) and hands over to ``first_step_passed``: an account without a second factor
starts its session at once; one with it gets a **pending second step** instead, kept here
with its cookie, its throttle and its end:

- a record in Redis, ``<prefix>signin2:<SHA-256 of a token>``, holding the account, the
  version of the password that was checked, the page to go to and the wrong codes so far;
  it lives ``PENDING_SECONDS`` (5 minutes) from the password, never longer;
- the token (256 random bits) in a cookie of its own (``__Host-quartapp_signin2`` over
  https), HttpOnly, SameSite=Lax, of the same lifetime; the pending step is bound to it,
  not to the address or the email, and nothing else can name it;
- each code is counted against the account's sign-in throttle (``reserve_sign_in``, as a
  password is) before it is checked, a right one gives its attempt back; and each is
  counted in the record first, so ``MAX_WRONG_CODES`` wrong codes end it (back to the
  password), however many requests race;
- a right code ends the record (only one request can take it) and starts the session.

A passkey, later, is a first proof that is complete at once: it calls ``start_session``
(or ``first_step_passed`` with the way it proves).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from enum import StrEnum

from quart import Response, current_app, request
from redis.typing import EncodableT

from quartapp.accounts import two_factor
from quartapp.accounts.known_devices import note_sign_in_device
from quartapp.accounts.models import User
from quartapp.accounts.queries import find_user_by_id_signing_in, has_passkey
from quartapp.accounts.throttle import get_throttle, too_many_attempts
from quartapp.accounts.verification import note_unverified
from quartapp.infra.redis_client import REDIS_ERRORS, get_redis
from quartapp.sessions.extension import get_sessions, request_session
from quartapp.sessions.store import CredentialsChanged, SessionRecord
from quartapp.web.errors import AppError

log = logging.getLogger(__name__)

SIGN_IN_FAILED = "Incorrect email or password."
# The key, in a session's data, of how it was signed in.
WAY_KEY = "way"
# The key, in the data of a session signed in with a password, that says the account had
# a passkey then, or has had one added since in this session (absent: it had none).
HAS_PASSKEY_KEY = "has_passkey"
# How long after a password sign-in the browser may add a passkey without the password typed
# again (as long as a passkey challenge lives).
FRESH_SIGN_IN_SECONDS = 300


class Way(StrEnum):
    """How a session was signed in (kept in its data; ``/sessions`` shows the label)."""

    PASSWORD = "password"  # noqa: S105 (a way in, not a password)
    PASSWORD_AND_CODE = "password_and_code"  # noqa: S105
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"
    SIGN_UP = "sign_up"

    @property
    def label(self) -> str:
        return WAY_LABELS[self]


WAY_LABELS = {
    Way.PASSWORD: "password",
    Way.PASSWORD_AND_CODE: "password + code",
    Way.RECOVERY_CODE: "recovery code",
    Way.PASSKEY: "passkey",
    Way.SIGN_UP: "sign-up",
}


# Ways that typed the account's password just now.
PASSWORD_WAYS = frozenset({Way.PASSWORD, Way.PASSWORD_AND_CODE})


def fresh_password_sign_in(record: SessionRecord) -> bool:
    """Whether ``record``'s session was signed in with a password moments ago (within
    ``FRESH_SIGN_IN_SECONDS``): the password has just been typed, so it need not be asked
    again for the browser's offer to add a passkey."""
    return (
        way_of(record) in PASSWORD_WAYS
        and record.read_at - record.created_at <= FRESH_SIGN_IN_SECONDS * 1000
    )


def offers_passkey(record: SessionRecord) -> bool:
    """Whether /home may offer to add a passkey (static/passkeys.js): the session was
    signed in with a password moments ago, to an account that had no passkey then and has
    had none added in this session. Read from the session alone, as /home does not ask
    MySQL; the server refuses the offer, 409, to an account that has a passkey all the same
    (one added in another session since)."""
    return fresh_password_sign_in(record) and not record.data.get(HAS_PASSKEY_KEY)


def note_passkey_added(user_id: int) -> None:
    """A passkey was added to ``user_id``'s account by this request: if its session is the
    account's, /home offers no more (the session's data is saved with the answer)."""
    current = request_session()
    if current.record is not None and current.record.user_id == user_id:
        current[HAS_PASSKEY_KEY] = True


def way_of(record: SessionRecord) -> Way | None:
    """How ``record``'s session was signed in; None for sessions started before this was
    kept."""
    try:
        return Way(record.data.get(WAY_KEY, ""))
    except ValueError:
        return None


async def start_session(user: User, way: Way) -> SessionRecord:
    """Start a new session for ``user`` on this request, signed in ``way``: the last step
    of every sign-in. A 401 ``invalid_credentials`` when the account's password changed
    (or the account went) since the first step checked it.

    After a password (``PASSWORD_WAYS``), ``user`` is as read by a ``..._signing_in``
    query, with whether the account has a passkey; one read otherwise counts as without."""
    data: dict[str, object] = {WAY_KEY: way.value}
    if way in PASSWORD_WAYS and has_passkey(user):
        data[HAS_PASSKEY_KEY] = True
    try:
        record = await get_sessions().sign_in(
            user.id,
            user.email,
            credentials_version=user.credentials_version,
            data=data,
        )
    except CredentialsChanged:
        raise AppError(SIGN_IN_FAILED, status=401, code="invalid_credentials") from None
    try:  # this client is the owner's now: its failed attempts are forgotten
        await get_throttle().record_sign_in(user.email, get_sessions().client_ip())
    except REDIS_ERRORS:
        log.warning("could not note the sign-in of user %s with the throttle", user.id)
    note_unverified(user.email_verified)
    await note_sign_in_device(user.id)
    return record


async def renew_session(
    current: SessionRecord, email: str, credentials_version: int
) -> SessionRecord:
    """After the account's password or address changed: this browser's session goes on
    under a new token, signed in as it was (its ``Way`` and its passkey note kept), and
    every other session of the account ends."""
    data = {key: current.data[key] for key in (WAY_KEY, HAS_PASSKEY_KEY) if key in current.data}
    return await get_sessions().sign_in(
        current.user_id,
        email,
        credentials_version=credentials_version,
        end_other_sessions=True,
        data=data or None,
    )


# -- the second step ----------------------------------------------------------------------

PENDING_SECONDS = 5 * 60
MAX_WRONG_CODES = 5
ENDED = (
    "Your sign-in was not finished in time, or had too many wrong codes. "
    "Sign in again with your password."
)

# KEYS[1]: a pending record. Counts one more try if it exists; returns the tries so far
# (this one included), or 0 if there is no such record.
_COUNT_TRY = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('HINCRBY', KEYS[1], 'tries', 1)
"""


class SecondStepEnded(AppError):
    """There is no pending second step for this browser (none began, it expired, it had
    too many wrong codes, or the password changed meanwhile)."""

    def __init__(self) -> None:
        super().__init__(ENDED, status=401, code="two_factor_ended")


@dataclass(frozen=True, slots=True)
class SecondStepPending:
    """The password passed; a code is wanted. ``token`` goes into the pending cookie."""

    token: str


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending second step, as read back."""

    key: str
    user_id: int
    credentials_version: int
    next_page: str | None


def pending_cookie_name() -> str:
    secure = bool(current_app.config["COOKIE_SECURE"])
    return "__Host-quartapp_signin2" if secure else "quartapp_signin2"


def _pending_key(token: str) -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f"{current_app.config['REDIS_PREFIX']}signin2:{digest}"


async def first_step_passed(
    user: User, way: Way = Way.PASSWORD, next_page: str | None = None
) -> SessionRecord | SecondStepPending:
    """The first proof (``way``) passed for ``user``: its session starts, or, with a second
    factor on, a second step is pending (set its cookie with ``keep_pending``)."""
    if not user.two_factor_enabled:
        return await start_session(user, way)
    token = secrets.token_urlsafe(32)
    fields: dict[EncodableT, EncodableT] = {
        "user": str(user.id),
        "version": str(user.credentials_version),
        "next": next_page or "",
        "tries": "0",
    }
    key = _pending_key(token)
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=fields)
        pipe.expire(key, PENDING_SECONDS)
        await pipe.execute()
    return SecondStepPending(token)


def keep_pending(response: Response, pending: SecondStepPending | None) -> Response:
    """Set the pending step's cookie on ``response``, or (None) delete it."""
    secure = bool(current_app.config["COOKIE_SECURE"])
    name = pending_cookie_name()
    if pending is None:
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
    else:
        response.set_cookie(
            name, pending.token, max_age=PENDING_SECONDS, path="/", secure=secure,
            httponly=True, samesite="Lax",
        )  # fmt: skip
    return response


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


async def read_pending() -> Pending | None:
    """This browser's pending second step, if it has one that has not ended."""
    token = request.cookies.get(pending_cookie_name())
    if not token or len(token) > 64:
        return None
    key = _pending_key(token)
    found = await get_redis().hgetall(key)
    if not found:
        return None
    fields = {_text(name): _text(value) for name, value in found.items()}
    try:
        user_id, version = int(fields["user"]), int(fields["version"])
    except (KeyError, ValueError):
        return None
    if int(fields.get("tries") or 0) >= MAX_WRONG_CODES:
        return None
    return Pending(key, user_id, version, fields.get("next") or None)


async def end_pending() -> None:
    """End this browser's pending second step, if any (its cookie goes with the answer)."""
    token = request.cookies.get(pending_cookie_name())
    if token and len(token) <= 64:
        await get_redis().delete(_pending_key(token))


@dataclass(frozen=True, slots=True)
class SecondStepPassed:
    record: SessionRecord
    proof: two_factor.Proof
    next_page: str | None


async def second_step(typed: str) -> SecondStepPassed:
    """Check a code for this browser's pending step and, if it is right, start the session.

    Raises SecondStepEnded when there is no pending step (or this code was the last wrong
    one it allows), a 429 when the account's sign-in throttle refuses, and WrongCode (401,
    ``invalid_code``) for a wrong code while tries are left."""
    pending = await read_pending()
    if pending is None:
        raise SecondStepEnded()
    user = await find_user_by_id_signing_in(pending.user_id)
    if (
        user is None
        or user.credentials_version != pending.credentials_version
        or not user.two_factor_enabled
    ):
        await get_redis().delete(pending.key)
        raise SecondStepEnded()
    throttle = get_throttle()
    reservation = await throttle.reserve_sign_in(user.email, get_sessions().client_ip())
    if not reservation.allowed:
        raise too_many_attempts(reservation)
    redis = get_redis()
    tries = int(await redis.eval(_COUNT_TRY, 1, pending.key))
    if not 1 <= tries <= MAX_WRONG_CODES:
        await throttle.release(reservation)  # nothing was checked
        raise SecondStepEnded()
    try:
        async with two_factor.counted_if_wrong(reservation):
            proof = await two_factor.check_code(user, typed, status=401, code="invalid_code")
    except two_factor.WrongCode:
        # The attempt stays counted against the account and the client.
        if tries >= MAX_WRONG_CODES:
            await redis.delete(pending.key)
            raise SecondStepEnded() from None
        raise
    if not await redis.delete(pending.key):  # another request took it meanwhile
        raise SecondStepEnded()
    way = Way.RECOVERY_CODE if proof.recovery_code else Way.PASSWORD_AND_CODE
    record = await start_session(user, way)
    return SecondStepPassed(record, proof, pending.next_page)

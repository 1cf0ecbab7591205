"""The second factor: codes from an authenticator app (TOTP, RFC 6238, by pyotp) and
recovery codes for the day the phone is lost.

- **The secret.** 160 random bits (``pyotp.random_base32``), kept encrypted in MySQL
  (``secret_box``, bound to the user's id) from the moment enrolment starts. It is shown
  once, while enrolling (as a QR code made by segno and as text); the factor is on only
  after a current code from the app confirms it, and that code counts as used.
- **Codes.** Six digits, a 30-second step; the server's clock decides, and a code of the
  step before or after now is accepted too (a phone's clock a little off, a code typed as
  it changed). A code is accepted once: the step of the last accepted code is stored
  (``User.totp_last_step``) and raised in the same conditional UPDATE that accepts a code,
  so a code of that step or an earlier one is refused, even by a request racing this one.
- **Recovery codes.** Ten, each 120 random bits from the CSPRNG (24 characters of base32,
  shown in groups of four). Only their SHA-256 (with the user id) is kept: at 120 bits a
  fast hash is enough (ASVS 6.5.2 asks for a password hash only below 112 bits). Letter
  case, spaces and dashes do not matter. Using one deletes its row in one DELETE, so it
  works once however many requests race; a new set replaces the old one in a transaction.
- **Guessing.** Every check of a code is throttled by the caller before it is made: at
  sign-in by the account's sign-in rules (``sign_in_flow``), signed in by the password
  re-check rules (``service.confirm_password``'s).

Nothing here knows about requests beyond the notices it queues; the views are in
blueprints/two_factor.py and the sign-in's second step in ``sign_in_flow``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import pyotp
import segno
from markupsafe import Markup
from tortoise.exceptions import BaseORMException
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from quartapp.accounts.models import RecoveryCode, User
from quartapp.accounts.queries import stored
from quartapp.accounts.secret_box import Unreadable, get_secret_box
from quartapp.accounts.throttle import Reservation, get_throttle, too_many_attempts
from quartapp.infra.redis_client import REDIS_ERRORS
from quartapp.sessions.store import SessionRecord
from quartapp.web.errors import AppError, ServiceUnavailable

log = logging.getLogger(__name__)

STEP_SECONDS = 30
CODE_DIGITS = 6
# Steps either side of now whose codes are accepted.
SKEW_STEPS = 1
RECOVERY_CODE_COUNT = 10
# 24 characters of base32: 120 bits.
RECOVERY_CODE_LENGTH = 24
RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RECOVERY_GROUP = 4
# The name authenticator apps show above the account's codes.
ISSUER = "quartapp"

WRONG_CODE = "That code is not right. Check the time on your phone and try again."
NOT_ON = "The second factor is not on for this account."
ALREADY_ON = "The second factor is on already."
START_AGAIN = "Start again: enter your password to get a new QR code."


def now() -> float:
    """The server's clock, in seconds (tests set it)."""
    return time.time()


def step_at(moment: float) -> int:
    return int(moment // STEP_SECONDS)


def code_at(secret: str, step: int) -> str:
    """The code of ``secret`` for ``step`` (what an authenticator app shows then)."""
    return pyotp.TOTP(secret, digits=CODE_DIGITS, interval=STEP_SECONDS).generate_otp(step)


def typed_code(text: str) -> str | None:
    """The six digits of what was typed, if it is an authenticator code (spaces allowed,
    as some apps show "123 456"), else None."""
    digits = "".join(text.split())
    if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit():
        return digits
    return None


def typed_recovery_code(text: str) -> str | None:
    """A recovery code as stored (lower case, no spaces or dashes), or None when what was
    typed cannot be one."""
    code = "".join(text.split()).replace("-", "").lower()
    if len(code) == RECOVERY_CODE_LENGTH and all(c in RECOVERY_ALPHABET for c in code):
        return code
    return None


def matching_step(secret: str, code: str, moment: float) -> int | None:
    """The step, within ``SKEW_STEPS`` of ``moment``'s, whose code ``code`` is; compared in
    constant time."""
    current = step_at(moment)
    found = None
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if pyotp.utils.strings_equal(code, code_at(secret, step)):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    return [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]


def shown(code: str) -> str:
    """A recovery code as the page shows it: upper case, in groups of four."""
    upper = code.upper()
    return "-".join(upper[i : i + RECOVERY_GROUP] for i in range(0, len(upper), RECOVERY_GROUP))


def recovery_hash(user_id: int, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{code}".encode()).hexdigest()


def qr_svg(uri: str) -> Markup:
    """The QR code of ``uri`` as an inline SVG: no style attribute or element, no script
    (the page's Content Security Policy allows neither inline), only a path with a stroke
    attribute; its size is set by static/app.css (class ``qr``)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", xmldecl=False, svgns=True, svgclass="qr", lineclass=None,
        omitsize=True, border=2, title=None, desc=None,
    )  # fmt: skip
    svg = out.getvalue().decode()
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code to scan" ', 1))  # noqa: S704 (segno's own SVG)


def _context(user_id: int) -> str:
    return f"totp:{user_id}"


T = TypeVar("T")


class WrongCode(AppError):
    """A code that is neither a current authenticator code nor an unused recovery code."""

    def __init__(self, status: int = 403, code: str = "wrong_code") -> None:
        super().__init__(WRONG_CODE, status=status, fields={"code": WRONG_CODE}, code=code)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the enrolment page shows, once: the secret, and the same as a QR code."""

    secret: str
    uri: str

    @property
    def qr(self) -> Markup:
        return qr_svg(self.uri)

    @property
    def grouped_secret(self) -> str:
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


@dataclass(frozen=True, slots=True)
class Proof:
    """A code accepted: which kind, and (a recovery code) how many are left."""

    recovery_code: bool
    recovery_codes_left: int | None = None


async def secret_of(user: User) -> str | None:
    """The user's TOTP secret in clear; None when there is none, or no key opens it (then
    only recovery codes work, and the fault is logged). A secret sealed under an earlier
    secret key is sealed again under the current one."""
    if not user.totp_secret:
        return None
    box = get_secret_box()
    try:
        secret, earlier = box.open(user.totp_secret, _context(user.id))
    except Unreadable:
        log.error(
            "the TOTP secret of user %s opens with no secret key: was SECRET_KEY changed "
            "without keeping the old one in SECRET_KEY_FALLBACKS?",
            user.id,
        )
        return None
    if earlier:
        sealed = box.seal(secret, _context(user.id))
        try:  # if this fails, the next use tries again
            await stored(
                User.filter(id=user.id, totp_secret=user.totp_secret).update(totp_secret=sealed)
            )
            user.totp_secret = sealed
        except ServiceUnavailable:
            log.warning("could not seal the TOTP secret of user %s again", user.id)
    return secret


def enrolment_of(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret, uri)


async def owner_checks(record: SessionRecord, check: Callable[[], Awaitable[T]]) -> T:
    """Run ``check`` (a code check for the signed-in owner of ``record``) behind the
    password re-check throttle, per session and per account: a wrong code stays counted,
    anything else gives its attempt back."""
    reservation = await get_throttle().reserve_password_check(record.key_id, record.user_id)
    if not reservation.allowed:
        raise too_many_attempts(reservation)
    async with counted_if_wrong(reservation):
        return await check()


@contextlib.asynccontextmanager
async def counted_if_wrong(reservation: Reservation) -> AsyncIterator[None]:
    """Around a code check that holds ``reservation`` of the throttle: a wrong code
    (WrongCode) keeps the attempt counted, anything else gives it back (after a fault, as
    far as Redis allows: the fault is what is raised)."""
    throttle = get_throttle()
    try:
        yield
    except WrongCode:
        raise
    except BaseException:
        with contextlib.suppress(*REDIS_ERRORS):
            await throttle.release(reservation)
        raise
    await throttle.release(reservation)


async def begin_enrolment(user: User) -> Enrolment:
    """A new secret for ``user``, kept (encrypted) until a code confirms it; an earlier
    unconfirmed one is replaced. A 409 when the factor is on already."""
    if user.two_factor_enabled:
        raise AppError(ALREADY_ON, status=409, code="conflict")
    secret = pyotp.random_base32()
    sealed = get_secret_box().seal(secret, _context(user.id))
    updated = await stored(
        User.filter(id=user.id, two_factor_enabled=False).update(
            totp_secret=sealed, totp_last_step=None
        )
    )
    if not updated:
        raise AppError(ALREADY_ON, status=409, code="conflict")
    return enrolment_of(user, secret)


async def _accept_step(user: User, step: int, *, enabled: bool) -> bool:
    """Record ``step`` as the last one used, if it is later than the last; whether it was
    (one conditional UPDATE: of two requests with the same code, one wins)."""
    later = Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step)
    updated = await stored(
        User.filter(later, id=user.id, two_factor_enabled=enabled).update(totp_last_step=step)
    )
    return bool(updated)


async def confirm_enrolment(user: User, typed: str) -> list[str]:
    """Turn the factor on with a current code of the secret being enrolled; the code counts
    as used. Returns the new recovery codes (their only showing)."""
    if user.two_factor_enabled:
        raise AppError(ALREADY_ON, status=409, code="conflict")
    secret = await secret_of(user)
    if secret is None:
        raise AppError(START_AGAIN, status=409, code="conflict")
    code = typed_code(typed)
    step = matching_step(secret, code, now()) if code else None
    if step is None or not await _accept_step(user, step, enabled=False):
        raise WrongCode()
    codes = new_recovery_codes()
    try:
        async with in_transaction():
            updated = await User.filter(
                id=user.id, two_factor_enabled=False, totp_secret=user.totp_secret
            ).update(two_factor_enabled=True)
            if updated:
                await _replace_recovery_codes(user.id, codes)
    except (BaseORMException, OSError, TimeoutError) as error:
        raise ServiceUnavailable("The account database") from error
    if not updated:  # a new enrolment began meanwhile, or the factor was turned on
        raise AppError(START_AGAIN, status=409, code="conflict")
    user.two_factor_enabled = True
    return codes


async def _replace_recovery_codes(user_id: int, codes: list[str]) -> None:
    await RecoveryCode.filter(user_id=user_id).delete()
    await RecoveryCode.bulk_create(
        [RecoveryCode(user_id=user_id, code_hash=recovery_hash(user_id, code)) for code in codes]
    )


async def check_code(
    user: User, typed: str, *, status: int = 403, code: str = "wrong_code"
) -> Proof:
    """Accept a current authenticator code or an unused recovery code of ``user`` (which
    uses it up), or raise WrongCode (with ``status`` and ``code``). The caller throttles."""
    if not user.two_factor_enabled:
        raise AppError(NOT_ON, status=409, code="conflict")
    if (digits := typed_code(typed)) is not None:
        secret = await secret_of(user)
        step = matching_step(secret, digits, now()) if secret else None
        if step is not None and await _accept_step(user, step, enabled=True):
            return Proof(recovery_code=False)
    elif (recovery := typed_recovery_code(typed)) is not None:
        used = await stored(
            RecoveryCode.filter(
                user_id=user.id, code_hash=recovery_hash(user.id, recovery)
            ).delete()
        )
        if used:
            left = await recovery_codes_left(user.id)
            return Proof(recovery_code=True, recovery_codes_left=left)
    raise WrongCode(status, code)


async def recovery_codes_left(user_id: int) -> int:
    return await stored(RecoveryCode.filter(user_id=user_id).count())


async def replace_recovery_codes(user: User) -> list[str]:
    """A new set of recovery codes; the old set stops working at once."""
    if not user.two_factor_enabled:
        raise AppError(NOT_ON, status=409, code="conflict")
    codes = new_recovery_codes()
    try:
        async with in_transaction():
            await _replace_recovery_codes(user.id, codes)
    except (BaseORMException, OSError, TimeoutError) as error:
        raise ServiceUnavailable("The account database") from error
    return codes


async def turn_off(user: User) -> None:
    """Turn the factor off: the secret, the last step and every recovery code go."""
    try:
        async with in_transaction():
            await User.filter(id=user.id).update(
                two_factor_enabled=False, totp_secret=None, totp_last_step=None
            )
            await RecoveryCode.filter(user_id=user.id).delete()
    except (BaseORMException, OSError, TimeoutError) as error:
        raise ServiceUnavailable("The account database") from error
    user.two_factor_enabled, user.totp_secret, user.totp_last_step = False, None, None


async def reseal_all() -> tuple[int, int]:
    """Seal again under the current secret key every TOTP secret sealed under a fallback
    key (after a rotation, docs/deployment.md). Returns how many were sealed again, and how
    many no key opens."""
    box = get_secret_box()
    resealed = unreadable = 0
    rows = await stored(User.filter(totp_secret__isnull=False).values_list("id", "totp_secret"))
    for user_id, sealed in rows:
        try:
            secret, earlier = box.open(str(sealed), _context(int(user_id)))
        except Unreadable:
            unreadable += 1
            log.error("the TOTP secret of user %s opens with no secret key", user_id)
            continue
        if earlier:
            new = box.seal(secret, _context(int(user_id)))
            await stored(User.filter(id=user_id, totp_secret=sealed).update(totp_secret=new))
            resealed += 1
    return resealed, unreadable

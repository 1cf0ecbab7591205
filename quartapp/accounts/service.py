"""What happens to a password: sign-up, sign-in, the re-check before a password change or an
account deletion, and judging a new password's strength. The views only read the form and
choose the answer's form; every rule about throttling, bcrypt and sessions is here.

Every password check reserves its attempt with the throttle before any bcrypt work, and a
sign-in's session starts only if the password it checked is still the account's current
one (``User.credentials_version``; see ``SessionStore.retire_credentials``), so neither
concurrency nor a race with a password change or a deletion gets around either rule.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from quart import request

from quartapp.accounts import two_factor
from quartapp.accounts.hashing import BUSY_RETRY_AFTER, Lane, PasswordsBusy, get_hasher
from quartapp.accounts.known_devices import (
    get_known_devices,
    remember_this_device,
)
from quartapp.accounts.mail_tokens import get_mail_tokens
from quartapp.accounts.models import User
from quartapp.accounts.policy import (
    PasswordStrength,
    canonical_email,
    judge_password,
    password_problem,
    sign_up_problems,
)
from quartapp.accounts.priority_pool import PoolBusy
from quartapp.accounts.queries import (
    change_password_hash,
    create_user,
    delete_user,
    find_user_by_id,
    find_user_signing_in,
    update_password_hash,
)
from quartapp.accounts.sign_in_flow import (
    SIGN_IN_FAILED,
    WAY_KEY,
    SecondStepPending,
    Way,
    first_step_passed,
    renew_session,
)
from quartapp.accounts.throttle import Reservation, get_throttle, too_many_attempts
from quartapp.accounts.verification import note_unverified, send_verification
from quartapp.infra.redis_client import REDIS_ERRORS
from quartapp.mail.messages import address_problem
from quartapp.mail.queue import get_mailer
from quartapp.sessions.devices import describe_device
from quartapp.sessions.extension import current_record, get_sessions
from quartapp.sessions.store import DELETED, SessionRecord
from quartapp.web.errors import AppError, InvalidFields, ServiceUnavailable

log = logging.getLogger(__name__)

NOT_CURRENT = "This is not your current password."
NOT_CURRENT_CODE = "This is not your current password, nor a current code from your app."
HINT_BUSY = "The strength hint is busy right now."
ASK_CURRENT = "Enter your current password."
SAME_AS_CURRENT = "Choose a new password that is different from your current one."


class SignedOut(Exception):
    """The signed-in account no longer exists: every session of it has ended."""


async def judge_new_password(password: str, email: str, *, hint: bool = False) -> PasswordStrength:
    """How strong a new password is, judged off the event loop and throttled (judging
    costs real CPU time): per account when signed in, else per client. Length problems are
    answered without judging.

    ``hint``: for the live hint while typing, which waits behind every judgement a form
    asked for and is refused first (a 503 saying the hint is busy) when the server is."""
    if password_problem(password):
        return judge_password(password, email)  # no zxcvbn: the length alone refuses it
    record = current_record()
    decision = await get_throttle().attempt_password_strength(
        get_sessions().client_ip(), record.user_id if record is not None else None
    )
    if not decision.allowed:
        raise too_many_attempts(decision)
    lane = Lane.OTHER if hint else Lane.FIRST
    try:
        return await get_hasher().judge(judge_password, password, email, lane)
    except PoolBusy:
        if hint:
            raise AppError(
                HINT_BUSY, status=503, headers={"Retry-After": str(BUSY_RETRY_AFTER)}
            ) from None
        raise PasswordsBusy() from None
    except TimeoutError as error:
        raise ServiceUnavailable("Password checking") from error


async def sign_up(typed_email: str, password: str) -> tuple[User, SessionRecord]:
    """Create an account and sign it in from this client.

    The cheap checks come first (a 422 costs nothing), then the sign-up is counted against
    the client, so a refused one costs no strength judgement and no bcrypt work either. A
    password refused as too weak gives its sign-up back."""
    email, problems = sign_up_problems(typed_email, password)
    if "email" not in problems and (problem := address_problem(email)):
        problems["email"] = problem  # an account whose mail could never reach it
    if "password" in problems:
        raise InvalidFields(problems)
    throttle = get_throttle()
    sessions = get_sessions()
    client = sessions.client_ip()
    reservation = await throttle.attempt_sign_up(client)
    if not reservation.allowed:
        raise too_many_attempts(reservation)
    try:
        if problem := (await judge_new_password(password, email)).message:
            problems["password"] = problem
        if problems:
            raise InvalidFields(problems)
    except AppError:
        await throttle.release(reservation)
        raise
    user = await create_user(email, await get_hasher().hash(password))
    try:
        record = await sessions.sign_in(
            user.id,
            user.email,
            credentials_version=user.credentials_version,
            data={WAY_KEY: Way.SIGN_UP.value},
        )
    except Exception:
        # Nothing half-written: an account nobody could sign in to right now goes again.
        await delete_user(user.id)
        raise
    await throttle.record_sign_in(user.email, client)
    note_unverified(user.email_verified)
    await remember_this_device(user.id)  # the sign-in right after is no news to the owner
    await send_verification(user)
    return user, record


@contextlib.asynccontextmanager
async def given_back_unless_wrong(reservation: Reservation) -> AsyncIterator[None]:
    """Give a reserved attempt back if the check fails for another reason than a wrong
    password (MySQL away, the request cancelled): only wrong passwords count."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(*REDIS_ERRORS):
            await get_throttle().release(reservation)
        raise


async def check_credentials(email: str, password: str, lane: Lane = Lane.OTHER) -> User | None:
    """The account these credentials open, or None; every failure costs the same, as an
    unknown email still pays for one bcrypt check. ``email`` is canonical, or "" when what
    was typed is not an email at all. ``lane``: FIRST for a client the account remembers.
    The account is read with whether it has a passkey (``queries.has_passkey``), for the
    session to note: one query."""
    user = await find_user_signing_in(email) if email else None
    hashed = user.password_hash if user is not None else None
    if not await get_hasher().verify(password, hashed, lane) or user is None:
        return None
    await upgrade_hash(user, password)
    return user


async def upgrade_hash(user: User, password: str) -> None:
    """Re-hash at today's cost when the stored hash was made with another one.

    Sign-in is the only moment the password is at hand. It costs one UPDATE, and only
    when needed; if MySQL fails just then, the sign-in goes ahead and the next one retries."""
    hasher = get_hasher()
    if not hasher.needs_rehash(user.password_hash):
        return
    try:
        await update_password_hash(user.id, await hasher.hash(password))
    except ServiceUnavailable:
        log.warning("could not upgrade the password hash of user %s", user.id)


async def authenticate(typed_email: str, password: str) -> User:
    """``check_credentials`` behind the sign-in throttle: a refused attempt is a 429 that
    costs no bcrypt work; a wrong password stays counted against the account and the
    client and is the one 401 that reads the same for every failure. (A MySQL outage is a
    503.)"""
    try:
        email = account = canonical_email(typed_email)
    except ValueError:
        email, account = "", typed_email.strip()  # malformed emails are throttled all the same
    throttle = get_throttle()
    client = get_sessions().client_ip()
    reservation = await throttle.reserve_sign_in(account, client)
    if not reservation.allowed:
        raise too_many_attempts(reservation)
    # A client the account remembers (its owner's, as a rule) goes before the others: a
    # flood of guesses from elsewhere fills only the other lane's bounded queue.
    lane = Lane.FIRST if reservation.remembered else Lane.OTHER
    async with given_back_unless_wrong(reservation):
        user = await check_credentials(email, password, lane)
    if user is None:
        raise AppError(SIGN_IN_FAILED, status=401, code="invalid_credentials")
    # Given back, but the client is remembered (and its failures forgotten) only when the
    # session starts: a password without its second factor is not a sign-in yet.
    await throttle.release(reservation)
    return user


async def sign_in(
    typed_email: str, password: str, next_page: str | None = None
) -> SessionRecord | SecondStepPending:
    """Check the credentials, then start a new session for this request, or, with a second
    factor on, leave the second step pending (sign_in_flow)."""
    user = await authenticate(typed_email, password)
    return await first_step_passed(user, Way.PASSWORD, next_page)


async def confirm_password(
    record: SessionRecord, password: str, field: str, *, or_code: bool = False
) -> User:
    """The signed-in user's account, once they have typed its password again (or, with
    ``or_code`` and a second factor on, a current code from the authenticator app: six
    digits can never be a password, which is 8 characters at least).

    Throttled per session and per account before any bcrypt work (a stolen session must not
    become a way to guess the password); a wrong one is a 403 naming ``field``. Raises
    SignedOut when the account has been deleted meanwhile."""
    sessions = get_sessions()
    user = await find_user_by_id(record.user_id)
    if user is None:  # deleted while this session lived on: it ends here too
        await sessions.sign_out_everywhere(record.user_id)
        raise SignedOut()
    throttle = get_throttle()
    reservation = await throttle.reserve_password_check(record.key_id, record.user_id)
    if not reservation.allowed:
        raise too_many_attempts(reservation)
    if or_code and user.two_factor_enabled and two_factor.typed_code(password) is not None:
        async with given_back_unless_wrong(reservation):
            try:
                await two_factor.check_code(user, password)
                right = True
            except two_factor.WrongCode:
                right = False
        if not right:  # the attempt stays counted
            raise InvalidFields({field: NOT_CURRENT_CODE}, status=403, code="wrong_code")
        await throttle.release(reservation)
        return user
    async with given_back_unless_wrong(reservation):
        matches = await get_hasher().verify(password, user.password_hash)
    if not matches:
        raise InvalidFields({field: NOT_CURRENT}, status=403, code="wrong_password")
    await throttle.release(reservation)
    return user


async def change_password(
    record: SessionRecord, current_password: str, new_password: str
) -> SessionRecord:
    """Set a new password. Every other session ends, and this one goes on under a new
    token, so a cookie copied before the change is dead too; so is every sign-in that
    checked the old password while this ran."""
    problems: dict[str, str] = {}
    if not current_password:
        problems["current_password"] = ASK_CURRENT
    elif new_password == current_password:  # no change at all: refused before any judging
        raise InvalidFields({"new_password": SAME_AS_CURRENT})
    if problem := (await judge_new_password(new_password, record.email)).message:
        problems["new_password"] = problem
    if problems:
        raise InvalidFields(problems)
    user = await confirm_password(record, current_password, "current_password", or_code=True)
    version = await set_password(user, new_password)
    new_record = await renew_session(record, user.email, version)
    await notify_password_changed(user.id, "change")
    return new_record


async def queue_notice(job: str, user_id: int, **details: object) -> None:
    """Queue a notice mail (``job``) about something that just happened to the account,
    with this request's device and address (ASVS 6.3.7); a queue fault is logged, it does
    not undo what happened."""
    try:
        await get_mailer().enqueue(
            job,
            user_id=user_id,
            device=describe_device(request.headers.get("User-Agent")),
            ip=get_sessions().client_ip(),
            **details,
        )
    except REDIS_ERRORS:
        log.warning("could not queue the %s of user %s", job, user_id)


async def notify_password_changed(user_id: int, how: str) -> None:
    """Tell the owner their password was changed (``how``: "change" or "reset")."""
    await queue_notice("password_changed_notice", user_id, how=how)


async def set_password(user: User, new_password: str) -> int:
    """Store a new password (already judged acceptable) for ``user``: the one way every
    password change goes, a reset included. Returns the password's new version.

    The hash first, then the floor (see SessionStore.retire_credentials); the caller then
    ends the sessions. The new version kills every reset and address-change link out, sent
    or still queued (their grants hold the version they were asked for under)."""
    new_hash = await get_hasher().hash(new_password)
    version = await change_password_hash(user, new_hash)
    await get_sessions().store.retire_credentials(user.id, version)
    return version


async def delete_account(record: SessionRecord, password: str) -> None:
    """Delete the account and every session of it, once its password is typed again.

    Sessions go first: if MySQL then fails, the user is signed out everywhere but keeps an
    account to sign in to, never a live session of an account that is gone. After the row,
    the floor retires every password of the account and a second sweep ends any session a
    sign-in started in between; later sign-ins find no account."""
    if not password:
        raise InvalidFields({"password": "Enter your password."})
    user = await confirm_password(record, password, "password", or_code=True)
    sessions = get_sessions()
    await sessions.sign_out_everywhere(user.id)
    await delete_user(user.id)
    try:
        await sessions.store.retire_credentials(user.id, DELETED)
        await sessions.store.revoke_all(user.id)
        await get_known_devices().forget_all(user.id)
        await get_mail_tokens().forget_user(user.id)  # their records hold the address
    except REDIS_ERRORS:
        log.warning("account %s deleted; the second sweep of its sessions failed", user.id)

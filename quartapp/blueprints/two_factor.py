"""The second factor: turning it on and off and new recovery codes (signed in), and the
sign-in's second step (after the password). For browsers, with or without htmx, and JSON
clients; the rules are in accounts/two_factor.py and accounts/sign_in_flow.py."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, url_for
from quart_auth import Unauthorized

from quartapp.accounts import service, sign_in_flow, two_factor
from quartapp.accounts.models import User
from quartapp.accounts.queries import find_user_by_id
from quartapp.accounts.sign_in_flow import SecondStepEnded, SecondStepPending, keep_pending
from quartapp.engine.quart_context import current_request
from quartapp.sessions.csrf import csrf_token
from quartapp.sessions.extension import current_record
from quartapp.sessions.store import SessionRecord
from quartapp.web.access import public, signed_in
from quartapp.web.api import POST_ANYONE, POST_SIGNED_IN, SIGNED_IN, described, read_model
from quartapp.web.errors import AppError, InvalidFields
from quartapp.web.forms import read_fields
from quartapp.web.hypermedia import navigate
from quartapp.web.responder import Outcome, Page, Refused, respond
from quartapp.web.schemas import (
    Code,
    CurrentPassword,
    PasswordOrCode,
    RecoveryCodes,
    SessionSummary,
    SignedInWithCode,
    TurnOffTwoFactor,
    TwoFactorEnrolment,
    TwoFactorRequired,
    TwoFactorStatus,
)

bp = Blueprint("two_factor", __name__)

# Fixed messages for flags in the address of the settings page, never text taken from it.
SETTINGS_NOTICES = {
    "off": "The second factor is off. Signing in needs only your password now.",
}
DOWNLOAD_NAME = "quartapp-recovery-codes.txt"


def signed_in_record() -> SessionRecord:
    record = current_record()
    assert record is not None, "only for @signed_in views"
    return record


async def account_of(record: SessionRecord) -> User:
    user = await find_user_by_id(record.user_id)
    if user is None:  # deleted while this session lived on
        raise Unauthorized()
    return user


def page(template: str, **context: Any) -> Page:
    """A page of this area; htmx swaps its ``#two-factor`` part (``_<template>``). Its
    password forms name the signed-in account for password managers (``email``)."""
    record = current_record()
    if record is not None:
        context = {"email": record.email, **context}
    return Page(f"two_factor/{template}.html", f"two_factor/_{template}.html", context)


async def settings_page_of(user: User, failed_form: str) -> Page:
    """The settings page again, for a refused form (``failed_form``: "begin", "new_codes"
    or "off", whose fields the errors belong to)."""
    left = await two_factor.recovery_codes_left(user.id) if user.two_factor_enabled else 0
    return page(
        "settings", enabled=user.two_factor_enabled, codes_left=left, failed_form=failed_form
    )


async def notify(user_id: int, what: str, left: int | None = None) -> None:
    await service.queue_notice("two_factor_notice", user_id, what=what, left=left)


# -- the settings ---------------------------------------------------------------------------


@bp.get("/account/two-factor")
@signed_in
@described(answers={200: TwoFactorStatus}, errors=[401], security=SIGNED_IN)
async def settings() -> Response:
    """Whether the second factor is on, and the forms that turn it on or off or make new
    recovery codes; JSON clients get the status."""
    user = await account_of(signed_in_record())
    this = current_request()
    notice = None
    if this.query_string:
        notice = SETTINGS_NOTICES.get(this.args.get("done", ""))
        if this.args.get("done") == "recovery_code" and user.two_factor_enabled:
            notice = "recovery_code"  # the page says how many are left
    left = await two_factor.recovery_codes_left(user.id) if user.two_factor_enabled else 0
    status = TwoFactorStatus(two_factor_enabled=user.two_factor_enabled, recovery_codes_left=left)
    context = {"enabled": user.two_factor_enabled, "codes_left": left, "notice": notice}
    return await respond(Outcome(status, page=page("settings", **context)))


@bp.post("/account/two-factor")
@signed_in
@described(
    request=CurrentPassword,
    answers={200: TwoFactorEnrolment},
    errors=[401, 409, 429],
    security=POST_SIGNED_IN,
)
async def begin() -> Response:
    """Begin turning the second factor on: after the password, a new secret for the
    authenticator app, shown this once (the page shows it as a QR code too).

    The factor is on only once POST /account/two-factor/confirm has a code from the app.
    A wrong password is a 403 `wrong_password`; a factor already on, a 409."""
    typed = await read_model(CurrentPassword)
    record = signed_in_record()
    try:
        user = await service.confirm_password(record, typed.password, "password")
        enrolment = await two_factor.begin_enrolment(user)
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        return await respond(
            Refused(error, await settings_page_of(await account_of(record), "begin"))
        )
    answer = TwoFactorEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.uri)
    return await respond(Outcome(answer, page=page("enrol", enrolment=enrolment)))


@bp.post("/account/two-factor/confirm")
@signed_in
@described(
    request=Code, answers={200: RecoveryCodes}, errors=[401, 409, 429], security=POST_SIGNED_IN
)
async def confirm() -> Response:
    """Turn the second factor on with a current code from the app (which counts as used).

    The answer holds the ten recovery codes, shown this once. A wrong code is a 403
    `wrong_code` (the enrolment stays, so the next code can be tried); none begun, a 409."""
    typed = await read_model(Code)
    record = signed_in_record()
    user = await account_of(record)
    try:
        codes = await two_factor.owner_checks(
            record, lambda: two_factor.confirm_enrolment(user, typed.code)
        )
    except AppError as error:
        secret = None if user.two_factor_enabled else await two_factor.secret_of(user)
        if secret is None:
            return await respond(Refused(error, await settings_page_of(user, "begin")))
        enrolment = two_factor.enrolment_of(user, secret)
        return await respond(
            Refused(error, page("enrol", enrolment=enrolment, failed_form="confirm"))
        )
    await notify(user.id, "on")
    return await show_codes(codes, turned_on=True)


async def show_codes(codes: list[str], *, turned_on: bool = False) -> Response:
    shown = [two_factor.shown(code) for code in codes]
    return await respond(
        Outcome(
            RecoveryCodes(recovery_codes=shown),
            page=page("recovery_codes", codes=shown, turned_on=turned_on),
        )
    )


@bp.post("/account/two-factor/recovery-codes")
@signed_in
@described(
    request=PasswordOrCode,
    answers={200: RecoveryCodes},
    errors=[401, 409, 429],
    security=POST_SIGNED_IN,
)
async def new_recovery_codes() -> Response:
    """New recovery codes, after the password or a current code; the old ones stop working
    at once. Shown this once."""
    typed = await read_model(PasswordOrCode)
    record = signed_in_record()
    try:
        user = await service.confirm_password(record, typed.password, "password", or_code=True)
        codes = await two_factor.replace_recovery_codes(user)
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        page_again = await settings_page_of(await account_of(record), "new_codes")
        return await respond(Refused(error, page_again))
    await notify(user.id, "new_codes")
    return await show_codes(codes)


@bp.post("/account/two-factor/off")
@signed_in
@described(
    request=TurnOffTwoFactor,
    answers={200: TwoFactorStatus},
    errors=[401, 409, 429],
    security=POST_SIGNED_IN,
)
async def turn_off() -> Response:
    """Turn the second factor off, with the password and a current code or an unused
    recovery code: the secret and every recovery code are deleted."""
    typed = await read_model(TurnOffTwoFactor)
    record = signed_in_record()
    try:
        user = await service.confirm_password(record, typed.password, "password")
        await two_factor.owner_checks(record, lambda: two_factor.check_code(user, typed.code))
        await two_factor.turn_off(user)
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        return await respond(
            Refused(error, await settings_page_of(await account_of(record), "off"))
        )
    await notify(user.id, "off")
    status = TwoFactorStatus(two_factor_enabled=False, recovery_codes_left=0)
    return await respond(Outcome(status, redirect=url_for("two_factor.settings", done="off")))


@bp.post("/account/two-factor/recovery-codes/download")
@signed_in
async def download_recovery_codes() -> Response:
    """The recovery codes the page just showed, as a text file to keep (the page posts them
    back: the server keeps only their hashes, so it could not send them otherwise)."""
    fields = await read_fields("codes")
    lines = fields["codes"].split()  # the page sends them separated by spaces
    if not 1 <= len(lines) <= two_factor.RECOVERY_CODE_COUNT or not all(
        two_factor.typed_recovery_code(line) for line in lines
    ):
        raise InvalidFields({"codes": "These are not recovery codes."})
    text = (
        "Recovery codes for your quartapp account. Each works once, in place of a code from\n"
        "your authenticator app. Keep them somewhere safe.\n\n" + "\n".join(lines) + "\n"
    )
    response = Response(text, mimetype="text/plain")
    response.headers["Content-Disposition"] = f'attachment; filename="{DOWNLOAD_NAME}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the sign-in's second step ----------------------------------------------------------


async def ask_for_code(pending: SecondStepPending) -> Response:
    """The answer to a right password when a code is wanted next (sets the pending step's
    cookie): browsers go to the code form, JSON clients are told."""
    outcome = Outcome(
        TwoFactorRequired(two_factor_required=True), redirect=url_for("two_factor.code_page")
    )
    return keep_pending(await respond(outcome), pending)


def ended_url() -> str:
    """The pending step is over: back to the password, saying why."""
    return url_for("auth.sign_in_page", two_factor="ended")


def ended() -> Response:
    return keep_pending(navigate(ended_url()), None)


@bp.get("/signin/two-factor")
@public
async def code_page() -> Response:
    if current_record() is not None:
        return navigate(url_for("home.home"))
    if await sign_in_flow.read_pending() is None:
        return ended()
    return await respond(Outcome(page=page("code", failed_form=None)))


@bp.post("/api/v1/signin/two-factor")
@bp.post("/signin/two-factor", endpoint="code_form")
@public
@described(request=Code, answers={200: SignedInWithCode}, errors=[401, 429], security=POST_ANYONE)
async def sign_in_with_code() -> Response:
    """The sign-in's second step: a current code from the authenticator app, or an unused
    recovery code, starts the session (a new one, its cookie set).

    Needs the cookie the password step set. A wrong code is a 401 `invalid_code`; five
    wrong codes, 5 minutes, or no password step at all end the step: a 401
    `two_factor_ended` (sign in with the password again). Wrong codes count in the
    account's sign-in throttle (429)."""
    typed = await read_model(Code)
    try:
        passed = await sign_in_flow.second_step(typed.code)
    except SecondStepEnded as error:
        return keep_pending(await respond(Refused(error, redirect=ended_url())), None)
    except AppError as error:
        form = "app" if two_factor.typed_code(typed.code) is not None else "recovery"
        return await respond(Refused(error, page("code", failed_form=form)))
    proof = passed.proof
    if proof.recovery_code:
        await notify(passed.record.user_id, "recovery_code_used", proof.recovery_codes_left)
        target = url_for("two_factor.settings", done="recovery_code")
    else:
        target = passed.next_page or url_for("home.home")
    # After a recovery code only, the answer says how many are left (unset: left out).
    left = {"recovery_codes_left": proof.recovery_codes_left} if proof.recovery_code else {}
    answer = SignedInWithCode(
        message="signed in",
        email=passed.record.email,
        session=SessionSummary.of(passed.record),
        csrf_token=csrf_token(),
        **left,
    )
    return keep_pending(await respond(Outcome(answer, redirect=target)), None)

"""What mailed links lead to: asking for a password-reset link, setting a new password
with one, verifying an address, changing it and undoing a change; for browsers (with or
without htmx) and JSON clients.

Pages reached by a token in their address send ``Referrer-Policy: no-referrer``, so the
token never leaves in a Referer header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, url_for
from quart.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from quartapp.accounts import email_change, email_undo, recovery, verification
from quartapp.accounts.mail_tokens import LinkDead, Purpose
from quartapp.accounts.mailings import duration_in_words
from quartapp.accounts.queries import find_user_by_id
from quartapp.blueprints.account import read_account
from quartapp.engine.quart_context import current_application
from quartapp.sessions.csrf import csrf_token
from quartapp.sessions.extension import current_record, get_sessions, session_access
from quartapp.web.access import public, signed_in
from quartapp.web.api import POST_ANYONE, POST_SIGNED_IN, SIGNED_IN, described, read_model
from quartapp.web.errors import AppError
from quartapp.web.responder import Outcome, Page, Refused, respond
from quartapp.web.schemas import (
    Account,
    ChangeLink,
    ChangeUndone,
    EmailChanged,
    EmailVerified,
    ForgotForm,
    ForgotPassword,
    LinkToken,
    NewPassword,
    PasswordReset,
    ResetLink,
    ResetLinkSent,
    SessionSummary,
    UndoLink,
    VerificationSent,
    VerifyLink,
)

bp = Blueprint("mail_links", __name__)

# The POSTs here without a body can still answer 403 (the CSRF token) and 413: a web form
# is read for its token when the header does not carry one.


class VerifyToken(BaseConverter):
    """The token in a verification link's address: any path segment but ``resend``, so that
    /email/verify/resend is only the resend route (a GET of it is a 405 naming POST, not a
    dead link)."""

    regex = r"(?!resend$)[^/]+"


@bp.record_once
def add_converters(state: BlueprintSetupState) -> None:
    # Before the blueprint's routes are added to the app, which name it.
    state.app.url_map.converters["verify_token"] = VerifyToken


def signed_in_nav() -> dict[str, Any]:
    """For the pages here: a signed-in visitor gets the navigation of the signed-in pages
    (``templates/base.html``)."""
    return {"signed_in": current_record() is not None}


def no_referrer(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def answer(outcome: Outcome | Refused) -> Response:
    """``respond`` for a page reached by a token in its address."""
    return no_referrer(await respond(outcome))


@dataclass(frozen=True, slots=True)
class Step:
    """A way on from a dead link: a link, or (``post``) a button that posts a form."""

    label: str
    href: str
    post: bool = False


@dataclass(frozen=True, slots=True)
class NextStep:
    """What to do about a dead link: in words for the page (``said``) and for JSON clients
    (``api``, naming the API's routes), and the page's ways on."""

    said: str
    api: str
    steps: list[Step]


async def dead_link_steps(purpose: Purpose) -> NextStep:
    """What to do about a dead link of ``purpose``, for this visitor. Only a visitor who is
    not signed in is offered to sign in; a signed-in one is offered the way back home."""
    record = current_record()
    home = Step("Back home", url_for("home.home"))
    sign_in = url_for("auth.sign_in_page")
    if purpose == "verify":
        resend = url_for("mail_links.resend_verification")
        if record is None:
            return NextStep(
                "Sign in to send yourself a new one.",
                f"Sign in, then POST {resend} for a new one.",
                [Step("Sign in to send a new verification link", sign_in)],
            )
        user = await find_user_by_id(record.user_id)
        if user is None or user.email_verified:
            verified = "Your email address is verified already."
            return NextStep(verified, verified, [home])
        return NextStep(
            "Send yourself a new one.",
            f"POST {resend} for a new one.",
            [Step("Send a new verification link", resend, post=True), home],
        )
    if purpose == "email":
        change = url_for("account.email_page")
        if record is None:
            return NextStep(
                "Sign in to ask for a new address change.",
                f"Sign in, then ask for a new address change: POST {change}.",
                [Step("Sign in to ask for a new address change", sign_in)],
            )
        return NextStep(
            "Ask for a new address change on your account page.",
            f"Ask for a new address change: POST {change}.",
            [Step("Ask for a new address change", change), home],
        )
    last = home if record is not None else Step("Sign in", sign_in)
    forgot_path = url_for("mail_links.forgot")
    steps = [Step("Ask for a new password link", forgot_path), last]
    if purpose == "undo":
        return NextStep(UNDO_DEAD_HINT, UNDO_DEAD_HINT, steps)
    return NextStep(
        "Ask for a new password link.", f"Ask for a new one: POST {forgot_path}.", steps
    )


async def link_dead(purpose: Purpose) -> Refused:
    """The 410 for a dead link of ``purpose``: what it was, and the step that fits it for
    this visitor (JSON clients get that step in words)."""
    next_step = await dead_link_steps(purpose)
    error = LinkDead(purpose, next_step.api)
    page = Page(
        "auth/link_dead.html",
        "auth/_link_dead.html",
        {
            "reason": error.reason,
            "next_step": next_step.said,
            "steps": next_step.steps,
            **signed_in_nav(),
        },
    )
    return Refused(error, page)


# -- forgot ---------------------------------------------------------------------------


def forgot_form(**context: Any) -> Page:
    lifetime = duration_in_words(int(current_application().config["PASSWORD_RESET_TTL"]))
    context = {**signed_in_nav(), "link_lifetime": lifetime, **context}
    return Page("auth/forgot.html", "auth/_forgot_form.html", context)


@bp.get("/password/forgot")
@public
@session_access("read")
@described(answers={200: ForgotForm})
async def forgot_page() -> Response:
    """How to ask for a password-reset link.

    What to POST here, and how long a mailed link works. Browsers get the form."""
    form = ForgotForm(
        message=(
            'POST {"email"} here: if the address has an account, a link to set a new password '
            "is mailed to it."
        ),
        link_lifetime=int(current_application().config["PASSWORD_RESET_TTL"]),
    )
    return await respond(Outcome(form, page=forgot_form()))


@bp.post("/password/forgot")
@public
@session_access("read")
@described(request=ForgotPassword, answers={202: ResetLinkSent}, errors=[429], security=POST_ANYONE)
async def forgot() -> Response:
    """Ask for a password-reset link by mail.

    The same answer whether or not the address has an account (the mail worker finds out),
    in the same time. Throttled per client and per address."""
    typed = await read_model(ForgotPassword)
    try:
        await recovery.request_password_reset(typed.email)
    except AppError as error:
        return await respond(Refused(error, forgot_form(email=typed.email.strip())))
    sent = ResetLinkSent(message=recovery.SENT)
    return await respond(Outcome(sent, status=202, page=forgot_form(sent=recovery.SENT)))


# -- reset ----------------------------------------------------------------------------


def reset_form(token: str, email: str) -> Page:
    context = {"token": token, "email": email, **signed_in_nav()}
    return Page("auth/reset.html", "auth/_reset_form.html", context)


@bp.get("/password/reset/<token>")
@public
@session_access("read")
@described(answers={200: ResetLink}, errors=[404, 410], path=LinkToken)
async def reset_page(token: str) -> Response:
    """Look at a password-reset link: whose it is. Looking never uses the link up."""
    try:
        user = await recovery.check_reset_link(token)
    except LinkDead:
        return await answer(await link_dead("reset"))
    link = ResetLink(email=user.email, valid=True)
    return await answer(Outcome(link, page=reset_form(token, user.email)))


@bp.post("/password/reset/<token>")
@public
@session_access("read")
@described(
    request=NewPassword,
    answers={200: PasswordReset},
    errors=[404, 410, 429],
    security=POST_ANYONE,
    path=LinkToken,
)
async def reset(token: str) -> Response:
    """Set a new password with a reset link.

    Every session of the account ends, and so does this client's, whichever account it was
    signed in to: sign in with the new password. A password the policy refuses is a 422 and
    leaves the link live. Browsers are sent to sign in."""
    typed = await read_model(NewPassword)
    try:
        await recovery.reset_password(token, typed.new_password)
    except LinkDead:
        return await answer(await link_dead("reset"))
    except AppError as error:
        try:
            user = await recovery.check_reset_link(token)
        except LinkDead:
            return await answer(await link_dead("reset"))
        return await answer(Refused(error, reset_form(token, user.email)))
    await get_sessions().sign_out()  # a session of another account ends on the server too
    done = PasswordReset(message="password reset; sign in with it")
    return await answer(Outcome(done, redirect=url_for("auth.sign_in_page", reset=1)))


# -- verifying an address ---------------------------------------------------------------


@bp.get("/email/verify/<verify_token:token>")
@public
@session_access("read")
@described(answers={200: VerifyLink}, errors=[404, 410], path=LinkToken)
async def verify_page(token: str) -> Response:
    """Look at a verification link: the address it verifies. Only its POST changes anything
    (mail scanners follow links)."""
    try:
        email = await verification.check_verify_link(token)
    except LinkDead:
        return await answer(await link_dead("verify"))
    context = {"token": token, "email": email, **signed_in_nav()}
    page = Page("auth/verify.html", "auth/_verify_form.html", context)
    return await answer(Outcome(VerifyLink(email=email, valid=True), page=page))


@bp.post("/email/verify/<verify_token:token>")
@public
@session_access("read")
@described(
    answers={200: EmailVerified}, errors=[403, 404, 410, 413], security=POST_ANYONE, path=LinkToken
)
async def verify(token: str) -> Response:
    """Verify the address a link was mailed to (signed in or not).

    Browsers go home when signed in, else to sign in."""
    try:
        email = await verification.verify_email(token)
    except LinkDead:
        return await answer(await link_dead("verify"))
    target = "home.home" if current_record() is not None else "auth.sign_in_page"
    done = EmailVerified(message="email verified", email=email)
    return await answer(Outcome(done, redirect=url_for(target, verified=1)))


@bp.post("/email/verify/resend")
@signed_in
@described(
    answers={202: VerificationSent, 200: VerificationSent},
    errors=[401, 403, 413, 429],
    security=POST_SIGNED_IN,
)
async def resend_verification() -> Response:
    """Mail the signed-in account a new verification link.

    A 202 when one is sent; a 200, sending nothing, when the address is verified already.
    Throttled per account. Links sent before stay live."""
    record = current_record()
    assert record is not None
    if await verification.resend(record):
        said = VerificationSent(message=f"We sent a new link to {record.email}.", sent=True)
        status, home = 202, url_for("home.home", sent=1)
    else:
        said = VerificationSent(message="Your email address is verified already.", sent=False)
        status, home = 200, url_for("home.home", verified=1)
    # htmx swaps the notice in place; a form posted without JavaScript goes home.
    notice = Page(
        "home/home.html", "home/_verify_notice.html", {"sent": said.message, "verified": True}
    )
    return await respond(Outcome(said, status=status, page=notice, redirect=home))


# -- changing an address -----------------------------------------------------------------


def change_form(**context: Any) -> Page:
    return Page(
        "auth/email_change.html",
        "auth/_email_change_form.html",
        {**signed_in_nav(), **context},
    )


@bp.get("/email/change/<token>")
@public
@session_access("read")
@described(answers={200: ChangeLink}, errors=[404, 410], path=LinkToken)
async def email_change_page(token: str) -> Response:
    """Look at an address-change link: the address it gives the account. Only its POST
    changes the address (mail scanners follow links)."""
    try:
        _, new_email = await email_change.check_change_link(token)
    except LinkDead:
        return await answer(await link_dead("email"))
    link = ChangeLink(new_email=new_email, valid=True)
    return await answer(Outcome(link, page=change_form(token=token, new_email=new_email)))


@bp.post("/email/change/<token>")
@public
@session_access("read")
@described(
    answers={200: EmailChanged},
    errors=[403, 404, 409, 410, 413],
    security=POST_ANYONE,
    path=LinkToken,
)
async def confirm_email_change(token: str) -> Response:
    """Use an address-change link: the account's address becomes the link's.

    A client signed in to the account goes on signed in, in a new session (its cookie is
    set, and the answer carries its CSRF token); every other session ends. A 409
    `email_taken` when another account has the address now (the link stays live)."""
    try:
        user, _, record = await email_change.apply_change(token)
    except LinkDead:
        return await answer(await link_dead("email"))
    except AppError as error:  # 409: another account has the address now
        return await answer(Refused(error, change_form()))
    changed = EmailChanged(message="email changed", email=user.email, signed_in=False)
    target = url_for("auth.sign_in_page", email_changed=1)
    if record is not None:
        changed = EmailChanged(
            message="email changed",
            email=user.email,
            signed_in=True,
            session=SessionSummary.of(record),
            csrf_token=csrf_token(),
        )
        target = url_for("account.email_page", changed=1)
    return await answer(Outcome(changed, redirect=target))


# -- undoing an address change, from the old address -------------------------------------

UNDO_DEAD_HINT = (
    "An undo link works once, for a few days, and only while no later undo was used. If "
    "someone else holds your account and this link no longer works, contact the people who "
    "run this site."
)


def undo_form(token: str, email: str) -> Page:
    context = {"token": token, "email": email, **signed_in_nav()}
    return Page("auth/email_undo.html", "auth/_email_undo_form.html", context)


@bp.get("/email/undo/<token>")
@public
@session_access("read")
@described(answers={200: UndoLink}, errors=[404, 410], path=LinkToken)
async def undo_email_change_page(token: str) -> Response:
    """Look at an undo link (mailed to the old address after a change): the address it
    puts back. Only its POST changes anything (mail scanners follow links)."""
    try:
        email = await email_undo.check_undo_link(token)
    except LinkDead:
        return await answer(await link_dead("undo"))
    return await answer(Outcome(UndoLink(email=email, valid=True), page=undo_form(token, email)))


@bp.post("/email/undo/<token>")
@public
@session_access("read")
@described(
    answers={200: ChangeUndone},
    errors=[403, 404, 409, 410, 413],
    security=POST_ANYONE,
    path=LinkToken,
)
async def undo_email_change(token: str) -> Response:
    """Use an undo link: put the earlier address back.

    Every session of the account ends, this client's too, and the password no longer works:
    `reset_path` is a password-reset link for the restored address (browsers are sent
    there). A 409 `email_taken` when another account has the address now."""
    try:
        email, reset_token = await email_undo.undo_change(token)
    except LinkDead:
        return await answer(await link_dead("undo"))
    except AppError as error:  # 409: another account has the address now
        return await answer(Refused(error, undo_form(token, "")))
    get_sessions().forget()
    reset_path = url_for("mail_links.reset_page", token=reset_token)
    undone = ChangeUndone(
        message="address restored; set a new password", email=email, reset_path=reset_path
    )
    return await answer(Outcome(undone, redirect=reset_path))


# -- the account ------------------------------------------------------------------------


@bp.get("/api/v1/account")
@signed_in
@session_access("read")
@described(answers={200: Account}, errors=[401], security=SIGNED_IN)
async def account() -> Response:
    """The signed-in account, for JSON clients."""
    record = current_record()
    assert record is not None
    return await respond(Outcome(await read_account(record)))

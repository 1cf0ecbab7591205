"""What mailed links lead to: asking for a password-reset link, setting a new password
with one, verifying an address, changing it and undoing a change; for browsers (with or
without htmx) and JSON clients.

Pages reached by a token in their address send ``Referrer-Policy: no-referrer``, so the
token never leaves in a Referer header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, jsonify, request, url_for
from quart_auth import current_user

from quartapp.accounts import email_change, email_undo, recovery, verification
from quartapp.accounts.mail_tokens import LinkDead, Purpose
from quartapp.accounts.queries import find_user_by_id
from quartapp.blueprints.account import read_account
from quartapp.sessions.csrf import csrf_token
from quartapp.sessions.extension import (
    current_record,
    get_sessions,
    session_access,
    session_summary,
)
from quartapp.web.access import public, signed_in
from quartapp.web.api import SIGNED_IN, described
from quartapp.web.errors import AppError
from quartapp.web.forms import read_fields
from quartapp.web.hypermedia import htmx, navigate, render, wants_json
from quartapp.web.responder import Outcome, respond
from quartapp.web.schemas import Account

bp = Blueprint("mail_links", __name__)


def signed_in_nav() -> dict[str, Any]:
    """For the pages here: a signed-in visitor gets the navigation of the signed-in pages
    (``templates/base.html``)."""
    return {"signed_in": current_record() is not None}


def no_referrer(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@dataclass(frozen=True, slots=True)
class Step:
    """A way on from a dead link: a link, or (``post``) a button that posts a form."""

    label: str
    href: str
    post: bool = False


async def dead_link_steps(purpose: Purpose) -> tuple[str, list[Step]]:
    """What to do about a dead link of ``purpose``, for this visitor: a sentence (what JSON
    clients are told) and the ways on. Only a visitor who is not signed in is offered to
    sign in; a signed-in one is offered the way back home."""
    record = current_record()
    home = Step("Back home", url_for("home.home"))
    sign_in = url_for("auth.sign_in_page")
    if purpose == "verify":
        if record is None:
            return "Sign in to send yourself a new one.", [
                Step("Sign in to send a new verification link", sign_in)
            ]
        user = await find_user_by_id(record.user_id)
        if user is None or user.email_verified:
            return "Your email address is verified already.", [home]
        resend = Step("Send a new verification link", url_for("mail_links.resend_verification"))
        return "Send yourself a new one.", [Step(resend.label, resend.href, post=True), home]
    if purpose == "email":
        if record is None:
            return "Sign in to ask for a new address change.", [
                Step("Sign in to ask for a new address change", sign_in)
            ]
        change = Step("Ask for a new address change", url_for("account.email_page"))
        return "Ask for a new address change on your account page.", [change, home]
    last = home if record is not None else Step("Sign in", sign_in)
    forgot = Step("Ask for a new password link", url_for("mail_links.forgot_page"))
    if purpose == "undo":
        return UNDO_DEAD_HINT, [forgot, last]
    return "Ask for a new password link.", [forgot, last]


async def link_dead(purpose: Purpose) -> Response:
    """The 410 for a dead link of ``purpose``: what it was, and the step that fits it for
    this visitor (JSON clients get that step in words)."""
    next_step, steps = await dead_link_steps(purpose)
    error = LinkDead(purpose, next_step)
    if wants_json():
        raise error
    page = await render(
        "auth/link_dead.html",
        "auth/_link_dead.html",
        error.status,
        error=error,
        reason=error.reason,
        next_step=next_step,
        steps=steps,
        **signed_in_nav(),
    )
    return no_referrer(page)


# -- forgot ---------------------------------------------------------------------------


async def render_forgot(status: int = 200, **context: Any) -> Response:
    return await render(
        "auth/forgot.html", "auth/_forgot_form.html", status, **signed_in_nav(), **context
    )


@bp.get("/password/forgot")
@public
@session_access("read")
async def forgot_page() -> Response:
    return await render_forgot()


@bp.post("/password/forgot")
@public
@session_access("read")
async def forgot() -> Response:
    """The same answer whether or not the address has an account (the worker finds out)."""
    fields = await read_fields("email")
    try:
        await recovery.request_password_reset(fields["email"])
    except AppError as error:
        if wants_json():
            raise
        return await render_forgot(error.status, error=error, email=fields["email"].strip())
    if wants_json():
        response = jsonify({"message": recovery.SENT})
        response.status_code = 202
        return response
    return await render_forgot(sent=recovery.SENT)


# -- reset ----------------------------------------------------------------------------


async def render_reset(token: str, email: str, status: int = 200, **context: Any) -> Response:
    page = await render(
        "auth/reset.html",
        "auth/_reset_form.html",
        status,
        token=token,
        email=email,
        **signed_in_nav(),
        **context,
    )
    return no_referrer(page)


@bp.get("/password/reset/<token>")
@public
@session_access("read")
async def reset_page(token: str) -> Response:
    """The new-password form; showing it never uses the link up."""
    try:
        user = await recovery.check_reset_link(token)
    except LinkDead:
        return await link_dead("reset")
    if wants_json():
        return no_referrer(jsonify({"email": user.email, "valid": True}))
    return await render_reset(token, user.email)


@bp.post("/password/reset/<token>")
@public
@session_access("read")
async def reset(token: str) -> Response:
    """Set the new password, end every session of the account, and send the browser to
    sign in (it is not signed in: a session it had, of any account, ends)."""
    fields = await read_fields("new_password")
    try:
        user = await recovery.reset_password(token, fields["new_password"])
    except LinkDead:
        return await link_dead("reset")
    except AppError as error:
        if wants_json():
            raise
        try:
            user = await recovery.check_reset_link(token)
        except LinkDead:
            return await link_dead("reset")
        return await render_reset(token, user.email, error.status, error=error)
    await get_sessions().sign_out()  # a session of another account ends on the server too
    if wants_json():
        return no_referrer(jsonify({"message": "password reset; sign in with it"}))
    return no_referrer(navigate(url_for("auth.sign_in_page", reset=1)))


# -- verifying an address ---------------------------------------------------------------


@bp.get("/email/verify/<token>")
@public
@session_access("read")
async def verify_page(token: str) -> Response:
    """One button; only its POST changes anything (mail scanners follow links)."""
    try:
        email = await verification.check_verify_link(token)
    except LinkDead:
        return await link_dead("verify")
    if wants_json():
        return no_referrer(jsonify({"email": email, "valid": True}))
    page = await render(
        "auth/verify.html", "auth/_verify_form.html", token=token, email=email, **signed_in_nav()
    )
    return no_referrer(page)


@bp.post("/email/verify/<token>")
@public
@session_access("read")
async def verify(token: str) -> Response:
    try:
        email = await verification.verify_email(token)
    except LinkDead:
        return await link_dead("verify")
    if wants_json():
        return no_referrer(jsonify({"message": "email verified", "email": email}))
    target = "home.home" if current_record() is not None else "auth.sign_in_page"
    return no_referrer(navigate(url_for(target, verified=1)))


@bp.post("/email/verify/resend")
@signed_in
async def resend_verification() -> Response:
    record = current_record()
    assert record is not None
    if await verification.resend(record):
        message = f"We sent a new link to {record.email}."
    else:
        message = "Your email address is verified already."
    if wants_json():
        response = jsonify({"message": message})
        response.status_code = 202
        return response
    if htmx().request:
        return await render(
            "home/home.html", "home/_verify_notice.html", sent=message, verified=True
        )
    return navigate(url_for("home.home", sent=1))


# -- changing an address -----------------------------------------------------------------


async def render_change(token: str, email: str, status: int = 200, **context: Any) -> Response:
    page = await render(
        "auth/email_change.html",
        "auth/_email_change_form.html",
        status,
        token=token,
        new_email=email,
        **signed_in_nav(),
        **context,
    )
    return no_referrer(page)


@bp.get("/email/change/<token>")
@public
@session_access("read")
async def email_change_page(token: str) -> Response:
    """One button; only its POST changes the address (mail scanners follow links)."""
    try:
        _, new_email = await email_change.check_change_link(token)
    except LinkDead:
        return await link_dead("email")
    if wants_json():
        return no_referrer(jsonify({"new_email": new_email, "valid": True}))
    return await render_change(token, new_email)


@bp.post("/email/change/<token>")
@public
@session_access("read")
async def change_email(token: str) -> Response:
    """Make the link's address the account's. This browser goes on signed in if it was
    signed in to the account; every other session ends."""
    try:
        _, _, record = await email_change.apply_change(token)
    except LinkDead:
        return await link_dead("email")
    except AppError as error:  # 409: another account has the address now
        if wants_json():
            raise
        page = await render(
            "auth/email_change.html",
            "auth/_email_change_form.html",
            error.status,
            error=error,
            **signed_in_nav(),
        )
        return no_referrer(page)
    if wants_json():
        body: dict[str, Any] = {"message": "email changed", "signed_in": record is not None}
        if record is not None:
            body |= {
                "email": record.email,
                "session": session_summary(record),
                "csrf_token": csrf_token(),
            }
        return no_referrer(jsonify(body))
    if record is not None:
        return no_referrer(navigate(url_for("account.email_page", changed=1)))
    return no_referrer(navigate(url_for("auth.sign_in_page", email_changed=1)))


# -- undoing an address change, from the old address -------------------------------------

UNDO_DEAD_HINT = (
    "An undo link works once, for a few days, and only while no later undo was used. If "
    "someone else holds your account and this link no longer works, contact the people who "
    "run this site."
)


async def render_undo(token: str, email: str, status: int = 200, **context: Any) -> Response:
    page = await render(
        "auth/email_undo.html",
        "auth/_email_undo_form.html",
        status,
        token=token,
        email=email,
        **signed_in_nav(),
        **context,
    )
    return no_referrer(page)


@bp.get("/email/undo/<token>")
@public
@session_access("read")
async def undo_email_change_page(token: str) -> Response:
    """One button; only its POST changes anything (mail scanners follow links)."""
    try:
        email = await email_undo.check_undo_link(token)
    except LinkDead:
        return await link_dead("undo")
    if wants_json():
        return no_referrer(jsonify({"email": email, "valid": True}))
    return await render_undo(token, email)


@bp.post("/email/undo/<token>")
@public
@session_access("read")
async def undo_email_change(token: str) -> Response:
    """Put the old address back, end every session, and send the browser on to set a new
    password (the old one no longer works)."""
    try:
        email, reset_token = await email_undo.undo_change(token)
    except LinkDead:
        return await link_dead("undo")
    except AppError as error:  # 409: another account has the address now
        if wants_json():
            raise
        return await render_undo(token, "", error.status, error=error)
    get_sessions().forget()
    reset_path = url_for("mail_links.reset_page", token=reset_token)
    if wants_json():
        return no_referrer(
            jsonify(
                {
                    "message": "address restored; set a new password",
                    "email": email,
                    "reset_path": reset_path,
                }
            )
        )
    return no_referrer(navigate(reset_path))


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


__all__ = ["bp", "current_user", "request"]

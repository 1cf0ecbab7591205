"""Sign-up, sign-in and sign-out, for browsers (with or without htmx) and JSON clients."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response, jsonify, render_template, request, url_for
from quart_auth import current_user

from ..access import public, signed_in
from ..accounts import (
    canonical_email,
    create_user,
    delete_user,
    find_user,
    judge_password,
    update_password_hash,
    validate_sign_up,
)
from ..csrf import csrf_token
from ..errors import AppError, ServiceUnavailable
from ..forms import read_fields
from ..hypermedia import navigate, render, wants_json
from ..models import User
from ..passwords import get_hasher
from ..server_session import current_record, get_sessions, session_access
from ..session_store import SessionRecord
from ..throttle import get_throttle, too_many_attempts

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

SIGN_IN_FAILED = "Incorrect email or password."


async def render_form(page: str, status: int = 200, **context: Any) -> Response:
    """The form alone for an htmx swap, or the whole page around it."""
    return await render(f"auth/{page}.html", f"auth/_{page}_form.html", status, **context)


def session_summary(record: SessionRecord) -> dict[str, Any]:
    return {"id": record.public_id, "expires_in": record.time_left_ms // 1000}


@bp.get("/")
@public
async def sign_in_page() -> Response:
    if await current_user.is_authenticated:
        return navigate(url_for("home.home"))
    # A fixed message for a flag in the address, never text taken from it.
    return await render_form("sign_in", signed_out=request.args.get("signed_out") == "1")


@bp.get("/register")
@public
async def sign_up_page() -> Response:
    if await current_user.is_authenticated:
        return navigate(url_for("home.home"))
    return await render_form("sign_up")


@bp.get("/api/v1/csrf")
@public
@session_access("read")
async def csrf() -> Response:
    """A CSRF token for JSON clients, bound to their session or to a fresh cookie."""
    return jsonify({"csrf_token": csrf_token()})


@bp.post("/api/v1/signup")
@bp.post("/register", endpoint="sign_up_form")
@public
async def sign_up() -> Response:
    """Create an account and sign in. Browsers' forms post to their own page (/register),
    so that a refused sign-up without JavaScript leaves the address bar there (a reload
    shows the page, not a re-post); the API address answers the same."""
    fields = await read_fields("email", "password")
    try:
        credentials = validate_sign_up(fields["email"], fields["password"])
        client = get_sessions().client_ip()
        decision = await get_throttle().attempt_sign_up(client)
        if not decision.allowed:
            raise too_many_attempts(decision)
        user = await create_user(credentials.email, await get_hasher().hash(credentials.password))
        try:
            record = await get_sessions().sign_in(user.id, user.email)
        except Exception:
            # Nothing half-written: an account nobody could sign in to right now goes again.
            await delete_user(user.id)
            raise
        await get_throttle().record_sign_in(user.email, client)
    except AppError as error:
        if wants_json():
            raise
        return await render_form(
            "sign_up", status=error.status, error=error, email=fields["email"].strip()
        )
    if wants_json():
        response = jsonify(
            {
                "message": "new user created!",
                "email": user.email,
                "session": session_summary(record),
            }
        )
        response.status_code = 201
        return response
    return navigate(url_for("home.home"))


@bp.post("/api/v1/password-strength")
@public
@session_access("read")
async def password_strength() -> Response:
    """How strong a password being typed is, judged as sign-up and password change will.

    The sign-up form sends ``email`` and ``password``; the change form sends
    ``new_password``, and the signed-in account's email is used. The answer never
    contains the password."""
    fields = await read_fields("email", "password", "new_password")
    record = current_record()
    email = record.email if record is not None else fields["email"]
    password = fields["password"] or fields["new_password"]
    strength = judge_password(password, email) if password else None
    if wants_json():
        if strength is None:
            raise AppError(
                "Please correct the fields below.",
                status=422,
                fields={"password": "Enter a password."},
            )
        return jsonify(
            {
                "score": strength.score,
                "acceptable": strength.acceptable,
                "message": strength.message,
            }
        )
    html = await render_template("auth/_password_strength.html", strength=strength)
    return Response(html)


async def check_credentials(email: str, password: str) -> User | None:
    """The account these credentials open, or None; every failure costs the same, as an
    unknown email still pays for one bcrypt check. ``email`` is canonical, or "" when what
    was typed is not an email at all."""
    user = await find_user(email) if email else None
    hashed = user.password_hash if user is not None else None
    if not await get_hasher().verify(password, hashed) or user is None:
        return None
    await upgrade_hash(user, password)
    return user


async def authenticate(typed_email: str, password: str) -> User:
    """``check_credentials`` behind the sign-in throttle: a refused attempt is a 429 that
    costs no bcrypt work; a wrong password counts against the account and the client and
    is the one 401 that reads the same for every failure. (A MySQL outage is a 503 and
    counts against nobody.)"""
    try:
        email = account = canonical_email(typed_email)
    except ValueError:
        email, account = "", typed_email.strip()  # malformed emails are throttled all the same
    throttle = get_throttle()
    client = get_sessions().client_ip()
    decision = await throttle.check_sign_in(account, client)
    if not decision.allowed:
        raise too_many_attempts(decision)
    user = await check_credentials(email, password)
    if user is None:
        await throttle.record_failed_sign_in(account, client)
        raise AppError(SIGN_IN_FAILED, status=401)
    await throttle.record_sign_in(account, client)
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


@bp.post("/api/v1/signin")
@bp.post("/", endpoint="sign_in_form")
@public
async def sign_in() -> Response:
    """Sign in: at the API address, and at / where the browser form posts (as sign-up)."""
    fields = await read_fields("email", "password")
    try:
        missing = {
            name: f"Enter your {'email address' if name == 'email' else 'password'}."
            for name in ("email", "password")
            if not fields[name].strip()
        }
        if missing:
            raise AppError("Please fill in both fields.", status=422, fields=missing)
        user = await authenticate(fields["email"], fields["password"])
        record = await get_sessions().sign_in(user.id, user.email)
    except AppError as error:
        if wants_json():
            raise
        return await render_form(
            "sign_in", status=error.status, error=error, email=fields["email"].strip()
        )
    if wants_json():
        return jsonify(
            {"message": "signed in", "email": record.email, "session": session_summary(record)}
        )
    return navigate(url_for("home.home"))


@bp.get("/logout")
@public
@session_access("read")
async def sign_out_page() -> Response:
    if current_record() is None:
        return navigate(url_for("auth.sign_in_page"))
    return Response(await render_template("auth/sign_out.html"))


@bp.post("/logout")
@signed_in
async def sign_out() -> Response:
    await get_sessions().sign_out()
    if wants_json():
        return jsonify({"message": "signed out"})
    return navigate(signed_out_url())


def signed_out_url() -> str:
    """The sign-in page, saying "You are signed out"."""
    return url_for("auth.sign_in_page", signed_out=1)

"""Sign-up, sign-in and sign-out, for browsers (with or without htmx) and JSON clients."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, render_template, url_for
from quart_auth import current_user

from .. import credentials
from ..access import public, signed_in
from ..csrf import csrf_token
from ..errors import AppError
from ..forms import read_fields
from ..hypermedia import navigate, render, wants_json
from ..server_session import current_record, get_sessions, session_access
from ..session_store import SessionRecord

bp = Blueprint("auth", __name__)


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
    return await render_form("sign_in")


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
@public
async def sign_up() -> Response:
    fields = await read_fields("email", "password")
    try:
        user, record = await credentials.sign_up(fields["email"], fields["password"])
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
                # Tokens from before the sign-in count no more: here is the session's own.
                "csrf_token": csrf_token(),
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
    if wants_json():
        if not password:
            raise AppError(
                credentials.FIX_FIELDS, status=422, fields={"password": "Enter a password."}
            )
        judged = await credentials.judge_new_password(password, email)
        return jsonify(
            {
                "score": judged.score,
                "acceptable": judged.acceptable,
                "message": judged.message,
            }
        )
    try:
        strength = await credentials.judge_new_password(password, email) if password else None
    except AppError as error:  # throttled: the hint pauses, the form still judges on submit
        html = await render_template("auth/_password_strength.html", paused=error.message)
        return Response(html)
    html = await render_template("auth/_password_strength.html", strength=strength)
    return Response(html)


@bp.post("/api/v1/signin")
@public
async def sign_in() -> Response:
    fields = await read_fields("email", "password")
    try:
        missing = {
            name: f"Enter your {'email address' if name == 'email' else 'password'}."
            for name in ("email", "password")
            if not fields[name].strip()
        }
        if missing:
            raise AppError("Please fill in both fields.", status=422, fields=missing)
        record = await credentials.sign_in(fields["email"], fields["password"])
    except AppError as error:
        if wants_json():
            raise
        return await render_form(
            "sign_in", status=error.status, error=error, email=fields["email"].strip()
        )
    if wants_json():
        return jsonify(
            {
                "message": "signed in",
                "email": record.email,
                "session": session_summary(record),
                "csrf_token": csrf_token(),
            }
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
    return navigate(url_for("auth.sign_in_page"))

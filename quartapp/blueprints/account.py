"""Your sessions and your account: every signed-in device, ending any of them, the account
page that leads to a new password, a new address and deleting the account. For browsers
(with or without htmx) and JSON clients."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from quart import Blueprint, Response, jsonify, request, url_for
from quart_auth import Unauthorized

from quartapp.accounts import email_change, service
from quartapp.accounts.queries import count_passkeys, find_user_by_id
from quartapp.accounts.sign_in_flow import way_of
from quartapp.engine.quart_context import current_request
from quartapp.engine.quart_request_cycle import AppResponse
from quartapp.sessions.csrf import csrf_token
from quartapp.sessions.devices import UNKNOWN_BROWSER
from quartapp.sessions.extension import (
    current_record,
    get_sessions,
    session_access,
    session_summary,
)
from quartapp.sessions.store import SessionRecord
from quartapp.web.access import public, signed_in
from quartapp.web.errors import AppError
from quartapp.web.forms import read_fields
from quartapp.web.hypermedia import htmx, navigate, render, signed_out_url, wants_json
from quartapp.web.responder import Outcome, Page, respond
from quartapp.web.schemas import Account, SessionSummary
from quartapp.web.templating import how_long_ago, iso_time, render_template

bp = Blueprint("account", __name__)

# A public id is the first 12 characters of a key id (base64url). Anything else names no
# session, and is answered without asking Redis.
PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{12}")
# One answer whether the id is unknown, ended, or another user's: ids cannot be probed.
NO_SUCH_SESSION = "There is no such session. It may have ended already."
# The header in which the sessions page's poll says which version of the list it shows
# (``list_version``); the same version is answered 204, which htmx does not swap.
SHOWN_HEADER = "X-Sessions-Shown"


def signed_in_record() -> SessionRecord:
    record = current_record()
    assert record is not None, "only for @signed_in views"
    return record


def this_device_first(records: list[SessionRecord], current: SessionRecord) -> list[SessionRecord]:
    """This session first, then the others, the most recently active first."""
    return sorted(
        records,
        key=lambda record: (record.key_id != current.key_id, -record.last_active, record.key_id),
    )


def session_json(record: SessionRecord, current: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.public_id,
        "current": record.key_id == current.key_id,
        "device": record.device or UNKNOWN_BROWSER,
        "ip": record.ip or None,
        "started_at": iso_time(record.created_at),
        "last_active_at": iso_time(record.last_active),
        "expires_in": record.seconds_left,
        "signed_in_with": way.value if (way := way_of(record)) else None,
    }


def list_version(records: list[SessionRecord], current: SessionRecord) -> str:
    """A short digest of what the list shows: its rows, their times as the page words them
    and the minutes they have left. The page's poll sends it back, so the list is swapped
    only when a session started or ended or what a row says moved on."""
    shown = [
        (
            record.public_id,
            record.key_id == current.key_id,
            record.device,
            record.ip,
            how_long_ago(record.read_at - record.created_at),
            how_long_ago(record.read_at - record.last_active),
            record.seconds_left // 60,
        )
        for record in records
    ]
    digest = hashlib.sha256(json.dumps(shown, separators=(",", ":")).encode())
    return digest.hexdigest()[:16]


async def render_sessions(
    records: list[SessionRecord],
    current: SessionRecord,
    status: str | None = None,
    *,
    focus_heading: bool | None = None,
) -> Response:
    """The sessions page, or for htmx the list alone (with ``status`` announced, and the
    focus on its heading after an action: the button that was pressed is gone)."""
    return await render(
        "account/sessions.html",
        "account/_sessions.html",
        sessions=records,
        current=current,
        status_message=status,
        focus_heading=htmx().request if focus_heading is None else focus_heading,
        version=list_version(records, current),
        way_of=way_of,
    )


@bp.get("/sessions")
@signed_in
async def sessions_page() -> Response:
    current = signed_in_record()
    records = await get_sessions().store.list_sessions(current.user_id)
    records = this_device_first(records, current)
    if wants_json():
        return jsonify({"sessions": [session_json(record, current) for record in records]})
    return await render_sessions(records, current)


@bp.get("/sessions/list")
@signed_in
@session_access("read")
async def sessions_list() -> Response:
    """The list alone, as the sessions page polls it, so that sessions started or ended
    elsewhere show up without a reload. Polling is no activity: a page left open must not
    keep its session alive. A poll from a page that already shows this version of the list
    is answered 204 (htmx swaps nothing, so nothing moves under the keyboard or a screen
    reader); anyone else is sent to the page."""
    if not htmx().wants_fragment:
        return navigate(url_for("account.sessions_page"))
    current = signed_in_record()
    records = this_device_first(await get_sessions().store.list_sessions(current.user_id), current)
    if current_request().headers.get(SHOWN_HEADER) == list_version(records, current):
        return AppResponse("", status=204)
    return await render_sessions(records, current, focus_heading=False)


@bp.post("/sessions/<public_id>/revoke")
@signed_in
async def revoke_session(public_id: str) -> Response:
    """End one of your sessions now: its cookie is dead on its next request, and its
    countdown shows the expired state on its next poll. Ending this one is signing out."""
    current = signed_in_record()
    sessions = get_sessions()
    if public_id == current.public_id:
        await sessions.sign_out()
        if wants_json():
            return jsonify({"message": "signed out"})
        return navigate(signed_out_url())
    ended = None
    if PUBLIC_ID.fullmatch(public_id):
        ended = await sessions.store.revoke_by_public_id(current.user_id, public_id)
    if ended is None:
        raise AppError(NO_SUCH_SESSION, status=404)
    if wants_json():
        return jsonify({"message": "session ended", "id": public_id})
    if htmx().request:
        # The list as it is now (so "Sign out everywhere else" goes with the last other
        # session), and the news for the status region.
        records = await sessions.store.list_sessions(current.user_id)
        return await render_sessions(
            this_device_first(records, current), current, f"Session {public_id} ended."
        )
    return navigate(url_for("account.sessions_page"))


@bp.post("/sessions/revoke-others")
@signed_in
async def revoke_other_sessions() -> Response:
    """Sign out everywhere else: every other session of this user ends; this one stays."""
    current = signed_in_record()
    ended = await get_sessions().store.revoke_others(current.user_id, current.key_id)
    if wants_json():
        return jsonify({"message": "other sessions ended", "ended": ended})
    if htmx().request:
        if ended == 0:
            status = "There were no other sessions."
        else:
            status = f"Signed out {ended} other session{'s' if ended != 1 else ''}."
        return await render_sessions([current], current, status)
    return navigate(url_for("account.sessions_page"))


async def read_account(record: SessionRecord) -> Account:
    """The signed-in account as the database has it now (an address change shows at once)."""
    user = await find_user_by_id(record.user_id)
    if user is None:  # deleted while this session was being read
        raise AppError("Sign in first.", status=401)
    return Account(
        email=user.email,
        email_verified=user.email_verified,
        two_factor_enabled=user.two_factor_enabled,
        created_at=iso_time(int(user.created_at.timestamp() * 1000)),
        passkeys=await count_passkeys(user.id),
        session=SessionSummary.of(record),
    )


@bp.get("/account")
@signed_in
async def account_page() -> Response:
    """The account page, from which the password, the address and the account's deletion
    are reached; JSON clients get the account (as from ``GET /api/v1/account``)."""
    account = await read_account(signed_in_record())
    page = Page(
        "account/account.html", context={"account": account, "verified": account.email_verified}
    )
    return await respond(Outcome(account, page=page))


async def render_password_form(status: int = 200, **context: Any) -> Response:
    return await render("account/password.html", "account/_password_form.html", status, **context)


@bp.get("/account/password")
@signed_in
async def password_page() -> Response:
    return await render_password_form(changed=request.args.get("changed") == "1")


@bp.post("/account/password")
@signed_in
async def change_password() -> Response:
    """A new password ends every other session, and this one goes on under a new token, so
    a cookie copied before the change is dead too."""
    fields = await read_fields("current_password", "new_password")
    try:
        record = await service.change_password(
            signed_in_record(), fields["current_password"], fields["new_password"]
        )
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        if wants_json():
            raise
        return await render_password_form(error.status, error=error)
    if wants_json():
        # The old session's CSRF token died with it; here is one for the new session.
        return jsonify(
            {
                "message": "password changed",
                "session": session_summary(record),
                "csrf_token": csrf_token(),
            }
        )
    # A full page load: the page's CSRF token was bound to the session that just ended.
    return navigate(url_for("account.password_page", changed=1))


async def render_email_form(status: int = 200, **context: Any) -> Response:
    return await render(
        "account/email.html",
        "account/_email_form.html",
        status,
        email=signed_in_record().email,
        **context,
    )


@bp.get("/account/email")
@signed_in
async def email_page() -> Response:
    if wants_json():
        return jsonify({"email": signed_in_record().email})
    # Fixed messages for flags in the address, never text taken from it.
    sent = email_change.SENT if request.args.get("sent") == "1" else None
    return await render_email_form(sent=sent, changed=request.args.get("changed") == "1")


@bp.post("/account/email")
@signed_in
async def change_email() -> Response:
    """Mail a link to the new address; the address changes when it is followed."""
    fields = await read_fields("current_password", "new_email")
    try:
        new_email = await email_change.request_change(
            signed_in_record(), fields["current_password"], fields["new_email"]
        )
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        if wants_json():
            raise
        return await render_email_form(
            error.status, error=error, new_email=fields["new_email"].strip()
        )
    if wants_json():
        response = jsonify({"message": email_change.SENT, "new_email": new_email})
        response.status_code = 202
        return response
    if htmx().request:
        return await render_email_form(sent=email_change.SENT)
    return navigate(url_for("account.email_page", sent=1))


async def render_delete_form(email: str, status: int = 200, **context: Any) -> Response:
    return await render(
        "account/delete.html", "account/_delete_form.html", status, email=email, **context
    )


@bp.get("/account/delete")
@signed_in
async def delete_page() -> Response:
    return await render_delete_form(signed_in_record().email)


@bp.post("/account/delete")
@signed_in
async def delete_account() -> Response:
    record = signed_in_record()
    fields = await read_fields("password")
    try:
        await service.delete_account(record, fields["password"])
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        if wants_json():
            raise
        # The sessions may be gone by now (MySQL failed after them): the form still shows.
        return await render_delete_form(record.email, error.status, error=error)
    if wants_json():
        return jsonify({"message": "account deleted"})
    return navigate(url_for("account.deleted_page"))


@bp.get("/account/deleted")
@public
@session_access("none")
async def deleted_page() -> Response:
    """Where a deleted account's browser lands; it shows nothing personal."""
    return AppResponse(await render_template("account/deleted.html"))

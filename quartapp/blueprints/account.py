"""Your sessions and your account: every signed-in device, ending any of them, the account
page that leads to a new password, a new address and deleting the account. For browsers
(with or without htmx) and JSON clients."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from quart import Blueprint, Response, request, url_for
from quart_auth import Unauthorized

from quartapp.accounts import email_change, service
from quartapp.accounts.queries import count_passkeys, find_user_by_id
from quartapp.accounts.sign_in_flow import way_of
from quartapp.engine.quart_context import current_request
from quartapp.sessions.csrf import csrf_token
from quartapp.sessions.devices import UNKNOWN_BROWSER
from quartapp.sessions.extension import current_record, get_sessions, session_access
from quartapp.sessions.store import SessionRecord
from quartapp.web.access import public, signed_in
from quartapp.web.api import (
    POST_SIGNED_IN,
    SIGNED_IN,
    Link,
    described,
    read_model,
)
from quartapp.web.errors import AppError
from quartapp.web.hypermedia import htmx, navigate, render, signed_out_url
from quartapp.web.responder import Outcome, Page, Refused, respond
from quartapp.web.schemas import (
    Account,
    AccountDeleted,
    AccountDeletion,
    EmailAddress,
    EmailChange,
    EmailChangeSent,
    OtherSessionsEnded,
    PasswordChange,
    PasswordChanged,
    SessionDetail,
    SessionEnded,
    SessionId,
    SessionList,
    SessionSummary,
)
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


def session_detail(record: SessionRecord, current: SessionRecord) -> SessionDetail:
    return SessionDetail(
        id=record.public_id,
        current=record.key_id == current.key_id,
        device=record.device or UNKNOWN_BROWSER,
        ip=record.ip or None,
        started_at=iso_time(record.created_at),
        last_active_at=iso_time(record.last_active),
        expires_in=record.seconds_left,
        signed_in_with=way.value if (way := way_of(record)) else None,
    )


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


def sessions_view(
    records: list[SessionRecord],
    current: SessionRecord,
    status: str | None = None,
    *,
    focus_heading: bool | None = None,
) -> Page:
    """The sessions page, or for htmx the list alone (with ``status`` announced, and the
    focus on its heading after an action: the button that was pressed is gone)."""
    return Page(
        "account/sessions.html",
        "account/_sessions.html",
        {
            "sessions": records,
            "current": current,
            "status_message": status,
            "focus_heading": htmx().request if focus_heading is None else focus_heading,
            "version": list_version(records, current),
            "way_of": way_of,
        },
    )


def session_list(records: list[SessionRecord], current: SessionRecord) -> SessionList:
    return SessionList(sessions=[session_detail(record, current) for record in records])


# What a client does next with the list (the document's link): end one of the sessions.
REVOKE_ONE = Link(
    "revokeSession",
    "post_revoke_session",
    "End a session of the list (the first is this one: ending it is signing out).",
    {"path.public_id": "$response.body#/sessions/0/id"},
)


@bp.get("/sessions")
@signed_in
@described(answers={200: SessionList}, errors=[401], security=SIGNED_IN, links={200: [REVOKE_ONE]})
async def sessions_page() -> Response:
    """Every live session of yours: this one first, then the most recently active."""
    current = signed_in_record()
    records = await get_sessions().store.list_sessions(current.user_id)
    records = this_device_first(records, current)
    listed = functools.partial(session_list, records, current)  # made for JSON clients only
    return await respond(Outcome(listed, page=sessions_view(records, current)))


@bp.get("/sessions/list")
@signed_in
@session_access("read")
async def sessions_list() -> Response:
    """The list alone, as the sessions page polls it, so that sessions started or ended
    elsewhere show up without a reload. Polling is no activity: a page left open must not
    keep its session alive. A poll from a page that already shows this version of the list
    is answered 204 (htmx swaps nothing, so nothing moves under the keyboard or a screen
    reader); anyone else is sent to the page (JSON clients read GET /sessions)."""
    if not htmx().wants_fragment:
        return navigate(url_for("account.sessions_page"))
    current = signed_in_record()
    records = this_device_first(await get_sessions().store.list_sessions(current.user_id), current)
    if current_request().headers.get(SHOWN_HEADER) == list_version(records, current):
        return Response("", status=204)
    view = sessions_view(records, current, focus_heading=False)
    return await render(view.template, view.fragment or view.template, **view.context)


@bp.post("/sessions/<public_id>/revoke")
@signed_in
@described(
    answers={200: SessionEnded},
    errors=[401, 403, 404, 413],
    security=POST_SIGNED_IN,
    path=SessionId,
)
async def revoke_session(public_id: str) -> Response:
    """End one of your sessions now.

    Its cookie is dead on its next request, and its countdown shows the expired state on
    its next poll. Ending this one is signing out. An id that is unknown, has ended, or is
    another account's is one answer, a 404."""
    current = signed_in_record()
    sessions = get_sessions()
    if public_id == current.public_id:
        await sessions.sign_out()
        signed_out = SessionEnded(message="signed out", id=public_id)
        return await respond(Outcome(signed_out, redirect=signed_out_url()))
    ended = None
    if PUBLIC_ID.fullmatch(public_id):
        ended = await sessions.store.revoke_by_public_id(current.user_id, public_id)
    if ended is None:
        raise AppError(NO_SUCH_SESSION, status=404)

    async def page() -> Page:
        # htmx gets the list as it is now (so "Sign out everywhere else" goes with the last
        # other session), and the news for the status region.
        records = await sessions.store.list_sessions(current.user_id)
        shown = this_device_first(records, current)
        return sessions_view(shown, current, f"Session {public_id} ended.")

    answer = SessionEnded(message="session ended", id=public_id)
    return await respond(Outcome(answer, page=page, redirect=url_for("account.sessions_page")))


@bp.post("/sessions/revoke-others")
@signed_in
@described(answers={200: OtherSessionsEnded}, errors=[401, 403, 413], security=POST_SIGNED_IN)
async def revoke_other_sessions() -> Response:
    """Sign out everywhere else: every other session of yours ends; this one stays."""
    current = signed_in_record()
    ended = await get_sessions().store.revoke_others(current.user_id, current.key_id)
    if ended == 0:
        status = "There were no other sessions."
    else:
        status = f"Signed out {ended} other session{'s' if ended != 1 else ''}."
    answer = OtherSessionsEnded(message="other sessions ended", ended=ended)
    page = sessions_view([current], current, status)
    return await respond(Outcome(answer, page=page, redirect=url_for("account.sessions_page")))


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
@described(answers={200: Account}, errors=[401], security=SIGNED_IN)
async def account_page() -> Response:
    """The signed-in account, as from GET /api/v1/account.

    For browsers the account page, from which the password, the address and the
    account's deletion are reached."""
    account = await read_account(signed_in_record())
    page = Page(
        "account/account.html", context={"account": account, "verified": account.email_verified}
    )
    return await respond(Outcome(account, page=page))


def password_form(**context: Any) -> Page:
    context = {"email": signed_in_record().email, **context}
    return Page("account/password.html", "account/_password_form.html", context)


@bp.get("/account/password")
@signed_in
async def password_page() -> Response:
    """The form that changes the password, for browsers."""
    return await respond(Outcome(page=password_form(changed=request.args.get("changed") == "1")))


@bp.post("/account/password")
@signed_in
@described(
    request=PasswordChange,
    answers={200: PasswordChanged},
    errors=[401, 409, 429],
    security=POST_SIGNED_IN,
)
async def change_password() -> Response:
    """Change the password, confirming the current one.

    Every other session ends, and this one goes on under a new cookie (set in the answer)
    and a new CSRF token (in the answer; the old one no longer works), so a cookie copied
    before the change is dead too. A wrong current password is a 403 `wrong_password`."""
    typed = await read_model(PasswordChange)
    try:
        record = await service.change_password(
            signed_in_record(), typed.current_password, typed.new_password
        )
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        return await respond(Refused(error, password_form()))
    # The old session's CSRF token died with it; the answer carries the new session's.
    answer = PasswordChanged(
        message="password changed", session=SessionSummary.of(record), csrf_token=csrf_token()
    )
    # Browsers load the page in full: its CSRF token was bound to the session that ended.
    return await respond(Outcome(answer, redirect=url_for("account.password_page", changed=1)))


def email_form(**context: Any) -> Page:
    context = {"email": signed_in_record().email, **context}
    return Page("account/email.html", "account/_email_form.html", context)


@bp.get("/account/email")
@signed_in
@described(answers={200: EmailAddress}, errors=[401], security=SIGNED_IN)
async def email_page() -> Response:
    """The account's address (the page of the form that changes it)."""
    # Fixed messages for flags in the address, never text taken from it.
    sent = email_change.SENT if request.args.get("sent") == "1" else None
    page = email_form(sent=sent, changed=request.args.get("changed") == "1")
    return await respond(Outcome(EmailAddress(email=signed_in_record().email), page=page))


@bp.post("/account/email")
@signed_in
@described(
    request=EmailChange, answers={202: EmailChangeSent}, errors=[401, 429], security=POST_SIGNED_IN
)
async def change_email() -> Response:
    """Ask for a new address, confirming the password.

    A link goes to the new address, and the address changes when it is followed (POST
    /email/change/{token}). A wrong password is a 403 `wrong_password`."""
    typed = await read_model(EmailChange)
    try:
        new_email = await email_change.request_change(
            signed_in_record(), typed.current_password, typed.new_email
        )
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        return await respond(Refused(error, email_form(new_email=typed.new_email.strip())))
    answer = EmailChangeSent(message="link sent to the new address", new_email=new_email)
    page = email_form(sent=email_change.SENT)
    sent = url_for("account.email_page", sent=1)
    return await respond(Outcome(answer, status=202, page=page, redirect=sent))


def delete_form(email: str) -> Page:
    return Page("account/delete.html", "account/_delete_form.html", {"email": email})


@bp.get("/account/delete")
@signed_in
async def delete_page() -> Response:
    """The form that deletes the account, for browsers."""
    return await respond(Outcome(page=delete_form(signed_in_record().email)))


@bp.post("/account/delete")
@signed_in
@described(
    request=AccountDeletion,
    answers={200: AccountDeleted},
    errors=[401, 429],
    security=POST_SIGNED_IN,
)
async def delete_account() -> Response:
    """Delete the account and every session of it, confirming its password.

    A wrong password is a 403 `wrong_password`."""
    record = signed_in_record()
    typed = await read_model(AccountDeletion)
    try:
        await service.delete_account(record, typed.password)
    except service.SignedOut:
        raise Unauthorized() from None
    except AppError as error:
        # The sessions may be gone by now (MySQL failed after them): the form still shows.
        return await respond(Refused(error, delete_form(record.email)))
    answer = AccountDeleted(message="account deleted")
    return await respond(Outcome(answer, redirect=url_for("account.deleted_page")))


@bp.get("/account/deleted")
@public
@session_access("none")
async def deleted_page() -> Response:
    """Where a deleted account's browser lands; it shows nothing personal."""
    return Response(await render_template("account/deleted.html"))

"""The signed-in page and its session countdown widget.

/home and the countdown's poll are the requests a signed-in tab makes most: their common
case is answered before Quart by ``blueprints.front_door``, which builds the same context
(``countdown_context``, ``home_context``) and fills in the pages these routes remember.
These routes stay the reference behaviour, and answer everything else.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, url_for

from quartapp.accounts.sign_in_flow import offers_passkey
from quartapp.accounts.verification import UNVERIFIED
from quartapp.engine.quart_context import current_request, request_context
from quartapp.sessions.extension import (
    current_record,
    request_session,
    session_access,
)
from quartapp.sessions.store import WHY_ENDED, SessionRecord
from quartapp.web.access import public, signed_in
from quartapp.web.api import MAYBE_SIGNED_IN, POST_SIGNED_IN, described
from quartapp.web.hypermedia import htmx
from quartapp.web.responder import Outcome, Page, respond
from quartapp.web.schemas import Countdown, Extended
from quartapp.web.templating import clock_time, render_remembered

bp = Blueprint("home", __name__)
HOME_TEMPLATE = "home/home.html"
TEMPLATE = "home/_countdown.html"
# What /home and the countdown show that differs from one request to the next: the
# session, and the time left and its end. Everything else they show (the notices, the
# countdown's phase and its updates) takes a few values, and each combination is
# rendered once and remembered (``render_remembered``).
PER_REQUEST = frozenset({"record", "seconds_left", "ends_at"})


# The header in which the polled element says which phase the page shows now. A poll
# answer changes the status region, the actions and the navigation only when the phase
# changes, so a screen reader hears each message once and a focused "Stay signed in"
# button is never replaced under the keyboard.
SHOWN_HEADER = "X-Countdown-Shown"
PHASES = ("live", "warning", "extended", "final", "expired")
# What the status region says in each phase (announced when it changes).
MESSAGES = {
    "live": "",
    "warning": "Your session is about to end.",
    "extended": "Your session has been extended.",
    "final": "Your session is about to end and cannot be extended: sign in again to go on.",
    "expired": "Your session has expired.",
}
# What the widget offers under its status in each phase.
ACTIONS = {
    "live": "",
    "warning": "extend",
    "extended": "extend",
    "final": "",
    "expired": "sign-in",
}


def phase_of(
    seconds_left: int, *, warning: bool, can_extend: bool, shown: str | None, extending: bool
) -> str:
    """The phase to show. A session brought back above the warning threshold (by "Stay
    signed in", or by activity in another tab) is "extended" and keeps its button."""
    if seconds_left <= 0:
        return "expired"
    if warning and not can_extend:
        return "final"
    if extending:
        return "extended"
    if warning:
        return "warning"
    if shown in ("warning", "extended") and can_extend:
        return "extended"
    return "live"


def countdown_context(
    record: SessionRecord | None,
    *,
    warning_at: int,
    shown: str | None = None,
    extending: bool = False,
    ended: str | None = None,
) -> dict[str, Any]:
    """What the widget shows. ``shown`` is the phase the page showed before (a poll or
    an extension from the page), or None for a whole page or a client that did not say;
    the parts whose content depends on the phase are sent out of band when it changed.
    ``ended``: why the session was ended, if something else than time ended it
    (``SessionStore.ended_reason``); the expired state says that instead."""
    seconds_left = record.seconds_left if record is not None else 0
    can_extend = record is not None and record.can_extend
    warning = 0 < seconds_left <= warning_at
    phase = phase_of(
        seconds_left, warning=warning, can_extend=can_extend, shown=shown, extending=extending
    )
    ends_at = None
    if record is not None and seconds_left > 0:
        ends_at = clock_time(record.expires_at)
    known = shown in PHASES
    message = MESSAGES[phase]
    if phase != "expired" or ended not in WHY_ENDED:
        ended = None
    else:
        message = WHY_ENDED[ended]
    return {
        "seconds_left": seconds_left,
        "warning": warning,
        "can_extend": can_extend,
        "phase": phase,
        "message": message,
        "ended": ended,
        "actions": ACTIONS[phase],
        "ends_at": ends_at,
        # Out-of-band updates, for a page that showed ``shown``.
        "update_status": shown is not None
        and (not known or extending or MESSAGES[phase] != MESSAGES[str(shown)]),
        "update_actions": shown is not None
        and (not known or ACTIONS[phase] != ACTIONS[str(shown)]),
        "update_nav": shown is not None and phase == "expired" and shown != "expired",
    }


def widget_context(
    record: SessionRecord | None, *, extending: bool = False, ended: str | None = None
) -> dict[str, Any]:
    """The countdown's context; for htmx, with the updates the page's shown phase needs."""
    context = request_context()  # the objects, not Quart's proxies: this runs on every page
    assert context is not None, "only while a request is handled"
    # An htmx request that does not say what its page shows ("") gets every update.
    shown = context.request.headers.get(SHOWN_HEADER, "") if htmx().request else None
    return countdown_context(
        record,
        warning_at=int(context.app.config["SESSION_WARNING_AT"]),
        shown=shown,
        extending=extending,
        ended=ended,
    )


def countdown_page(
    record: SessionRecord | None, *, extending: bool = False, ended: str | None = None
) -> Page:
    """The widget, as an outcome names it: remembered per shape, as on /home."""
    context = widget_context(record, extending=extending, ended=ended)
    return Page(TEMPLATE, context=context, per_request=PER_REQUEST)


def home_context(
    record: SessionRecord, *, sent: str | None, widget: dict[str, Any]
) -> dict[str, Any]:
    """What /home shows: the same names in the same order wherever it is made (the route,
    ``FrontDoor``), since they pick its remembered rendering. ``widget``: the countdown's
    context (``countdown_context``)."""
    return {
        "record": record,
        # Noted in the session at sign-in (no MySQL here): whether to offer the link again.
        "verified": not record.data.get(UNVERIFIED),
        "sent": sent,
        # After a password sign-in, to an account without passkeys: may offer one.
        "offer_passkey": offers_passkey(record),
        **widget,
    }


@bp.get("/home")
@signed_in
async def home() -> Response:
    # Its common case, a whole page of a live session, is answered before Quart
    # (blueprints.front_door): what this answers, that must answer alike.
    record = current_record()
    assert record is not None
    sent = None
    this = current_request()
    if this.query_string:  # flags for fixed messages, only ever in the address
        if this.args.get("sent") == "1":
            sent = "We sent a new link."
        if this.args.get("verified") == "1":
            sent = "Your email address is verified. Thank you."
    context = home_context(record, sent=sent, widget=widget_context(record))
    return Response(await render_remembered(HOME_TEMPLATE, PER_REQUEST, **context))


@bp.get("/session/countdown")
@public
@session_access("read")
@described(answers={200: Countdown}, security=MAYBE_SIGNED_IN)
async def countdown() -> Response:
    """The time left in this session, read without extending it.

    A page left open must not keep its session alive. Without a session this answers the
    expired state (the widget's stops its polling), and says why when something else than
    time or its own sign-out ended the session not long ago (`ended`)."""
    # The common case, a live session's poll from htmx, is answered before Quart
    # (blueprints.front_door): what this answers, that must answer alike.
    record = current_record()
    ended = request_session().ended

    def answer() -> Countdown:  # made for JSON clients only
        if record is not None:
            return Countdown(expires_in=record.seconds_left, expired=False)
        if ended in WHY_ENDED:
            return Countdown(expires_in=0, expired=True, ended=ended)
        return Countdown(expires_in=0, expired=True)  # never signed in, signed out, timed out

    return await respond(Outcome(answer, page=countdown_page(record, ended=ended)))


@bp.post("/session/extend")
@signed_in
@described(answers={200: Extended}, errors=[401, 403, 413], security=POST_SIGNED_IN)
async def extend() -> Response:
    """Extend this session: its idle deadline slides now (never past its absolute limit).

    The widget's "Stay signed in" gets the widget again, saying so; without JavaScript
    its form goes back to /home."""
    # Loading the session for this request already did the sliding.
    record = current_record()
    assert record is not None
    answer = Extended(expires_in=record.seconds_left)
    page = countdown_page(record, extending=True)
    return await respond(Outcome(answer, page=page, redirect=url_for("home.home")))

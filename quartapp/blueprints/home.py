"""The signed-in page and its session countdown widget."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from ..access import public, signed_in
from ..countdown import SHOWN_HEADER, TEMPLATE, countdown_context
from ..hypermedia import htmx, navigate, wants_json
from ..server_session import current_record, session_access
from ..session_store import SessionRecord

bp = Blueprint("home", __name__)


def widget_context(record: SessionRecord | None, *, extending: bool = False) -> dict[str, Any]:
    """The countdown's context; for htmx, with the updates the page's shown phase needs."""
    # An htmx request that does not say what its page shows ("") gets every update.
    shown = request.headers.get(SHOWN_HEADER, "") if htmx().request else None
    return countdown_context(
        record,
        warning_at=int(current_app.config["SESSION_WARNING_AT"]),
        poll_url=url_for("home.countdown"),
        shown=shown,
        extending=extending,
    )


async def countdown_fragment(record: SessionRecord | None, *, extending: bool = False) -> Response:
    context = widget_context(record, extending=extending)
    return Response(await render_template(TEMPLATE, **context))


@bp.get("/home")
@signed_in
async def home() -> Response:
    record = current_record()
    assert record is not None
    html = await render_template("home/home.html", record=record, **widget_context(record))
    return Response(html)


@bp.get("/session/countdown")
@public
@session_access("read")
async def countdown() -> Response:
    """Time left in this session. Reading it never extends it: a page left open must not
    keep its session alive. Without a session it answers the expired state, which stops
    the widget's polling. (The common case is answered before Quart: quartapp.countdown.)"""
    record = current_record()
    if wants_json():
        seconds = widget_context(record)["seconds_left"]
        return jsonify({"expires_in": seconds, "expired": record is None})
    return await countdown_fragment(record)


@bp.post("/session/extend")
@signed_in
async def extend() -> Response:
    """Slide the idle deadline now, on purpose (never past the absolute limit).

    Loading the session for this request already did the sliding."""
    record = current_record()
    if wants_json():
        assert record is not None
        return jsonify({"expires_in": record.time_left_ms // 1000})
    if htmx().request:
        return await countdown_fragment(record, extending=True)
    return navigate(url_for("home.home"))

"""Sign-up, sign-in and sign-out, for browsers (with or without htmx) and JSON clients."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, url_for

from quartapp.accounts import service
from quartapp.accounts.sign_in_flow import ENDED as SECOND_STEP_ENDED
from quartapp.accounts.sign_in_flow import SecondStepPending
from quartapp.blueprints import two_factor
from quartapp.engine.quart_context import current_request
from quartapp.sessions.csrf import csrf_token
from quartapp.sessions.extension import (
    current_record,
    get_sessions,
    request_session,
    session_access,
)
from quartapp.sessions.store import WHY_ENDED
from quartapp.web.access import public, signed_in
from quartapp.web.api import POST_ANYONE, POST_SIGNED_IN, Link, described, read_model
from quartapp.web.errors import AppError, InvalidFields
from quartapp.web.forms import FORM_TYPES
from quartapp.web.hypermedia import navigate, render, render_once, signed_out_url
from quartapp.web.next_page import FIELD as NEXT_FIELD
from quartapp.web.next_page import safe_next
from quartapp.web.responder import Outcome, Page, Refused, respond
from quartapp.web.schemas import (
    Credentials,
    CsrfToken,
    PasswordStrength,
    PasswordToJudge,
    SessionSummary,
    SignedIn,
    SignedOut,
    SignInAnswer,
)
from quartapp.web.templating import render_template

bp = Blueprint("auth", __name__)
# The live strength hint under a new password field, in place of the last.
STRENGTH_HINT = "auth/_password_strength.html"


async def render_form(page: str, status: int = 200, **context: Any) -> Response:
    """The form alone for an htmx swap, or the whole page around it."""
    return await render(f"auth/{page}.html", f"auth/_{page}_form.html", status, **context)


def form_page(page: str, **context: Any) -> Page:
    """``render_form``'s page, as an outcome names it."""
    return Page(f"auth/{page}.html", f"auth/_{page}_form.html", context)


@bp.get("/")
@public
async def sign_in_page() -> Response:
    this = current_request()
    # The page a signed-out visit asked for (web.next_page), followed only within the site.
    next_page = safe_next(this.args.get(NEXT_FIELD)) if this.query_string else None
    if current_record() is not None:  # signed in (what current_user.is_authenticated says)
        return navigate(next_page or url_for("home.home"))
    # Fixed messages for flags in the address, never text taken from it.
    notice = None
    if not this.query_string:
        pass  # the usual case: no flags to look for
    elif this.args.get("signed_out") == "1":
        notice = "You are signed out."
    elif this.args.get("reset") == "1":
        notice = "Your password has been reset and every session signed out. Sign in with it."
    elif this.args.get("email_changed") == "1":
        notice = "Your email address has been changed. Sign in with the new one."
    elif this.args.get("verified") == "1":
        notice = "Your email address is verified. Thank you."
    elif this.args.get("two_factor") == "ended":
        notice = SECOND_STEP_ENDED
    elif (ended := this.args.get("ended")) in WHY_ENDED:  # the session's tab, sent here
        notice = WHY_ENDED[str(ended)]
    if notice is None and (ended := request_session().ended) is not None:
        notice = WHY_ENDED[ended]  # this browser's session was ended elsewhere, not long ago
    if notice is None and next_page is None:
        # The same for every visitor: rendered once, only its CSRF token filled in per request.
        return await render_once("auth/sign_in.html", "auth/_sign_in_form.html")
    return await render_form("sign_in", notice=notice, next_page=next_page)


@bp.get("/register")
@public
async def sign_up_page() -> Response:
    if current_record() is not None:  # signed in (what current_user.is_authenticated says)
        return navigate(url_for("home.home"))
    return await render_once("auth/sign_up.html", "auth/_sign_up_form.html")


# What a client does next with these answers (the document's links).
WITH_THIS_TOKEN = {"header.X-CSRF-Token": "$response.body#/csrf_token"}
SIGN_UP_WITH_IT = Link(
    "signUp",
    "post_sign_up",
    "Sign up with this token (signed out, it is bound to the cookie this answer set).",
    WITH_THIS_TOKEN,
)
SIGN_IN_AGAIN = Link(
    "signIn",
    "post_sign_in",
    "Sign in to the new account, with the new session's token: a new session replaces it.",
    WITH_THIS_TOKEN,
    {"email": "$response.body#/email", "password": "$request.body#/password"},
)
LIST_SESSIONS = Link(
    "listSessions", "get_sessions_page", "List the account's sessions, this new one first."
)


@bp.get("/api/v1/csrf")
@public
@session_access("read")
@described(answers={200: CsrfToken}, links={200: [SIGN_UP_WITH_IT]})
async def csrf() -> Response:
    """A CSRF token for JSON clients, bound to their session or to a fresh cookie.

    Signed out, the answer also sets the `quartapp_csrf` cookie the token is bound to: keep
    it. Signed in, the token is bound to the session."""
    return await respond(Outcome(CsrfToken(csrf_token=csrf_token())))


@bp.post("/api/v1/signup")
@bp.post("/register", endpoint="sign_up_form")
@public
@described(
    request=Credentials,
    answers={201: SignedIn},
    errors=[409, 429],
    security=POST_ANYONE,
    links={201: [SIGN_IN_AGAIN, LIST_SESSIONS]},
)
async def sign_up() -> Response:
    """Create an account and sign in.

    Browsers' forms post to their own page (/register), so that a refused sign-up without
    JavaScript leaves the address bar there (a reload shows the page, not a re-post); the
    API address answers the same. Sets the session cookie."""
    typed = await read_model(Credentials)
    try:
        user, record = await service.sign_up(typed.email, typed.password)
    except AppError as error:
        return await respond(Refused(error, form_page("sign_up", email=typed.email.strip())))
    # Tokens from before the sign-in count no more: the answer carries the session's own.
    answer = SignedIn(
        message="account created",
        email=user.email,
        session=SessionSummary.of(record),
        csrf_token=csrf_token(),
    )
    return await respond(Outcome(answer, status=201, redirect=url_for("home.home")))


@bp.post("/api/v1/password-strength")
@public
@session_access("read")
@described(
    request=PasswordToJudge, answers={200: PasswordStrength}, errors=[429], security=POST_ANYONE
)
async def password_strength() -> Response:
    """How strong a password being typed is, judged as sign-up and password change will.

    The sign-up form sends `email` and `password`; the password change form sends
    `new_password`, and signed in, the account's email is used. The answer never
    contains the password. Browsers get the live hint instead: when judging is throttled
    or busy it says it has paused (a 200, shown in its place), and the form still judges
    the password when it is sent."""
    typed = await read_model(PasswordToJudge)
    record = current_record()
    email = record.email if record is not None else typed.email
    password = typed.password or typed.new_password
    hint = Page(STRENGTH_HINT)
    if not password:
        refused = InvalidFields({"password": "Enter a password."})
        return await respond(Refused(refused, hint, page_status=200))  # no hint yet
    try:
        judged = await service.judge_new_password(password, email, hint=True)
    except AppError as error:
        paused = Page(STRENGTH_HINT, context={"paused": error.message})
        return await respond(Refused(error, paused, page_status=200))
    answer = PasswordStrength(
        score=judged.score, acceptable=judged.acceptable, message=judged.message
    )
    return await respond(Outcome(answer, page=Page(STRENGTH_HINT, context={"strength": judged})))


@bp.post("/api/v1/signin")
@bp.post("/", endpoint="sign_in_form")
@public
@described(
    request=Credentials,
    answers={200: SignInAnswer},
    errors=[401, 429],
    security=POST_ANYONE,
    links={200: [LIST_SESSIONS]},
)
async def sign_in() -> Response:
    """Sign in, starting a new session.

    At the API address, and at / where the browser form posts (as sign-up). Sets the
    session cookie. A wrong email or password is one answer, 401 `invalid_credentials`.
    With a second factor on, a right password starts no session: the answer is
    `{"two_factor_required": true}` and a cookie for POST /api/v1/signin/two-factor."""
    typed = await read_model(Credentials)
    # The page a signed-out visit asked for: a browser form carries it through a failed
    # attempt, and it is checked again here (web.next_page). A JSON body has none.
    this = current_request()
    form = await this.form if this.mimetype in FORM_TYPES else None
    next_page = safe_next(form.get(NEXT_FIELD)) if form is not None else None
    try:
        missing = {
            name: f"Enter your {'email address' if name == 'email' else 'password'}."
            for name in ("email", "password")
            if not getattr(typed, name).strip()
        }
        if missing:
            raise AppError("Please fill in both fields.", status=422, fields=missing)
        record = await service.sign_in(typed.email, typed.password, next_page)
    except AppError as error:
        page = form_page("sign_in", email=typed.email.strip(), next_page=next_page)
        return await respond(Refused(error, page))
    if isinstance(record, SecondStepPending):  # a second factor: its code next
        return await two_factor.ask_for_code(record)
    answer = SignedIn(
        message="signed in",
        email=record.email,
        session=SessionSummary.of(record),
        csrf_token=csrf_token(),
    )
    return await respond(Outcome(answer, redirect=next_page or url_for("home.home")))


@bp.get("/logout")
@public
@session_access("read")
async def sign_out_page() -> Response:
    if current_record() is None:
        return navigate(url_for("auth.sign_in_page"))
    return Response(await render_template("auth/sign_out.html"))


@bp.post("/logout")
@signed_in
@described(answers={200: SignedOut}, errors=[401, 403, 413], security=POST_SIGNED_IN)
async def sign_out() -> Response:
    """End this session: its cookie is removed, and its CSRF tokens no longer work.

    Browsers go to the sign-in page, which says they are signed out (GET /logout is the
    page with the button that posts here)."""
    await get_sessions().sign_out()
    return await respond(Outcome(SignedOut(message="signed out"), redirect=signed_out_url()))

"""Quart's ``session`` and quart-auth's ``current_user``, both backed by one Redis record.

quart-auth owns the only cookie; its ``auth_id`` is the session token. The session interface
never sets a cookie: it reads the token quart-auth verified, and the record is loaded in a
``before_request`` hook (not in ``open_session``, which runs before routing and outside the
app's error handling) so that a Redis outage becomes a clean 503 and each route can say
whether its requests count as activity.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Literal, NamedTuple, TypeVar

from itsdangerous import BadData
from quart import Quart, Response, current_app, request
from quart.sessions import SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket
from quart_auth import AuthUser, QuartAuth, login_user, logout_user
from werkzeug.datastructures import CallbackDict

from quartapp.engine.quart_context import current_application, request_context
from quartapp.infra.redis_client import REDIS_ERRORS, get_redis
from quartapp.sessions.devices import describe_device
from quartapp.sessions.store import ENDED_BY_DELETION, SessionRecord, SessionStore
from quartapp.web.client_address import client_ip, trusted_networks

EXTENSION = "quartapp.sessions"
# The ASGI scope's key under which a handler in front of Quart (``blueprints.front_door``)
# leaves what it loaded before it passed the request on (``Loaded``), so that the request's
# session is not loaded a second time.
LOADED = "quartapp.session_loaded"

SessionAccess = Literal["touch", "read", "none"]
View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


def session_access(mode: SessionAccess) -> Callable[[View], View]:
    """Declare how a view uses the session: "touch" (the default) counts as activity and
    slides the idle deadline; "read" loads it without extending it; "none" skips Redis."""

    def decorate(view: View) -> View:
        view.session_access = mode  # type: ignore[attr-defined]
        return view

    return decorate


class Loaded(NamedTuple):  # made on every such request: a tuple costs less than a dataclass
    """What ``Sessions.load_early`` found for a token: its record (None for an ended
    session), or the Redis error that stopped it, and whether the load slid the session."""

    token: str
    touch: bool
    record: SessionRecord | None
    error: Exception | None = None


def _mark_modified(session: CallbackDict[str, Any]) -> None:
    # A function of the module, not a closure over the session: that would make each
    # request's session a reference cycle, left for the garbage collector.
    session.modified = True  # type: ignore[attr-defined]


class RequestSession(CallbackDict[str, Any], SessionMixin):
    """The request's session: the free-form data plus the record it came from, if any.

    It also carries what the request's CSRF protection works out once (``sessions.csrf``):
    the anonymous nonce, whether it is new, and the token the page's forms share."""

    def __init__(self, token: str | None, cookies: Mapping[str, str]) -> None:
        super().__init__(None, _mark_modified)
        self.token = token
        self.cookies = cookies  # the request's
        self.record: SessionRecord | None = None
        self.modified = False
        self.csrf_nonce: str | None = None
        self.csrf_nonce_is_new = False
        self.csrf_token: str | None = None
        # Why the cookie's session was ended, if another session or an account change
        # ended it not long ago (``SessionStore.ended_reason``).
        self.ended: str | None = None

    def attach(self, token: str | None, record: SessionRecord | None) -> None:
        self.token = token
        self.record = record
        self.csrf_token = None  # bound to the record it was signed for
        self.clear()
        if record is not None:
            self.update(record.data)
        self.modified = False


class SessionUser(AuthUser):
    """Authenticated exactly when this request holds a live record for the cookie's token."""

    @property
    async def is_authenticated(self) -> bool:
        context = request_context()
        current = context.session if context is not None else None
        return (
            isinstance(current, RequestSession)
            and current.record is not None
            and self.auth_id is not None
            and current.token == self.auth_id
        )


def request_session() -> RequestSession:
    # The object itself, not Quart's ``session`` proxy: callers read it several times a request.
    context = request_context()
    current = context.session if context is not None else None
    assert isinstance(current, RequestSession), "the app's session interface is not installed"
    return current


def current_record() -> SessionRecord | None:
    return request_session().record


class RedisSessionInterface(SessionInterface):
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> RequestSession:
        # A plain dict: the request's MultiDict answers a missing name by raising and
        # catching a BadRequestKeyError, which every new visitor's request would pay.
        cookies = request.cookies.to_dict()
        cookie = cookies.get(self.sessions.auth.cookie_name or "")
        return RequestSession(self.sessions.read_token(cookie) if cookie else None, cookies)

    async def save_session(  # type: ignore[override]
        self, app: Quart, session: RequestSession, response: Response
    ) -> None:
        if session.modified and session.record is not None:
            await self.sessions.store.save_data(session.record, dict(session))


class Sessions:
    """Wires the Redis session store, Quart's session interface and quart-auth together."""

    def __init__(self, app: Quart | None = None) -> None:
        self.auth = QuartAuth(user_class=SessionUser)
        self._store: SessionStore | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        config = app.config
        secure = bool(config["COOKIE_SECURE"])
        # The __Host- prefix pins the cookie to this host over https with Path=/.
        config.setdefault(
            "QUART_AUTH_COOKIE_NAME", "__Host-quartapp_session" if secure else "quartapp_session"
        )
        config["QUART_AUTH_COOKIE_SECURE"] = secure
        config["QUART_AUTH_COOKIE_HTTP_ONLY"] = True
        config["QUART_AUTH_COOKIE_SAMESITE"] = "Lax"
        config["QUART_AUTH_COOKIE_PATH"] = "/"
        # The signed cookie outlives no session: Redis ends it sooner, this bounds a stale one.
        config["QUART_AUTH_DURATION"] = int(config["SESSION_ABSOLUTE_TIMEOUT"])
        config["QUART_AUTH_SALT"] = "quartapp session token"
        self.auth.init_app(app)
        self._trusted_proxies = trusted_networks(config["TRUSTED_PROXIES"])
        keys = [*(config.get("SECRET_KEY_FALLBACKS") or ()), config["SECRET_KEY"]]
        self._serializer = self.auth.serializer_class(keys, str(self.auth.salt))
        self._verify_cookie = functools.lru_cache(maxsize=4096)(self._verify_signature)
        app.session_interface = RedisSessionInterface(self)  # type: ignore[assignment]
        app.extensions[EXTENSION] = self
        app.before_serving(self._open)
        app.before_request(self._load_current)

    def _verify_signature(self, cookie: str) -> tuple[str, int] | None:
        try:
            token, signed_at = self._serializer.loads(cookie, return_timestamp=True)
        except BadData:
            return None
        return str(token), int(signed_at.timestamp())

    def read_token(self, cookie: str) -> str | None:
        """The token in a session cookie, if quart-auth signed it and it is not too old.

        Signatures are checked once per cookie and remembered: a poll every second would
        otherwise spend more time on HMAC than on Redis."""
        verified = self._verify_cookie(cookie)
        # Whole seconds, as itsdangerous (and so quart-auth) counts a signature's age.
        if verified is None or int(time.time()) - verified[1] > int(self.auth.duration or 0):
            return None
        return verified[0]

    async def _open(self) -> None:
        config = current_app.config
        self._store = SessionStore(
            get_redis(),
            prefix=str(config["REDIS_PREFIX"]),
            idle_timeout=float(config["SESSION_IDLE_TIMEOUT"]),
            absolute_timeout=float(config["SESSION_ABSOLUTE_TIMEOUT"]),
            activity_resolution=float(config["SESSION_ACTIVITY_RESOLUTION"]),
            secret_keys=[config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or ())],
            max_sessions_per_user=int(config["SESSION_MAX_PER_USER"]),
        )

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            raise RuntimeError("sessions are used before the app started serving")
        return self._store

    async def load_early(
        self, scope: MutableMapping[str, Any], token: str, *, touch: bool
    ) -> SessionRecord | None:
        """The record of ``token`` (None when its session has ended, or on a Redis error),
        loaded before Quart sees the request whose ASGI ``scope`` this is, as its route
        would load it (``touch``: slide the idle deadline). What it found is left in the
        scope: if the request goes on to Quart, its session comes from there, with no second
        round trip (and a Redis error is raised there, and answered as every one is)."""
        try:
            record = await self.store.load(token, touch=touch)
        except REDIS_ERRORS as error:
            scope[LOADED] = Loaded(token, touch, None, error)
            return None
        scope[LOADED] = Loaded(token, touch, record)
        return record

    async def _record(
        self, scope: Mapping[str, Any], token: str, touch: bool
    ) -> SessionRecord | None:
        """The record of ``token``, as ``load_early`` left it in the scope or from Redis."""
        loaded = scope.get(LOADED)
        # A session slid already needs no second slide; one read without sliding may.
        if type(loaded) is Loaded and loaded.token == token and (loaded.touch or not touch):
            if loaded.error is not None:
                raise loaded.error
            return loaded.record
        return await self.store.load(token, touch=touch)

    async def _load_current(self) -> None:
        context = request_context()
        assert context is not None, "only while a request is handled"
        current = context.session
        assert isinstance(current, RequestSession), "the app's session interface is not installed"
        this = context.request
        access: SessionAccess
        if this.endpoint == "static":
            access = "none"  # a stylesheet is no sign of a person at work
        elif this.routing_exception is not None:
            access = "read"  # nor is a 404 or a 405; its page may still show who is signed in
        else:
            view = context.app.view_functions.get(this.endpoint or "")
            access = getattr(view, "session_access", "touch")
        # quart-auth is told who this is at once; left to itself it would read the cookie
        # and check its signature again (and on every request without the cookie, raise
        # and catch a KeyError) when its after-request hook asks.
        if access == "none":
            self.auth.login_user(SessionUser(None))  # whatever the cookie, nobody: it is kept
            return
        if current.token is not None:
            token = current.token
            record = await self._record(this.scope, token, access == "touch")
            current.attach(token if record else None, record)
            if record is None:  # a dead cookie: one more read, once per browser or so
                current.ended = await self.store.ended_reason(token)
        if current.record is not None:
            self.auth.login_user(SessionUser(current.token))
        elif current.ended is not None:
            # The dead cookie stays while its reason is remembered, so that every tab of the
            # browser can tell why (the next sign-in replaces it; Redis refuses it anyway).
            self.auth.login_user(SessionUser(None))
        elif self.auth.cookie_name in this.cookies:
            logout_user()  # expired, revoked or tampered: the browser drops the dead cookie
        else:
            self.auth.login_user(SessionUser(None))

    def client_ip(self) -> str:
        """The address of this request's client (see quartapp.client_address)."""
        # The ASGI server's word for the socket's peer. (Quart's remote_addr passes through
        # the request's headers on its way, where a client can add one of the same name.)
        peer = request.scope.get("client")
        forwarded = request.headers.getlist("X-Forwarded-For")
        return client_ip(peer[0] if peer else None, forwarded, self._trusted_proxies)

    async def sign_in(
        self,
        user_id: int,
        email: str,
        *,
        credentials_version: int | None,
        end_other_sessions: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> SessionRecord:
        """Start a brand-new session for this request, ending the one it had (if any) and,
        with ``end_other_sessions``, every other session of the user too.

        ``credentials_version``: that of the password just checked (``User.credentials_version``);
        raises CredentialsChanged when it was changed meanwhile (see
        ``SessionStore.retire_credentials``). ``data``: the new session's free-form data."""
        current = request_session()
        if end_other_sessions:
            await self.store.revoke_all(user_id)
        elif current.record is not None:
            await self.store.revoke(current.record)
        token, record = await self.store.create(
            user_id,
            email,
            ip=self.client_ip(),
            device=describe_device(request.headers.get("User-Agent")),
            data=data,
            credentials_version=credentials_version,
        )
        current.attach(token, record)
        login_user(SessionUser(token))
        return record

    async def sign_out(self) -> None:
        current = request_session()
        if current.record is not None:
            await self.store.revoke(current.record)
        self.forget()

    async def sign_out_everywhere(self, user_id: int) -> int:
        """End every session of this user, this request's included, as its account goes;
        how many live ones."""
        ended = await self.store.revoke_all(user_id, ENDED_BY_DELETION)
        self.forget()
        return ended

    def forget(self) -> None:
        """Treat this request as signed out from here on, and drop the browser's cookie."""
        request_session().attach(None, None)
        logout_user()


def session_summary(record: SessionRecord) -> dict[str, Any]:
    """A session as JSON answers name it: its public id and the seconds it has left."""
    return {"id": record.public_id, "expires_in": record.seconds_left}


def get_sessions() -> Sessions:
    sessions: Sessions = current_application().extensions[EXTENSION]
    return sessions

"""The front door (``blueprints.front_door``) answers the countdown's poll, /home and the
sign-in and sign-up pages exactly as their Quart routes would, or steps aside."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart, request_started
from quart.testing import QuartClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from .conftest import PASSWORD, Auth
from .support.http import CSRF_FIELD
from .test_sessions import Counter, record_pttl

# A poll from a page that shows the live phase, as the polled element sends it.
HTMX = {"HX-Request": "true", "X-Countdown-Shown": "live"}
IGNORED_HEADERS = {"content-length", "date", "server"}


class QuartRequests:
    """Counts the requests that went through Quart's request cycle."""

    def __init__(self, app: Quart) -> None:
        self.count = 0
        request_started.connect(self._started, app)

    async def _started(self, *_: Any, **__: Any) -> None:
        self.count += 1


def comparable(text: str) -> str:
    text = re.sub(r"PT\d+S\">\d+:\d\d", 'PT_S">_', text)
    # CSRF tokens: signed each second, and bound to each visitor's own cookie.
    text = re.sub(r"[\w-]+\.\d{10}\.[\w-]{43}", "token", text)
    return re.sub(
        r'datetime="[\d:TZ+-]+" data-local="time">\d\d:\d\d UTC', 'datetime="_">_ UTC', text
    )


def headers_of(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in IGNORED_HEADERS}


async def answered_alike(fast: Any, slow: Any, *, but_cookies: bool = False) -> str:
    """The front door's answer (its text) after checking it against the route's: the same
    page and headers (``but_cookies``: bar Set-Cookie, whose values differ), and a
    Content-Length that is the body's."""
    assert fast.status_code == slow.status_code == 200
    fast_text: str = await fast.get_data(as_text=True)
    assert comparable(fast_text) == comparable(await slow.get_data(as_text=True))
    ignored = {"set-cookie"} if but_cookies else set()
    assert {k: v for k, v in headers_of(fast).items() if k not in ignored} == {
        k: v for k, v in headers_of(slow).items() if k not in ignored
    }
    assert int(fast.headers["Content-Length"]) == len(fast_text.encode())
    return fast_text


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_live_poll_skips_quart_and_matches_the_route(
    app: Quart, client: QuartClient, auth: Auth, scheme: str
) -> None:
    await auth.sign_up()
    quart = QuartRequests(app)
    # The route renders the poll's answer once and remembers it (web.remembered_pages); the
    # front door fills that in.
    await client.get("/session/countdown", headers=HTMX, scheme=scheme)
    assert quart.count == 1
    fast = await client.get("/session/countdown", headers=HTMX, scheme=scheme)
    assert quart.count == 1
    # Not htmx: the Quart route answers.
    slow = await client.get("/session/countdown", scheme=scheme)
    assert quart.count == 2
    assert ("strict-transport-security" in headers_of(fast)) == (scheme == "https")
    fast_text = await answered_alike(fast, slow)
    assert 'hx-trigger="every 1s"' in fast_text
    assert "hx-swap-oob" not in fast_text, "the live phase goes on: nothing else changes"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HX-Request": "true", "HX-Boosted": "true"},
        {"HX-Request": "true", "HX-History-Restore-Request": "true"},
        {"HX-Request": "false"},
        # Only a page that shows the live phase can stay in it without other updates.
        {"HX-Request": "true"},
        {"HX-Request": "true", "X-Countdown-Shown": "warning"},
        {"HX-Request": "true", "X-Countdown-Shown": "nonsense"},
    ],
)
async def test_other_requests_go_to_quart(
    app: Quart, client: QuartClient, auth: Auth, headers: dict[str, str]
) -> None:
    await auth.sign_up()
    quart = QuartRequests(app)
    await client.get("/session/countdown", headers=HTMX)  # the live answer, remembered
    assert (await client.get("/session/countdown", headers=headers)).status_code == 200
    assert quart.count == 2


async def test_anonymous_and_forged_cookies_go_to_quart(app: Quart, client: QuartClient) -> None:
    signed_in = app.test_client()
    await Auth(signed_in).sign_up()
    await signed_in.get("/session/countdown", headers=HTMX)  # the live answer, remembered
    quart = QuartRequests(app)
    anonymous = await client.get("/session/countdown", headers=HTMX)
    assert "Your session has expired." in await anonymous.get_data(as_text=True)
    client.set_cookie("localhost", "quartapp_session", "forged")
    forged = await client.get("/session/countdown", headers=HTMX)
    assert "Your session has expired." in await forged.get_data(as_text=True)
    assert any("quartapp_session=;" in c for c in forged.headers.getlist("Set-Cookie"))
    assert quart.count == 2


async def test_warning_state_with_its_form_comes_from_quart(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(SESSION_WARNING_AT=600)
    client = app.test_client()
    await Auth(client).sign_up()
    quart = QuartRequests(app)
    for _ in range(2):  # the second too, though the first remembered its shape
        response = await client.get("/session/countdown", headers=HTMX)
        text = await response.get_data(as_text=True)
        assert "Stay signed in" in text
        assert 'name="csrf_token"' in text
    assert quart.count == 2


async def test_other_paths_and_methods_are_untouched(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    await client.get("/session/countdown", headers=HTMX)  # the live answer, remembered
    quart = QuartRequests(app)
    await client.get("/sessions", headers=HTMX)
    response = await client.post("/session/countdown", headers=HTMX)
    assert response.status_code == 405
    assert quart.count == 2


async def test_a_page_that_showed_the_warning_hears_the_session_was_extended(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    """Activity elsewhere brought the session back above the threshold: the status says so
    once, and the "Stay signed in" button is left in place (it may have the focus)."""
    await auth.sign_up()
    headers = {"HX-Request": "true", "X-Countdown-Shown": "warning"}
    text = await (await client.get("/session/countdown", headers=headers)).get_data(as_text=True)
    assert 'data-phase="extended"' in text
    assert '<p id="countdown-status" hx-swap-oob="innerHTML">' in text
    assert "Your session has been extended." in text
    assert 'id="countdown-actions"' not in text
    headers["X-Countdown-Shown"] = "extended"
    text = await (await client.get("/session/countdown", headers=headers)).get_data(as_text=True)
    assert 'data-phase="extended"' in text
    assert "hx-swap-oob" not in text, "nothing to announce again"


async def test_the_warning_is_sent_once_then_only_the_clock(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(SESSION_WARNING_AT=600)
    client = app.test_client()
    await Auth(client).sign_up()
    poll = {"HX-Request": "true", "X-Countdown-Shown": "live"}
    text = await (await client.get("/session/countdown", headers=poll)).get_data(as_text=True)
    assert "Your session is about to end." in text
    assert "Stay signed in" in text
    poll["X-Countdown-Shown"] = "warning"
    text = await (await client.get("/session/countdown", headers=poll)).get_data(as_text=True)
    assert 'data-phase="warning"' in text
    assert "hx-swap-oob" not in text
    assert "Stay signed in" not in text, "the button stays as it is, focus and all"


async def test_the_expired_answer_stops_polling_and_updates_the_page(
    app: Quart, client: QuartClient
) -> None:
    poll = {"HX-Request": "true", "X-Countdown-Shown": "warning"}
    text = await (await client.get("/session/countdown", headers=poll)).get_data(as_text=True)
    assert "hx-get" not in text.split("</div>")[0]
    assert "hx-trigger" not in text
    assert "Your session has expired." in text
    assert "Sign in again" in text
    assert '<ul id="account-nav" hx-swap-oob="outerHTML">' in text
    assert "Sign out" not in text


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_home_skips_quart_and_matches_the_route(
    app: Quart, client: QuartClient, auth: Auth, scheme: str
) -> None:
    await auth.sign_up()
    quart = QuartRequests(app)
    await client.get("/home", scheme=scheme)  # the route renders the page and remembers it
    assert quart.count == 1
    fast = await client.get("/home", scheme=scheme)
    assert quart.count == 1
    # A query string (flags for messages): the Quart route answers.
    slow = await client.get("/home?from=elsewhere", scheme=scheme)
    assert quart.count == 2
    fast_text = await answered_alike(fast, slow)
    assert "ada@example.com" in fast_text
    assert 'id="session-countdown"' in fast_text


async def test_home_from_the_front_door_counts_as_activity(
    make_app: Callable[..., Any], redis: Redis
) -> None:
    app = await make_app(SESSION_IDLE_TIMEOUT=3)
    client = app.test_client()
    await Auth(client).sign_up()
    await client.get("/home")
    quart = QuartRequests(app)
    await asyncio.sleep(1.2)
    await client.get("/home")
    assert quart.count == 0
    assert await record_pttl(app, client, redis) > 2800


async def test_the_token_in_a_home_page_from_the_front_door_is_good(
    make_app: Callable[..., Any],
) -> None:
    """Its forms work: the CSRF token filled in is the session's, signed as the route
    signs it (here the countdown's "Stay signed in", then "Sign out")."""
    app = await make_app(SESSION_WARNING_AT=600)
    client = app.test_client()
    await Auth(client).sign_up()
    await client.get("/home")
    quart = QuartRequests(app)
    text = await (await client.get("/home")).get_data(as_text=True)
    assert quart.count == 0
    assert "Stay signed in" in text
    tokens = set(CSRF_FIELD.findall(text))
    assert len(tokens) == 1
    [token] = tokens
    extended = await client.post("/session/extend", form={"csrf_token": token})
    assert extended.status_code == 303
    signed_out = await client.post("/logout", form={"csrf_token": token})
    assert signed_out.status_code == 303
    assert (await client.get("/home")).status_code == 303


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/home?sent=1", {}),
        ("GET", "/home", {"HX-Request": "true"}),
        ("GET", "/home", {"HX-Request": "true", "HX-Boosted": "true"}),
        ("HEAD", "/home", {}),
        ("GET", "/home/", {}),
    ],
)
async def test_other_home_requests_go_to_quart(
    app: Quart, client: QuartClient, auth: Auth, method: str, path: str, headers: dict[str, str]
) -> None:
    await auth.sign_up()
    await client.get("/home")  # the page, remembered
    quart = QuartRequests(app)
    await client.open(path, method=method, headers=headers)
    assert quart.count == 1


async def test_home_without_a_live_session_goes_to_quart(app: Quart, client: QuartClient) -> None:
    signed_in = app.test_client()
    await Auth(signed_in).sign_up()
    await signed_in.get("/home")  # the page, remembered
    quart = QuartRequests(app)
    assert (await client.get("/home")).status_code == 303  # no cookie
    client.set_cookie("localhost", "quartapp_session", "forged")
    forged = await client.get("/home")
    assert forged.status_code == 303
    assert any("quartapp_session=;" in c for c in forged.headers.getlist("Set-Cookie"))
    token = CSRF_FIELD.search(await (await signed_in.get("/home")).get_data(as_text=True))
    assert token is not None
    await signed_in.post("/logout", form={"csrf_token": token.group(1)})
    assert (await signed_in.get("/home")).status_code == 303  # the session ended
    assert quart.count == 4  # all but the signed-in page


async def test_home_with_an_anonymous_csrf_cookie_goes_to_quart_which_drops_it(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    await client.get("/home")  # the page, remembered
    client.set_cookie("localhost", "quartapp_csrf", "left-from-before-the-sign-in")
    quart = QuartRequests(app)
    response = await client.get("/home")
    assert quart.count == 1
    assert any(c.startswith("quartapp_csrf=;") for c in response.headers.getlist("Set-Cookie"))


async def test_home_under_a_script_root_goes_to_quart(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    """The front door's pages are built under no script root; the route builds the URLs
    under the request's."""
    await auth.sign_up()
    await client.get("/home")  # the page, remembered under no script root
    quart = QuartRequests(app)
    response = await client.get("/home", root_path="/prefix")
    assert quart.count == 1
    assert 'action="/prefix/logout"' in await response.get_data(as_text=True)


async def test_what_the_front_door_loaded_goes_on_with_the_request(
    make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request the front door passes on after loading its session (a shape the route has
    not rendered yet, the warning minute) costs one Redis round trip, not two."""
    app = await make_app(SESSION_WARNING_AT=600)
    client = app.test_client()
    await Auth(client).sign_up()
    counter = Counter(app, monkeypatch)
    await counter.install()
    quart = QuartRequests(app)
    assert (await client.get("/home")).status_code == 200  # the first of its shape
    assert (await client.get("/session/countdown", headers=HTMX)).status_code == 200  # warning
    assert quart.count == 2
    assert (counter.redis, counter.mysql) == (2, 0)


async def test_a_redis_error_in_the_front_door_is_the_routes_503_at_once(
    app: Quart, client: QuartClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis is asked once: a slow or failing Redis does not cost the request twice."""
    await auth.sign_up()
    await client.get("/home")  # the page, remembered
    store = app.extensions["quartapp.sessions"].store
    calls: list[bool] = []

    async def failing(token: str, *, touch: bool) -> Any:
        calls.append(touch)
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(store, "load", failing)
    for path, headers in (("/home", {}), ("/session/countdown", HTMX)):
        response = await client.get(path, headers=headers)
        assert response.status_code == 503
    assert calls == [True, False]


def csrf_cookie(response: Any) -> str | None:
    """The anonymous CSRF cookie a response sets, without its value and expiry date."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("quartapp_csrf="):
            return re.sub(r"^quartapp_csrf=[^;]+; Expires=[^;]+", "quartapp_csrf=_", header)
    return None


@pytest.mark.parametrize("path", ["/", "/register"])
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_anonymous_pages_skip_quart_and_match_their_routes(
    app: Quart, path: str, scheme: str
) -> None:
    await app.test_client().get(path, scheme=scheme)  # the route renders the page once
    quart = QuartRequests(app)
    visitor = app.test_client()
    fast = await visitor.get(path, scheme=scheme)
    assert quart.count == 0
    # A query string: the Quart route answers (here with no message to show).
    slow = await app.test_client().get(f"{path}?from=elsewhere", scheme=scheme)
    assert quart.count == 1
    fast_text = await answered_alike(fast, slow, but_cookies=True)
    assert 'name="csrf_token"' in fast_text
    assert csrf_cookie(fast) == csrf_cookie(slow) is not None
    # The visitor keeps its cookie: the next page is bound to it and sets none.
    again = await visitor.get(path, scheme=scheme)
    assert quart.count == 1
    assert csrf_cookie(again) is None


async def test_the_token_of_a_sign_in_page_from_the_front_door_is_good(
    app: Quart, client: QuartClient
) -> None:
    await Auth(app.test_client()).sign_up()
    await app.test_client().get("/")  # the page, remembered
    quart = QuartRequests(app)
    page = await client.get("/")
    assert quart.count == 0
    token = CSRF_FIELD.search(await page.get_data(as_text=True))
    assert token is not None
    signed_in = await client.post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed_in.status_code == 303
    # Another visitor's token is refused: it is bound to this visitor's cookie.
    stranger = await app.test_client().post(
        "/api/v1/signin",
        form={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert stranger.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "headers", "cookies"),
    [
        ("GET", "/?next=/sessions", {}, {}),
        ("GET", "/", {"HX-Request": "true"}, {}),
        ("GET", "/register", {"HX-Request": "true"}, {}),
        ("HEAD", "/", {}, {}),
        ("GET", "/", {}, {"quartapp_session": "forged"}),
        ("GET", "/register", {}, {"quartapp_session": "forged"}),
        ("GET", "/", {}, {"quartapp_csrf": ""}),
    ],
)
async def test_other_anonymous_requests_go_to_quart(
    app: Quart,
    client: QuartClient,
    method: str,
    path: str,
    headers: dict[str, str],
    cookies: dict[str, str],
) -> None:
    for page in ("/", "/register"):
        await app.test_client().get(page)  # the pages, remembered
    for name, value in cookies.items():
        client.set_cookie("localhost", name, value)
    quart = QuartRequests(app)
    await client.open(path, method=method, headers=headers)
    assert quart.count == 1


async def test_a_signed_in_visit_to_the_sign_in_page_goes_to_quart(
    app: Quart, client: QuartClient, auth: Auth
) -> None:
    await app.test_client().get("/")  # the page, remembered
    await auth.sign_up()
    quart = QuartRequests(app)
    response = await client.get("/")
    assert quart.count == 1
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/home")

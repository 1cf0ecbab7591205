"""The app's request cycle (quartapp.engine.quart_request_cycle) as an ASGI server drives
it: what it sends, in how many messages, and what it does when the client is slow or gone."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from quart import Quart, request
from quart.wrappers import Request

from quartapp.serve import APP, YOUNG_COLLECTION_THRESHOLD, served_app
from quartapp.web.access import public
from quartapp.web.headers import finish_headers, response_headers

from .conftest import test_config as settings_for


def scope(
    path: str, method: str = "GET", headers: tuple[tuple[bytes, bytes], ...] = ()
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"accept", b"text/html"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


async def drive(
    app: Quart, request: dict[str, Any], *, body: bytes = b"", send_hook: Any = None
) -> list[dict[str, Any]]:
    """Run one request through the app's ASGI entry point; the messages it sent."""
    sent: list[dict[str, Any]] = []
    delivered = False
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        # As servers do: once the answer is complete, the connection is done with.
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if send_hook is not None:
            await send_hook(message)
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await asyncio.wait_for(app(request, receive, send), timeout=10)
    return sent


async def test_a_page_is_sent_in_one_message_with_the_app_s_headers(app: Quart) -> None:
    async with app.test_app():
        sent = await drive(app, scope("/"))
    start, *bodies = sent
    assert start["status"] == 200
    assert len(bodies) == 1
    assert bodies[0]["more_body"] is False
    headers = dict(start["headers"])
    assert int(headers[b"content-length"]) == len(bodies[0]["body"])
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"vary"] == b"HX-Request"
    assert b"script-src 'self'" in headers[b"content-security-policy"]
    assert b"<form" in bodies[0]["body"]


async def test_a_get_with_a_body_is_answered_and_a_post_s_body_is_read(app: Quart) -> None:
    async with app.test_app():
        sent = await drive(
            app, scope("/healthz", headers=((b"content-length", b"5"),)), body=b"hello"
        )
        assert sent[0]["status"] == 200
        # A form post goes through Quart's reading of the body: its missing CSRF token is
        # found missing only once the body is read.
        form = ((b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"9"))
        sent = await drive(app, scope("/", "POST", form), body=b"email=a@b")
        assert sent[0]["status"] == 403


async def test_a_client_that_does_not_take_the_answer_is_given_up_on(app: Quart) -> None:
    app.config["RESPONSE_TIMEOUT"] = 0.2

    async def never(message: dict[str, Any]) -> None:
        await asyncio.sleep(3600)

    async with app.test_app():
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await drive(app, scope("/healthz"), send_hook=never) == []
        assert loop.time() - started < 5


async def test_a_client_gone_away_ends_the_request_quietly(app: Quart) -> None:
    async def gone(message: dict[str, Any]) -> None:
        raise ConnectionResetError("the client went away")

    async with app.test_app():
        assert await drive(app, scope("/"), send_hook=gone) == []
        # and the app goes on answering others
        assert (await drive(app, scope("/healthz")))[0]["status"] == 200


def encoded(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in pairs]


class FakeRequest:
    def __init__(self, scheme: str, endpoint: str | None) -> None:
        self.scheme = scheme
        self.url_rule = None if endpoint is None else type("Rule", (), {"endpoint": endpoint})()


def test_finish_headers_keeps_what_a_view_set_and_adds_to_its_vary() -> None:
    headers = encoded(
        ("content-type", "text/html"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "private"),
        ("vary", "Accept"),
    )
    finish_headers(FakeRequest("https", "auth.sign_in_page"), headers)  # type: ignore[arg-type]
    names = [name for name, _ in headers]
    assert names.count(b"referrer-policy") == 1
    assert (b"referrer-policy", b"no-referrer") in headers
    assert (b"cache-control", b"private") in headers
    assert (b"vary", b"Accept, HX-Request") in headers
    assert (b"strict-transport-security", b"max-age=63072000") in headers


APP_HEADERS = [name for name, _ in response_headers(https=True, page=True)]


@given(
    own=st.lists(st.sampled_from(APP_HEADERS), unique=True),
    https=st.booleans(),
    endpoint=st.sampled_from(["auth.sign_in_page", "static", None]),
)
def test_each_app_header_is_sent_once_and_a_view_s_own_stands(
    own: list[str], https: bool, endpoint: str | None
) -> None:
    """Whatever a view sets of the app's headers (a page's own Content-Security-Policy
    alone, say), each goes out once, with the view's value; Vary gets HX-Request added."""
    # As the request cycle hands them over: names in lower case.
    headers = encoded(
        ("content-type", "text/html"), *((name.lower(), f"own {name}") for name in own)
    )
    finish_headers(FakeRequest("https" if https else "http", endpoint), headers)  # type: ignore[arg-type]
    names = [name for name, _ in headers]
    for name in APP_HEADERS:
        assert names.count(name.lower().encode()) <= 1, (name, headers)
    sent = dict(headers)
    for name in own:
        page = endpoint != "static"  # a static file gets no Vary of the app's
        expected = f"own {name}" + (", HX-Request" if name == "Vary" and page else "")
        assert sent[name.lower().encode()] == expected.encode()


async def test_a_view_s_own_content_security_policy_is_the_only_one(app: Quart) -> None:
    policy = "default-src 'none'; img-src https://example.org"

    @app.get("/own-policy")
    @public
    async def own_policy() -> Any:
        return "ok", 200, {"Content-Security-Policy": policy}

    start, *_ = await drive(app, scope("/own-policy"))
    assert start["status"] == 200
    policies = [value for name, value in start["headers"] if name == b"content-security-policy"]
    assert policies == [policy.encode()]


def test_finish_headers_for_static_files_and_plain_http() -> None:
    headers = encoded(("content-type", "text/css"))
    finish_headers(FakeRequest("http", "static"), headers)  # type: ignore[arg-type]
    names = {name for name, _ in headers}
    assert b"content-security-policy" in names
    assert b"cache-control" not in names  # a static file keeps its own caching
    assert b"vary" not in names
    assert b"strict-transport-security" not in names
    not_found = encoded(("content-type", "text/html"))
    finish_headers(FakeRequest("http", None), not_found)  # type: ignore[arg-type]
    assert (b"cache-control", b"no-store") in not_found


async def test_a_served_worker_settles_its_heap_when_it_starts_serving(
    database: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``quartapp serve`` runs ``served_app``: once the worker serves, what is alive then is
    frozen out of the collector's generations and young collections come less often."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(("freeze", ())))
    monkeypatch.setattr(gc, "set_threshold", lambda *limits: calls.append(("threshold", limits)))
    app = served_app(settings_for(database, redis_prefix))
    assert calls == []  # made, not yet serving
    async with app.test_app():
        _, middle, old = gc.get_threshold()
        assert calls == [
            ("freeze", ()),
            ("threshold", (YOUNG_COLLECTION_THRESHOLD, middle, old)),
        ]
    assert APP == "quartapp.serve:served_app"


async def test_a_request_names_its_blueprints_as_quart_does(app: Quart) -> None:
    for path, expected in (("/home", ["home"]), ("/sessions", ["account"]), ("/nowhere", [])):
        async with app.test_request_context(path):
            assert request.blueprints == expected
            assert request.blueprints == Request.blueprints.fget(request)  # type: ignore[attr-defined]

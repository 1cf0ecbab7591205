"""Settings, start-up checks and the headers every response carries."""

from __future__ import annotations

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp import create_app
from quartapp.config import ConfigError
from quartapp.web.templating import clock


def test_missing_secret_key_outside_development_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QUARTAPP_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="QUARTAPP_SECRET_KEY is not set"):
        create_app({"ENV": "production"})


def test_development_runs_without_secret_and_with_plain_http_cookies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QUARTAPP_SECRET_KEY", raising=False)
    monkeypatch.delenv("QUARTAPP_COOKIE_SECURE", raising=False)
    app = create_app({"ENV": "development"})
    assert app.config["SECRET_KEY"]
    assert app.config["COOKIE_SECURE"] is False
    assert create_app({"ENV": "production", "SECRET_KEY": "k" * 32}).config["COOKIE_SECURE"] is True


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUARTAPP_SECRET_KEY", "from the environment, long enough to use")
    monkeypatch.setenv("QUARTAPP_SESSION_IDLE_TIMEOUT", "30")
    monkeypatch.setenv("QUARTAPP_COOKIE_SECURE", "false")
    app = create_app({"ENV": "production"})
    assert app.config["SECRET_KEY"] == "from the environment, long enough to use"
    assert app.config["SESSION_IDLE_TIMEOUT"] == 30
    assert app.config["COOKIE_SECURE"] is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_IDLE_TIMEOUT", 0),
        ("SESSION_ABSOLUTE_TIMEOUT", "ten"),
        ("BCRYPT_ROUNDS", 3),
        ("BCRYPT_ROUNDS", True),
        ("SECRET_KEY_FALLBACKS", "old key"),  # not a JSON list: each letter would be a key
        ("SECRET_KEY_FALLBACKS", [""]),
        ("REDIS_PREFIX", "app:{x}:"),
        ("SESSION_MAX_PER_USER", -1),
        ("SESSION_MAX_PER_USER", "many"),
    ],
)
def test_bad_settings_stop_start_up(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"QUARTAPP_{name}"):
        create_app({"SECRET_KEY": "k" * 32, name: value})


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (9, "0:09"), (600, "10:00"), (3725, "1:02:05")]
)
def test_clock(seconds: int, text: str) -> None:
    assert clock(seconds) == text


async def test_security_headers(app: Quart, client: QuartClient) -> None:
    response = await client.get("/")
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    static = await client.get("/static/vendor/htmx/htmx.min.js")
    assert static.status_code == 200
    assert "max-age=3600" in static.headers["Cache-Control"]


async def test_pages_use_no_inline_script_or_style(client: QuartClient) -> None:
    for path in ("/", "/register"):
        body = await (await client.get(path)).get_data(as_text=True)
        assert "<script>" not in body
        assert "<style" not in body
        assert " style=" not in body
        assert "onclick" not in body


async def test_health_endpoints(client: QuartClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert await ready.get_json() == {"status": "ok", "redis": "ok", "mysql": "ok"}


def test_a_short_secret_key_stops_start_up_outside_development() -> None:
    with pytest.raises(ConfigError, match="QUARTAPP_SECRET_KEY is too short"):
        create_app({"ENV": "production", "SECRET_KEY": "k" * 31})
    assert create_app({"ENV": "development", "SECRET_KEY": "short"}).config["SECRET_KEY"]

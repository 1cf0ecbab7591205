"""Settings, start-up checks and the headers every response carries."""

from __future__ import annotations

import pytest
from quart import Quart
from quart.testing import QuartClient

from quartapp import create_app
from quartapp.config import ConfigError
from quartapp.web.templating import clock

# What every app outside development needs besides a secret key.
MAIL = {"PUBLIC_URL": "https://quartapp.test", "MAIL_URL": "smtp://127.0.0.1:9"}


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
    production = create_app({"ENV": "production", "SECRET_KEY": "k" * 32, **MAIL})
    assert production.config["COOKIE_SECURE"] is True


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUARTAPP_SECRET_KEY", "from the environment, long enough to use")
    monkeypatch.setenv("QUARTAPP_SESSION_IDLE_TIMEOUT", "30")
    monkeypatch.setenv("QUARTAPP_COOKIE_SECURE", "false")
    monkeypatch.setenv("QUARTAPP_PUBLIC_URL", "https://quartapp.test")
    monkeypatch.setenv("QUARTAPP_MAIL_URL", "smtp+starttls://u:p@mail.quartapp.test:587")
    app = create_app({"ENV": "production"})
    assert app.config["MAIL_FROM"] == "quartapp <no-reply@quartapp.test>"
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
        ("BCRYPT_QUEUE", 0),
        ("PASSWORD_JUDGE_QUEUE", "long"),
        ("PASSWORD_HINT_QUEUE", -1),
        ("BCRYPT_THREADS", 0),
        ("NEW_DEVICE_NOTICES", [0, 3600]),
        ("NEW_DEVICE_NOTICES", "three"),
        ("COOKIE_HEADER_MAX_BYTES", 100),
        ("DATABASE_URL", "postgres://ada@127.0.0.1/quartapp"),
        ("DATABASE_URL", "mysql://127.0.0.1:3306/"),
    ],
)
def test_bad_settings_stop_start_up(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"QUARTAPP_{name}"):
        create_app({"SECRET_KEY": "k" * 32, name: value})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00"), (9, "00:09"), (599, "09:59"), (600, "10:00"), (3725, "1:02:05")],
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
    # From this machine (a loopback peer), /readyz has the details (tests/test_health.py).
    ready = await client.get("/readyz", scope_base={"client": ("127.0.0.1", 50000)})
    assert ready.status_code == 200
    assert await ready.get_json() == {
        "status": "ok",
        "redis": "ok",
        "mysql": "ok",
        "mail": {"queue": "ok", "workers": 0, "queued": 0, "waiting": 0},
    }


def test_a_short_secret_key_stops_start_up_outside_development() -> None:
    with pytest.raises(ConfigError, match="QUARTAPP_SECRET_KEY is too short"):
        create_app({"ENV": "production", "SECRET_KEY": "k" * 31})
    assert create_app({"ENV": "development", "SECRET_KEY": "short"}).config["SECRET_KEY"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PUBLIC_URL": None}, "QUARTAPP_PUBLIC_URL is not set"),
        ({"MAIL_URL": None}, "QUARTAPP_MAIL_URL is not set"),
        ({"PUBLIC_URL": "quartapp.test"}, "QUARTAPP_PUBLIC_URL: give an http"),
        ({"PUBLIC_URL": "https://quartapp.test/app"}, "QUARTAPP_PUBLIC_URL: give the origin"),
        ({"MAIL_URL": "http://mail:25"}, "QUARTAPP_MAIL_URL: the URL must start with"),
        ({"MAIL_URL": "smtp://mail:port"}, "QUARTAPP_MAIL_URL: the port"),
        ({"MAIL_REDIS_URL": "redis+cluster://n1:7000"}, "does not run on Redis Cluster"),
    ],
)
def test_mail_settings_outside_development_stop_start_up_with_one_line(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as stopped:
        create_app({"ENV": "production", "SECRET_KEY": "k" * 32, **MAIL, **settings})
    assert message in str(stopped.value)
    assert "\n" not in str(stopped.value)


def test_mail_url_passwords_stay_out_of_errors_and_reprs() -> None:
    from quartapp.mail.settings import parse_mail_url

    server = parse_mail_url("smtps://user:s%40cret@mail.quartapp.test")
    assert (server.security, server.port, server.password) == ("tls", 465, "s@cret")
    assert "cret" not in repr(server)
    assert parse_mail_url("smtp+starttls://mail.quartapp.test").port == 587


def test_development_mails_to_the_local_catcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PUBLIC_URL", "MAIL_URL", "MAIL_FROM"):
        monkeypatch.delenv(f"QUARTAPP_{name}", raising=False)
    config = create_app({"ENV": "development"}).config
    assert (config["PUBLIC_URL"], config["MAIL_URL"]) == (
        "http://localhost:4300",
        "smtp://127.0.0.1:1025",
    )

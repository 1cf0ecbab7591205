"""The second factor: enrolment, the sign-in's second step (pages, htmx, no JavaScript and
JSON), codes that work once and within one step of now, recovery codes, the pending step's
end and throttle, turning it off, and no way around it (a reset, a password change, the
JSON API). A test authenticator (pyotp) makes the codes; the server's clock is set by the
tests (``two_factor.now``), so no test depends on when it runs."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from quart import Quart
from quart.testing import QuartClient
from redis.asyncio import Redis

from quartapp.accounts import two_factor
from quartapp.accounts.models import RecoveryCode, User
from quartapp.accounts.secret_box import SecretBox, Unreadable

from .conftest import PASSWORD, Auth, csrf_from, session_cookie
from .support.app_servers import app_environment

JSON = {"Accept": "application/json"}
HTMX = {"HX-Request": "true"}
# The middle of a 30-second step: a code of one step either side is unambiguous.
T0 = 1_800_000_015.0
SECRET_ELEMENT = re.compile(r'<code id="totp-secret"[^>]*>([A-Z2-7]+)</code>')
RECOVERY_ELEMENT = re.compile(r'<code class="recovery-code">([A-Z2-7-]+)</code>')
PENDING_COOKIE = "quartapp_signin2"


@dataclass
class Clock:
    now: float = T0

    def step(self, steps: int) -> None:
        self.now += steps * two_factor.STEP_SECONDS


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moment = Clock()
    monkeypatch.setattr(two_factor, "now", lambda: moment.now)
    return moment


@dataclass
class Enrolled:
    secret: str
    recovery_codes: list[str]

    def code(self, clock: Clock, steps: int = 0) -> str:
        return pyotp.TOTP(self.secret).at(clock.now + steps * two_factor.STEP_SECONDS)


async def enrol(client: QuartClient, auth: Auth, clock: Clock) -> Enrolled:
    """Turn the factor on through the pages (no JavaScript), as a person would."""
    token = await auth.page_token()
    begun = await client.post(
        "/account/two-factor", form={"password": PASSWORD, "csrf_token": token}
    )
    assert begun.status_code == 200
    page = await begun.get_data(as_text=True)
    match = SECRET_ELEMENT.search(page)
    assert match, "no #totp-secret"
    secret = match.group(1)
    code = pyotp.TOTP(secret).at(clock.now)
    confirmed = await client.post(
        "/account/two-factor/confirm", form={"code": code, "csrf_token": token}
    )
    assert confirmed.status_code == 200
    codes = RECOVERY_ELEMENT.findall(await confirmed.get_data(as_text=True))
    assert len(codes) == 10
    clock.step(1)  # the confirming code counts as used: the next sign-in needs the next one
    return Enrolled(secret, codes)


async def signed_up_and_enrolled(client: QuartClient, auth: Auth, clock: Clock) -> Enrolled:
    await auth.sign_up()
    return await enrol(client, auth, clock)


async def code_form(client: QuartClient, code: str, **headers: str) -> Any:
    token = await csrf_from(client, "/")  # the page of an ended step has no form
    return await client.post(
        "/signin/two-factor", form={"code": code, "csrf_token": token}, headers=headers
    )


async def api_code(client: QuartClient, code: object) -> Any:
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    return await client.post(
        "/api/v1/signin/two-factor", json={"code": code}, headers={"X-CSRF-Token": token}
    )


async def api_sign_in(client: QuartClient, email: str = "ada@example.com") -> Any:
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    return await client.post(
        "/api/v1/signin",
        json={"email": email, "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )


def pending_cookie(client: QuartClient) -> str | None:
    assert client.cookie_jar is not None
    for cookie in client.cookie_jar:
        if cookie.name.endswith(PENDING_COOKIE):
            return cookie.value
    return None


async def signed_in(client: QuartClient) -> bool:
    return (await client.get("/home")).status_code == 200


async def fresh_sign_in(app: Quart) -> tuple[QuartClient, Any]:
    """A new browser that typed the right password."""
    client = app.test_client()
    answer = await Auth(client).sign_in()
    return client, answer


# -- enrolment -------------------------------------------------------------------------------


async def test_enrolment_shows_the_secret_once_as_text_and_inline_svg_then_codes(
    client: QuartClient, auth: Auth, clock: Clock
) -> None:
    await auth.sign_up()
    token = await auth.page_token()
    off = await client.get("/account/two-factor")
    assert "is <strong>off</strong>" in await off.get_data(as_text=True)
    begun = await client.post(
        "/account/two-factor", form={"password": PASSWORD, "csrf_token": token}
    )
    page = await begun.get_data(as_text=True)
    secret = SECRET_ELEMENT.search(page).group(1)  # type: ignore[union-attr]
    assert len(pyotp.TOTP(secret).byte_secret()) == 20  # 160 bits
    # The QR code: an inline SVG with no style attribute or element and no script, so the
    # Content Security Policy (unchanged) renders it.
    svg = re.search(r"<svg .*?</svg>", page, re.S)
    assert svg, "no inline SVG"
    assert 'class="qr"' in svg.group(0)
    assert "style" not in svg.group(0)
    assert "<script" not in svg.group(0)
    csp = begun.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    # Not on yet: the account says so, and a sign-in needs only the password.
    assert (await (await client.get("/api/v1/account")).get_json())["two_factor_enabled"] is False
    assert (await fresh_sign_in(client.app))[1].status_code == 303  # type: ignore[arg-type]

    wrong = await client.post(
        "/account/two-factor/confirm", form={"code": "000000", "csrf_token": token}
    )
    assert wrong.status_code == 403
    again = await wrong.get_data(as_text=True)
    assert secret in again  # still enrolling: the same secret, to try the next code
    confirmed = await client.post(
        "/account/two-factor/confirm",
        form={"code": pyotp.TOTP(secret).at(clock.now), "csrf_token": token},
    )
    assert confirmed.status_code == 200
    body = await confirmed.get_data(as_text=True)
    codes = RECOVERY_ELEMENT.findall(body)
    assert len(codes) == len(set(codes)) == 10
    assert all(two_factor.typed_recovery_code(code) for code in codes)
    assert 'data-copy="recovery-codes"' in body
    # From now on no page or answer shows the secret again.
    for path in ("/account/two-factor", "/account", "/home"):
        assert secret not in await (await client.get(path)).get_data(as_text=True)
    status = await (await client.get("/account/two-factor", headers=JSON)).get_json()
    assert status == {"two_factor_enabled": True, "recovery_codes_left": 10}
    assert (await (await client.get("/api/v1/account")).get_json())["two_factor_enabled"] is True
    # Only hashes are kept, and the secret is encrypted.
    user = await User.get(email="ada@example.com")
    assert user.totp_secret is not None
    assert secret not in user.totp_secret
    stored = await RecoveryCode.filter(user_id=user.id).values_list("code_hash", flat=True)
    assert len(stored) == 10
    for code in codes:
        assert code not in stored
        assert code.lower().replace("-", "") not in stored
    # Enrolling again while on is refused.
    twice = await client.post(
        "/account/two-factor", form={"password": PASSWORD, "csrf_token": token}, headers=JSON
    )
    assert twice.status_code == 409


async def test_enrolment_wants_the_password(client: QuartClient, auth: Auth) -> None:
    await auth.sign_up()
    token = await auth.page_token()
    wrong = await client.post(
        "/account/two-factor", form={"password": "not the password", "csrf_token": token}
    )
    assert wrong.status_code == 403
    page = await wrong.get_data(as_text=True)
    assert 'id="totp-secret"' not in page
    assert 'id="begin-password-error"' in page


async def test_confirming_without_an_enrolment_is_a_409(client: QuartClient, auth: Auth) -> None:
    await auth.sign_up()
    answer = await auth.post("/account/two-factor/confirm", {"code": "123456"}, headers=JSON)
    assert answer.status_code == 409


# -- signing in, every kind of client -------------------------------------------------------


async def test_sign_in_without_javascript(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    browser, answer = await fresh_sign_in(app)
    # The right password starts no session: the browser goes to the code form.
    assert (answer.status_code, answer.headers["Location"]) == (303, "/signin/two-factor")
    assert session_cookie(browser) is None
    assert not await signed_in(browser)
    set_cookie = answer.headers["Set-Cookie"]
    assert PENDING_COOKIE in set_cookie
    assert "HttpOnly" in set_cookie
    assert "Max-Age=300" in set_cookie
    assert "SameSite=Lax" in set_cookie
    page = await browser.get("/signin/two-factor")
    assert page.status_code == 200
    html = await page.get_data(as_text=True)
    field = re.search(r'<input id="code"[^>]*>', html)
    assert field, "no code field"
    assert 'autocomplete="one-time-code"' in field.group(0)
    assert 'inputmode="numeric"' in field.group(0)

    done = await code_form(browser, enrolled.code(clock))
    assert (done.status_code, done.headers["Location"]) == (303, "/home")
    assert await signed_in(browser)
    assert pending_cookie(browser) is None  # the pending step's cookie is gone
    sessions = await (await browser.get("/sessions", headers=JSON)).get_json()
    mine = [s for s in sessions["sessions"] if s["current"]]
    assert mine[0]["signed_in_with"] == "password_and_code"
    assert "password + code" in await (await browser.get("/sessions")).get_data(as_text=True)


async def test_sign_in_with_htmx(app: Quart, client: QuartClient, auth: Auth, clock: Clock) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    browser = app.test_client()
    answer = await Auth(browser).sign_in(**HTMX)
    assert answer.headers["HX-Redirect"] == "/signin/two-factor"
    assert not await signed_in(browser)
    token = await csrf_from(browser, "/signin/two-factor")
    wrong = await browser.post(
        "/api/v1/signin/two-factor", form={"code": "000000", "csrf_token": token}, headers=HTMX
    )
    assert wrong.status_code == 401
    fragment = await wrong.get_data(as_text=True)
    assert fragment.startswith('<div id="two-factor">') or 'id="two-factor"' in fragment[:400]
    assert "<html" not in fragment
    assert 'aria-invalid="true"' in fragment
    done = await browser.post(
        "/api/v1/signin/two-factor",
        form={"code": enrolled.code(clock), "csrf_token": token},
        headers=HTMX,
    )
    assert done.headers["HX-Redirect"] == "/home"
    assert await signed_in(browser)


async def test_sign_in_with_json(app: Quart, client: QuartClient, auth: Auth, clock: Clock) -> None:
    # Enrolment by JSON, too.
    await auth.sign_up()
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    headers = {"X-CSRF-Token": token}
    begun = await client.post("/account/two-factor", json={"password": PASSWORD}, headers=headers)
    assert begun.status_code == 200
    enrolment = await begun.get_json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/quartapp:")
    secret = enrolment["secret"]
    confirmed = await client.post(
        "/account/two-factor/confirm",
        json={"code": pyotp.TOTP(secret).at(clock.now)},
        headers=headers,
    )
    assert confirmed.status_code == 200
    assert len((await confirmed.get_json())["recovery_codes"]) == 10
    clock.step(1)

    api = app.test_client()
    first = await api_sign_in(api)
    assert first.status_code == 200
    assert await first.get_json() == {"two_factor_required": True}
    assert session_cookie(api) is None
    assert (await api.get("/api/v1/account", headers=JSON)).status_code == 401
    wrong = await api_code(api, "000000")
    assert wrong.status_code == 401
    assert (await wrong.get_json())["code"] == "invalid_code"
    done = await api_code(api, pyotp.TOTP(secret).at(clock.now))
    assert done.status_code == 200
    answer = await done.get_json()
    assert answer["message"] == "signed in"
    assert answer["csrf_token"]
    assert "recovery_codes_left" not in answer
    account = await (await api.get("/api/v1/account")).get_json()
    assert account["two_factor_enabled"] is True


@pytest.mark.parametrize("steps", [-1, 0, 1])
async def test_a_code_one_step_either_side_of_now_is_accepted(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock, steps: int
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    clock.step(1)  # so that the step before now is not the confirming code's
    browser, _ = await fresh_sign_in(app)
    done = await code_form(browser, enrolled.code(clock, steps))
    assert done.status_code == 303
    assert done.headers["Location"] == "/home"


@pytest.mark.parametrize("steps", [-2, 2, -10])
async def test_a_code_two_steps_or_more_away_is_refused(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock, steps: int
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    clock.step(5)
    browser, _ = await fresh_sign_in(app)
    refused = await code_form(browser, enrolled.code(clock, steps))
    assert refused.status_code == 401
    assert not await signed_in(browser)


async def test_a_code_works_once(app: Quart, client: QuartClient, auth: Auth, clock: Clock) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    code = enrolled.code(clock)
    first, _ = await fresh_sign_in(app)
    assert (await code_form(first, code)).headers["Location"] == "/home"
    # The same code again, in its window, from another browser: refused.
    second, _ = await fresh_sign_in(app)
    assert (await code_form(second, code)).status_code == 401
    # So is the code of the step before (older than the last one used).
    assert (await code_form(second, enrolled.code(clock, -1))).status_code == 401
    # The next step's code works.
    clock.step(1)
    assert (await code_form(second, enrolled.code(clock))).headers["Location"] == "/home"


async def test_the_confirming_code_counts_as_used(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    await auth.sign_up()
    token = await auth.page_token()
    begun = await client.post(
        "/account/two-factor", form={"password": PASSWORD, "csrf_token": token}
    )
    secret = SECRET_ELEMENT.search(await begun.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    code = pyotp.TOTP(secret).at(clock.now)
    await client.post("/account/two-factor/confirm", form={"code": code, "csrf_token": token})
    browser, _ = await fresh_sign_in(app)
    assert (await code_form(browser, code)).status_code == 401


async def test_codes_in_a_next_page_survive_the_second_step(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    browser = app.test_client()
    token = await csrf_from(browser, "/?next=/sessions")
    await browser.post(
        "/", form={"email": "ada@example.com", "password": PASSWORD, "next": "/sessions",
                   "csrf_token": token},
    )  # fmt: skip
    done = await code_form(browser, enrolled.code(clock))
    assert done.headers["Location"] == "/sessions"


# -- recovery codes ------------------------------------------------------------------------


async def test_recovery_codes_work_once_and_ignore_case_spaces_and_dashes(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    code = enrolled.recovery_codes[0]
    typed = " " + code.lower().replace("-", " ") + " "
    browser, _ = await fresh_sign_in(app)
    done = await code_form(browser, typed)
    assert (done.status_code, done.headers["Location"]) == (
        303,
        "/account/two-factor?done=recovery_code",
    )
    page = await (await browser.get(done.headers["Location"])).get_data(as_text=True)
    assert "9 unused recovery codes left" in page
    sessions = await (await browser.get("/sessions", headers=JSON)).get_json()
    assert [s["signed_in_with"] for s in sessions["sessions"] if s["current"]] == ["recovery_code"]
    # Used up: refused the second time, in any spelling.
    again, _ = await fresh_sign_in(app)
    assert (await code_form(again, code)).status_code == 401
    assert (await code_form(again, code.replace("-", ""))).status_code == 401
    # JSON says how many are left.
    api = app.test_client()
    await api_sign_in(api)
    answer = await api_code(api, enrolled.recovery_codes[1])
    assert (await answer.get_json())["recovery_codes_left"] == 8


async def test_new_recovery_codes_void_the_old_set(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    token = await auth.page_token()
    wrong = await client.post(
        "/account/two-factor/recovery-codes",
        form={"password": "wrong password", "csrf_token": token},
    )
    assert wrong.status_code == 403
    # The password, or a current code from the app.
    made = await client.post(
        "/account/two-factor/recovery-codes",
        form={"password": enrolled.code(clock), "csrf_token": token},
    )
    assert made.status_code == 200
    new = RECOVERY_ELEMENT.findall(await made.get_data(as_text=True))
    assert len(new) == 10
    assert not set(new) & set(enrolled.recovery_codes)
    browser, _ = await fresh_sign_in(app)
    assert (await code_form(browser, enrolled.recovery_codes[0])).status_code == 401
    assert (await code_form(browser, new[0])).headers["Location"].startswith("/account/two-factor")


async def test_recovery_codes_download_as_a_text_file(
    client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    answer = await auth.post(
        "/account/two-factor/recovery-codes/download", {"codes": " ".join(enrolled.recovery_codes)}
    )
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    text = await answer.get_data(as_text=True)
    assert all(code in text for code in enrolled.recovery_codes)
    # Only recovery codes: nothing else is echoed into a file.
    for junk in ("<script>", "A" * 30, " ".join(enrolled.recovery_codes * 2), ""):
        refused = await auth.post("/account/two-factor/recovery-codes/download", {"codes": junk})
        assert refused.status_code == 422, junk


# -- the pending step: its end, its cookie, its throttle ------------------------------------


async def test_five_wrong_codes_end_the_pending_step(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    browser, _ = await fresh_sign_in(app)
    for _ in range(4):
        wrong = await code_form(browser, "000000")
        assert wrong.status_code == 401
        assert "not right" in await wrong.get_data(as_text=True)
    fifth = await code_form(browser, "000000")
    assert (fifth.status_code, fifth.headers["Location"]) == (303, "/?two_factor=ended")
    # Now even the right code does not help: back to the password.
    late = await code_form(browser, enrolled.code(clock))
    assert late.headers["Location"] == "/?two_factor=ended"
    assert not await signed_in(browser)
    page = await browser.get("/signin/two-factor")
    assert page.headers["Location"] == "/?two_factor=ended"
    notice = await (await browser.get("/?two_factor=ended")).get_data(as_text=True)
    assert "Sign in again with your password" in notice
    # A new password step begins a new pending step.
    await Auth(browser).sign_in()
    assert (await code_form(browser, enrolled.code(clock))).headers["Location"] == "/home"


async def test_wrong_codes_count_in_the_accounts_sign_in_throttle(
    make_app: Callable[..., Any], clock: Clock
) -> None:
    app = await make_app(THROTTLE_SIGN_IN_PER_ACCOUNT_IP=[4, 900])
    client = app.test_client()
    auth = Auth(client)
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    # One wrong password, then the right one (given back), then wrong codes: the fourth
    # attempt on the account from this client is the last the rule allows.
    assert (await Auth(app.test_client()).sign_in(password="wrong password")).status_code == 401
    browser, _ = await fresh_sign_in(app)
    assert (await code_form(browser, "000000")).status_code == 401
    assert (await code_form(browser, "111111")).status_code == 401
    assert (await code_form(browser, "222222")).status_code == 401
    throttled = await code_form(browser, enrolled.code(clock))
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    # A new password step does not start the count again: the password itself is refused.
    again = await Auth(app.test_client()).sign_in()
    assert again.status_code == 429


async def test_the_pending_step_is_bound_to_its_own_cookie(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    browser, _ = await fresh_sign_in(app)
    assert pending_cookie(browser)
    # Another browser (same address, same email typed nowhere) has no pending step.
    stranger = app.test_client()
    refused = await code_form(stranger, enrolled.code(clock))
    assert refused.headers["Location"] == "/?two_factor=ended"
    json_refused = await api_code(app.test_client(), enrolled.code(clock))
    assert json_refused.status_code == 401
    assert (await json_refused.get_json())["code"] == "two_factor_ended"
    # A made-up cookie is no better.
    forged = app.test_client()
    forged.set_cookie("localhost", PENDING_COOKIE, "x" * 43)
    assert (await code_form(forged, enrolled.code(clock))).headers[
        "Location"
    ] == "/?two_factor=ended"
    forged.set_cookie("localhost", PENDING_COOKIE, "x" * 4000)
    assert (await forged.get("/signin/two-factor")).status_code in (303, 431)


async def test_an_expired_pending_step_sends_the_browser_back_to_the_password(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock, redis: Redis, redis_prefix: str
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    browser, _ = await fresh_sign_in(app)
    keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}signin2:*")]
    assert len(keys) == 1
    ttl = await redis.ttl(keys[0])
    assert 0 < ttl <= 300
    # What Redis holds names no token: the key is a hash of it.
    assert pending_cookie(browser) not in keys[0]
    await redis.delete(keys[0])  # as its TTL would
    late = await code_form(browser, enrolled.code(clock))
    assert late.headers["Location"] == "/?two_factor=ended"
    htmx_late = await browser.post(
        "/api/v1/signin/two-factor",
        form={"code": enrolled.code(clock), "csrf_token": await csrf_from(browser, "/")},
        headers=HTMX,
    )
    assert htmx_late.headers["HX-Redirect"] == "/?two_factor=ended"
    assert not await signed_in(browser)


async def test_a_password_change_meanwhile_ends_the_pending_step(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    browser, _ = await fresh_sign_in(app)
    changed = await auth.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 303
    late = await code_form(browser, enrolled.code(clock))
    assert late.headers["Location"] == "/?two_factor=ended"
    assert not await signed_in(browser)


@pytest.mark.parametrize(
    "code",
    ["", "   ", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 56 78", "x" * 100, "\u0000" * 6],
)
async def test_garbage_codes_are_a_clean_4xx(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock, code: str
) -> None:
    await signed_up_and_enrolled(client, auth, clock)
    browser, _ = await fresh_sign_in(app)
    answer = await code_form(browser, code)
    assert answer.status_code in (401, 422)
    api, _ = await fresh_sign_in(app)
    assert (await api_code(api, code)).status_code in (401, 422)


async def test_bad_bodies_are_a_clean_4xx(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    await signed_up_and_enrolled(client, auth, clock)
    api, _ = await fresh_sign_in(app)
    for value in (123456, None, ["123456"], {"a": 1}):
        assert (await api_code(api, value)).status_code == 422
    assert (await api_code(api, "1" * 101)).status_code == 422
    token = (await (await api.get("/api/v1/csrf")).get_json())["csrf_token"]
    huge = await api.post(
        "/api/v1/signin/two-factor",
        data="{" + '"code": "' + "1" * 20000 + '"}',
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    no_csrf = await api.post("/api/v1/signin/two-factor", json={"code": "123456"})
    assert no_csrf.status_code == 403
    text = await api.post(
        "/api/v1/signin/two-factor",
        data="code=1",
        headers={"X-CSRF-Token": token, "Content-Type": "text/plain"},
    )
    assert text.status_code == 415


# -- no way around it ---------------------------------------------------------------------


async def test_a_password_change_does_not_turn_it_off(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    await signed_up_and_enrolled(client, auth, clock)
    new_password = "a brand new passphrase"
    await auth.post(
        "/account/password", {"current_password": PASSWORD, "new_password": new_password}
    )
    answer = await Auth(app.test_client()).sign_in(password=new_password)
    assert answer.headers["Location"] == "/signin/two-factor"
    api = app.test_client()
    token = (await (await api.get("/api/v1/csrf")).get_json())["csrf_token"]
    first = await api.post(
        "/api/v1/signin",
        json={"email": "ada@example.com", "password": new_password},
        headers={"X-CSRF-Token": token},
    )
    assert await first.get_json() == {"two_factor_required": True}
    assert session_cookie(api) is None


async def test_the_password_and_delete_pages_take_a_current_code(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    wrong = await auth.post(
        "/account/password",
        {"current_password": "000000", "new_password": "a brand new passphrase"},
        headers=JSON,
    )
    assert wrong.status_code == 403
    assert (await wrong.get_json())["code"] == "wrong_code"
    changed = await auth.post(
        "/account/password",
        {"current_password": enrolled.code(clock), "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 303
    # The same code cannot be used again, here either.
    replay = await auth.post("/account/delete", {"password": enrolled.code(clock)}, headers=JSON)
    assert replay.status_code == 403
    clock.step(1)
    deleted = await auth.post("/account/delete", {"password": enrolled.code(clock)})
    assert deleted.status_code == 303
    assert await User.get_or_none(email="ada@example.com") is None
    assert await RecoveryCode.all().count() == 0


async def test_without_a_second_factor_a_code_is_no_password(
    client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up()
    answer = await auth.post("/account/delete", {"password": "123456"}, headers=JSON)
    assert answer.status_code == 403
    assert (await answer.get_json())["code"] == "wrong_password"


# -- turning it off -------------------------------------------------------------------------


async def test_turning_it_off_needs_the_password_and_a_code(
    app: Quart, client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    no_code = await auth.post("/account/two-factor/off", {"password": PASSWORD, "code": "000000"})
    assert no_code.status_code == 403
    assert 'id="turn-off-code-error"' in await no_code.get_data(as_text=True)
    # A code in the password's place is not the password.
    two_codes = await auth.post(
        "/account/two-factor/off",
        {"password": enrolled.code(clock), "code": enrolled.recovery_codes[0]},
        headers=JSON,
    )
    assert two_codes.status_code == 403
    assert (await two_codes.get_json())["code"] == "wrong_password"
    off = await auth.post(
        "/account/two-factor/off", {"password": PASSWORD, "code": enrolled.recovery_codes[0]}
    )
    assert (off.status_code, off.headers["Location"]) == (303, "/account/two-factor?done=off")
    page = await (await client.get("/account/two-factor?done=off")).get_data(as_text=True)
    assert "The second factor is off" in page
    user = await User.get(email="ada@example.com")
    assert (user.two_factor_enabled, user.totp_secret, user.totp_last_step) == (False, None, None)
    assert await RecoveryCode.filter(user_id=user.id).count() == 0
    answer = await Auth(app.test_client()).sign_in()
    assert answer.headers["Location"] == "/home"
    # Turning it off again is a 409.
    again = await auth.post(
        "/account/two-factor/off", {"password": PASSWORD, "code": "123456"}, headers=JSON
    )
    assert again.status_code == 409


# -- the secret at rest ---------------------------------------------------------------------


def test_a_sealed_secret_opens_under_fallback_keys_and_only_for_its_row() -> None:
    old = SecretBox("the old secret key, long enough to count")
    sealed = old.seal("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "totp:7")
    assert sealed.startswith("v1.")
    assert "JBSWY3DP" not in sealed
    assert old.open(sealed, "totp:7") == ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", False)
    rotated = SecretBox(
        "the new secret key, long enough too", ["the old secret key, long enough to count"]
    )
    assert rotated.open(sealed, "totp:7") == ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", True)
    with pytest.raises(Unreadable):
        rotated.open(sealed, "totp:8")  # copied to another account's row
    with pytest.raises(Unreadable):
        SecretBox("the new secret key, long enough too").open(sealed, "totp:7")
    for junk in ("", "v1.", "v1.!!!", "v2." + sealed[3:], sealed[:-4]):
        with pytest.raises(Unreadable):
            old.open(junk, "totp:7")
    # A fresh nonce each time.
    assert old.seal("x", "c") != old.seal("x", "c")


async def test_a_secret_key_rotation_keeps_the_factor_working(
    make_app: Callable[..., Any], clock: Clock
) -> None:
    first = await make_app(SECRET_KEY="the first secret key of this test, long")
    client = first.test_client()
    auth = Auth(client)
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    sealed_before = (await User.get(email="ada@example.com")).totp_secret
    rotated = await make_app(
        SECRET_KEY="the second secret key of this test, long",
        SECRET_KEY_FALLBACKS=["the first secret key of this test, long"],
    )
    browser, _ = await fresh_sign_in(rotated)
    assert (await code_form(browser, enrolled.code(clock))).headers["Location"] == "/home"
    # Sealed again under the current key on that use: the old key can go.
    sealed_after = (await User.get(email="ada@example.com")).totp_secret
    assert sealed_after != sealed_before
    clock.step(1)
    only_new = await make_app(SECRET_KEY="the second secret key of this test, long")
    browser, _ = await fresh_sign_in(only_new)
    assert (await code_form(browser, enrolled.code(clock))).headers["Location"] == "/home"


async def test_reseal_secrets_seals_every_secret_again_under_the_current_key(
    make_app: Callable[..., Any], clock: Clock, database: str, redis_prefix: str
) -> None:
    first_key = "the first secret key of this test, long enough"
    second_key = "the second secret key of this test, long enough"
    first = await make_app(SECRET_KEY=first_key)
    client = first.test_client()
    auth = Auth(client)
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    # The command, as an operator runs it after moving the old key into the fallbacks.
    env = app_environment(
        database,
        secret_key=second_key,
        redis_prefix=redis_prefix,
        settings={"SECRET_KEY_FALLBACKS": [first_key]},
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "quartapp", "reseal-secrets"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "sealed 1 second-factor secret(s) again" in done.stdout
    # The old key can go now.
    only_new = await make_app(SECRET_KEY=second_key)
    browser, _ = await fresh_sign_in(only_new)
    assert (await code_form(browser, enrolled.code(clock))).headers["Location"] == "/home"
    async with only_new.app_context():
        assert await two_factor.reseal_all() == (0, 0)
    # Under a key that opens nothing, the command says so and fails.
    lost = app_environment(
        database, secret_key="a secret key nobody ever used, long enough", redis_prefix=redis_prefix
    )
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "quartapp", "reseal-secrets"],
        env=lost,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "1 secret(s) open with no key" in refused.stderr


async def test_enrolment_with_htmx_swaps_the_part_and_keeps_the_page(
    client: QuartClient, auth: Auth, clock: Clock
) -> None:
    await auth.sign_up()
    token = await auth.page_token()
    begun = await client.post(
        "/account/two-factor", form={"password": PASSWORD, "csrf_token": token}, headers=HTMX
    )
    assert begun.status_code == 200
    fragment = await begun.get_data(as_text=True)
    assert "<html" not in fragment
    assert 'id="two-factor"' in fragment
    secret = SECRET_ELEMENT.search(fragment).group(1)  # type: ignore[union-attr]
    wrong = await client.post(
        "/account/two-factor/confirm", form={"code": "12", "csrf_token": token}, headers=HTMX
    )
    assert wrong.status_code == 403
    assert 'id="confirm-code-error"' in await wrong.get_data(as_text=True)
    confirmed = await client.post(
        "/account/two-factor/confirm",
        form={"code": pyotp.TOTP(secret).at(clock.now), "csrf_token": token},
        headers=HTMX,
    )
    body = await confirmed.get_data(as_text=True)
    assert "<html" not in body
    assert len(RECOVERY_ELEMENT.findall(body)) == 10
    # Turning it off by htmx lands on the settings page.
    clock.step(1)
    off = await client.post(
        "/account/two-factor/off",
        form={"password": PASSWORD, "code": pyotp.TOTP(secret).at(clock.now), "csrf_token": token},
        headers=HTMX,
    )
    assert off.headers["HX-Redirect"] == "/account/two-factor?done=off"


async def test_code_checks_while_signed_in_are_throttled_per_session(
    make_app: Callable[..., Any], clock: Clock
) -> None:
    app = await make_app(THROTTLE_PASSWORD_CHECK_PER_SESSION=[3, 900])
    client = app.test_client()
    auth = Auth(client)
    await auth.sign_up()
    await auth.post("/account/two-factor", {"password": PASSWORD})
    # The right password above was given back; three wrong codes fill the rule.
    for _ in range(3):
        wrong = await auth.post("/account/two-factor/confirm", {"code": "000000"})
        assert wrong.status_code == 403
    refused = await auth.post("/account/two-factor/confirm", {"code": "000000"}, headers=JSON)
    assert refused.status_code == 429
    assert (await refused.get_json())["code"] == "throttled"


async def test_over_https_the_pending_cookie_is_a_host_cookie(
    make_app: Callable[..., Any], clock: Clock
) -> None:
    app = await make_app(COOKIE_SECURE=True)
    client = app.test_client()
    token = (await (await client.get("/api/v1/csrf", scheme="https")).get_json())["csrf_token"]
    await client.post(
        "/api/v1/signup",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"X-CSRF-Token": token},
        scheme="https",
    )
    user = await User.get(email="ada@example.com")
    async with app.app_context():
        enrolment = await two_factor.begin_enrolment(user)
        user = await User.get(id=user.id)
        await two_factor.confirm_enrolment(user, pyotp.TOTP(enrolment.secret).at(clock.now))
    api = app.test_client()
    token = (await (await api.get("/api/v1/csrf", scheme="https")).get_json())["csrf_token"]
    first = await api.post(
        "/api/v1/signin",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"X-CSRF-Token": token},
        scheme="https",
    )
    assert await first.get_json() == {"two_factor_required": True}
    set_cookie = first.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-quartapp_signin2=")
    assert "Secure" in set_cookie
    assert "Path=/" in set_cookie
    assert "Domain" not in set_cookie
    clock.step(1)
    done = await api.post(
        "/api/v1/signin/two-factor",
        json={"code": pyotp.TOTP(enrolment.secret).at(clock.now)},
        headers={"X-CSRF-Token": token},
        scheme="https",
    )
    assert done.status_code == 200
    cleared = done.headers.get_all("Set-Cookie")
    assert any(cookie.startswith("__Host-quartapp_signin2=;") for cookie in cleared)


async def test_a_current_code_stands_for_the_password_before_adding_a_passkey(
    client: QuartClient, auth: Auth, clock: Clock
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    token = await auth.page_token()
    headers = {"X-CSRF-Token": token, **JSON}
    path = "/api/v1/passkeys/registration/options"
    wrong = "000000" if enrolled.code(clock) != "000000" else "111111"
    refused = await client.post(path, json={"current_password": wrong}, headers=headers)
    assert refused.status_code == 403
    assert (await refused.get_json())["code"] == "wrong_code"
    answer = await client.post(
        path, json={"current_password": enrolled.code(clock)}, headers=headers
    )
    assert answer.status_code == 200, await answer.get_json()
    assert (await answer.get_json())["public_key"]["challenge"]
    # The code counts as used: the same one again is refused.
    again = await client.post(
        path, json={"current_password": enrolled.code(clock)}, headers=headers
    )
    assert again.status_code == 403
    by_password = await client.post(path, json={"current_password": PASSWORD}, headers=headers)
    assert by_password.status_code == 200

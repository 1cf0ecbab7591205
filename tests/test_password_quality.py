"""Password quality: common and email-derived passwords are refused, and strength is
shown while the password is typed."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quart import Quart
from quart.testing import QuartClient

from quartapp.accounts import service
from quartapp.accounts.hashing import JUDGE_TIMEOUT
from quartapp.accounts.models import User
from quartapp.accounts.policy import (
    COMMON,
    FROM_EMAIL,
    MAX_EMAIL_WORDS,
    ZXCVBN_WORK,
    PasswordStrength,
    email_words,
    judge_password,
    judged_part,
    zxcvbn_work,
)

from .conftest import PASSWORD, Auth, csrf_from

HTMX = {"HX-Request": "true"}
STRONG = "tulip granite harbour kettle"
STRENGTH_PATH = "/api/v1/password-strength"


# -- the judgement ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "iloveyou", "12345678"])
def test_common_passwords_are_refused(password: str) -> None:
    strength = judge_password(password, "someone@example.com")
    assert not strength.acceptable
    assert strength.score < 3
    assert strength.message is not None


def test_the_most_common_passwords_say_so() -> None:
    assert judge_password("password123").message == COMMON
    assert judge_password("qwertyuiop").message == COMMON


@pytest.mark.parametrize("password", ["ada.lovelace2024", "lovelace2024!", "Lovelace1815"])
def test_passwords_built_from_the_email_are_refused(password: str) -> None:
    strength = judge_password(password, "ada.lovelace@example.com")
    assert strength.message == FROM_EMAIL


def test_the_same_password_is_fine_for_someone_else() -> None:
    assert judge_password("lovelace2024!", "grace@example.com").acceptable


@pytest.mark.parametrize("password", [STRONG, PASSWORD, "a brand new passphrase"])
def test_a_passphrase_is_accepted(password: str) -> None:
    strength = judge_password(password, "ada.lovelace@example.com")
    assert strength.acceptable
    assert strength.message is None
    assert strength.score >= 3


def test_no_composition_rules() -> None:
    """Only letters and spaces, no digits or capitals: fine when long and uncommon."""
    assert judge_password("plum orchard seventeen ladders").acceptable


def test_length_limits_come_first() -> None:
    assert judge_password("short").message == "Use at least 8 characters."
    too_long = judge_password("é" * 37)  # 37 characters, 74 bytes
    assert too_long.message is not None
    assert too_long.message.startswith("Use a shorter password: at most 72 characters")


def test_email_words() -> None:
    assert email_words(" Ada.Lovelace@Example.com ") == [
        "ada.lovelace@example.com",
        "ada.lovelace",
        "ada",
        "lovelace",
    ]
    assert email_words("not an email") == ["not an email", "not", "email"]
    assert email_words("") == []


# -- sign-up and password change ----------------------------------------------------------------


async def test_sign_up_with_a_common_password_is_refused(client: QuartClient, auth: Auth) -> None:
    response = await auth.sign_up(password="password123")
    assert response.status_code == 422
    html = await response.get_data(as_text=True)
    assert f'<small id="password-error" class="field-error">{COMMON}</small>' in html
    assert "password123" not in html
    assert await User.all().count() == 0


async def test_sign_up_with_an_email_derived_password_as_json(client: QuartClient) -> None:
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await client.post(
        "/api/v1/signup",
        json={"email": "ada.lovelace@example.com", "password": "ada.lovelace2024"},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 422
    assert (await response.get_json())["fields"] == {"password": FROM_EMAIL}
    assert await User.all().count() == 0


async def test_sign_up_with_htmx_and_a_weak_password(auth: Auth) -> None:
    response = await auth.sign_up(password="qwertyuiop", **HTMX)
    assert response.status_code == 422
    html = await response.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="sign-up-form"')
    assert COMMON in html
    assert await User.all().count() == 0


async def test_a_new_password_is_judged_with_the_account_email(auth: Auth) -> None:
    await auth.sign_up("ada.lovelace@example.com")
    response = await auth.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": "ada.lovelace2024"},
        headers=HTMX,
    )
    assert response.status_code == 422
    html = await response.get_data(as_text=True)
    assert f'<small id="new_password-error" class="field-error">{FROM_EMAIL}</small>' in html
    # The old password still opens the account.
    await auth.post("/logout")
    assert (await auth.sign_in("ada.lovelace@example.com")).status_code == 303


# -- the live strength route --------------------------------------------------------------------


async def test_forms_ask_for_strength_while_typing(client: QuartClient, auth: Auth) -> None:
    html = await (await client.get("/register")).get_data(as_text=True)
    assert f'hx-post="{STRENGTH_PATH}"' in html
    assert 'hx-trigger="input changed delay:400ms"' in html
    assert 'hx-target="#password-strength"' in html
    assert 'hx-include="#email"' in html
    assert 'hx-params="email,password"' in html
    assert 'aria-describedby="password-hint password-strength"' in html
    assert '<small id="password-strength" class="password-strength" aria-live="polite">' in html

    await auth.sign_up()
    html = await (await client.get("/account/password")).get_data(as_text=True)
    # Only the new password is sent: never the current one.
    assert 'hx-params="new_password"' in html
    assert 'hx-target="#new_password-strength"' in html
    assert 'aria-describedby="new_password-hint new_password-strength"' in html


async def test_strength_for_htmx(client: QuartClient) -> None:
    token = await csrf_from(client, "/register")
    response = await client.post(
        STRENGTH_PATH,
        form={"email": "ada.lovelace@example.com", "password": "ada.lovelace2024"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert "Strength: weak &mdash; Avoid passwords built from your email address." in html
    assert 'class="strength-weak"' in html
    assert "lovelace2024" not in html

    response = await client.post(
        STRENGTH_PATH,
        form={"email": "ada@example.com", "password": STRONG},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    html = await response.get_data(as_text=True)
    assert "Strength: very strong" in html
    assert "&mdash;" not in html  # no message after the label
    assert STRONG not in html

    empty = await client.post(
        STRENGTH_PATH, form={"password": ""}, headers={**HTMX, "X-CSRF-Token": token}
    )
    assert empty.status_code == 200
    assert (await empty.get_data(as_text=True)).strip() == ""


async def test_strength_as_json(client: QuartClient) -> None:
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    headers = {"X-CSRF-Token": token}
    weak = await client.post(STRENGTH_PATH, json={"password": "password123"}, headers=headers)
    assert await weak.get_json() == {"score": 0, "acceptable": False, "message": COMMON}
    strong = await client.post(STRENGTH_PATH, json={"password": STRONG}, headers=headers)
    assert await strong.get_json() == {"score": 4, "acceptable": True, "message": None}
    short = await client.post(STRENGTH_PATH, json={"password": "abc"}, headers=headers)
    assert (await short.get_json())["message"] == "Use at least 8 characters."
    missing = await client.post(STRENGTH_PATH, json={}, headers=headers)
    assert missing.status_code == 422
    assert (await missing.get_json())["fields"] == {"password": "Enter a password."}


async def test_strength_for_a_signed_in_user_uses_the_account_email(
    client: QuartClient, auth: Auth
) -> None:
    await auth.sign_up("ada.lovelace@example.com")
    token = await auth.page_token()
    response = await client.post(
        STRENGTH_PATH,
        form={"new_password": "lovelace2024!", "email": "someone@example.com"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert FROM_EMAIL in await response.get_data(as_text=True)


async def test_strength_needs_a_csrf_token(client: QuartClient) -> None:
    await client.get("/register")
    response = await client.post(STRENGTH_PATH, form={"password": "password123"}, headers=HTMX)
    assert response.status_code == 403
    as_json = await client.post(STRENGTH_PATH, json={"password": "password123"})
    assert as_json.status_code == 403


# -- bounded work -------------------------------------------------------------------------------

# Its 21 symbols each read as a letter in one or more ways; zxcvbn took 4.6 s over it whole.
SLOW_TO_SCORE = "4@8({[<3691!|70$5+7%24@8({[<3691!|70$5+7%24@8({[<3691!|70$5+7%24@8({[<36"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="4@8({[<3691!|70$5+7%2abcilost", min_size=1, max_size=72))
def test_zxcvbn_is_shown_a_part_of_bounded_work(password: str) -> None:
    part = judged_part(password)
    assert password.startswith(part)
    assert len(part) >= min(len(password), 8)
    assert len(part) <= 8 or zxcvbn_work(part) <= ZXCVBN_WORK


def test_ordinary_passwords_and_passphrases_are_judged_whole() -> None:
    for password in (STRONG, "correct horse battery staple and then some more words", "x" * 64):
        assert judged_part(password) == password


def test_the_email_gives_a_bounded_number_of_words() -> None:
    email = ".".join(f"word{n:03d}" for n in range(60)) + "@example.com"
    words = email_words(email)
    assert len(words) <= MAX_EMAIL_WORDS
    assert all(len(word) <= 64 for word in words)


async def test_slow_to_score_passwords_do_not_hold_up_other_requests(
    app: Quart, client: QuartClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passwords are judged in a thread of their own, never on the event loop: while four
    judgements are under way (the first held in the judging thread until the probes are
    done, the others waiting behind it), five probes answer. On the event loop, the held
    judgement would hold every request until it let go: the judgements would come first."""
    gate, started = threading.Event(), threading.Event()
    happened: list[str] = []
    real = service.judge_password

    def held(password: str, email: str) -> PasswordStrength:
        started.set()
        # Bounded, so that a judgement on the event loop lets go and the test fails.
        gate.wait(JUDGE_TIMEOUT - 1)
        happened.append("judged")
        return real(password, email)

    monkeypatch.setattr(service, "judge_password", held)
    token = await csrf_from(client, "/register")
    headers = {"X-CSRF-Token": token, "Accept": "application/json"}

    async def judge(n: int) -> int:
        body = {"email": f"user{n}@example.com", "password": SLOW_TO_SCORE[n:] + SLOW_TO_SCORE[:n]}
        response = await client.post(STRENGTH_PATH, json=body, headers=headers)
        return response.status_code

    judging = asyncio.ensure_future(asyncio.gather(*(judge(n) for n in range(4))))
    assert await asyncio.to_thread(started.wait, 30)
    for _ in range(5):
        assert (await client.get("/healthz")).status_code == 200
        happened.append("probe")
    assert not judging.done()
    gate.set()
    assert await judging == [200, 200, 200, 200]
    assert happened == ["probe"] * 5 + ["judged"] * 4

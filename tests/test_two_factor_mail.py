"""The second factor and mail: each change to it, and each recovery code used, mails the
owner a notice (through the mail queue, as every notice); a password reset by mail does not
get around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from .conftest import Auth, csrf_from
from .support.mail_servers import MailCatcher, link_in, text_of, to
from .support.processes import Process
from .test_two_factor import Clock, code_form, fresh_sign_in, signed_up_and_enrolled

NEW_PASSWORD = "a brand new passphrase"
__all__ = ["Clock"]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from quartapp.accounts import two_factor

    moment = Clock()
    monkeypatch.setattr(two_factor, "now", lambda: moment.now)
    return moment


@pytest.fixture
async def app(make_app: Callable[..., Any], catcher: MailCatcher) -> Quart:
    application: Quart = await make_app(MAIL_URL=catcher.url)
    return application


async def test_each_change_and_each_recovery_code_used_mails_a_notice(
    app: Quart,
    client: QuartClient,
    auth: Auth,
    clock: Clock,
    catcher: MailCatcher,
    worker: Process,
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    (on,) = catcher.wait_for(to("ada@example.com", "second factor now protects"))
    assert "/account/two-factor" in text_of(on)
    assert enrolled.secret not in text_of(on)

    browser, _ = await fresh_sign_in(app)
    await code_form(browser, enrolled.recovery_codes[0])
    (used,) = catcher.wait_for(to("ada@example.com", "recovery code was used"))
    assert "9 unused recovery codes left" in text_of(used)
    assert enrolled.recovery_codes[0] not in text_of(used)

    await auth.post("/account/two-factor/recovery-codes", {"password": enrolled.code(clock)})
    catcher.wait_for(to("ada@example.com", "New recovery codes"))

    clock.step(1)
    await auth.post(
        "/account/two-factor/off",
        {"password": "correct horse battery", "code": enrolled.code(clock)},
    )
    catcher.wait_for(to("ada@example.com", "was turned off"))


async def test_a_password_reset_does_not_get_around_it(
    app: Quart,
    client: QuartClient,
    auth: Auth,
    clock: Clock,
    catcher: MailCatcher,
    worker: Process,
) -> None:
    enrolled = await signed_up_and_enrolled(client, auth, clock)
    stranger = app.test_client()
    token = await csrf_from(stranger, "/password/forgot")
    await stranger.post("/password/forgot", form={"email": "ada@example.com", "csrf_token": token})
    (mail,) = catcher.wait_for(to("ada@example.com", "Reset"))
    path = link_in(mail, "/password/reset/")
    token = await csrf_from(stranger, "/password/forgot")
    done = await stranger.post(path, form={"new_password": NEW_PASSWORD, "csrf_token": token})
    assert done.headers["Location"] == "/?reset=1"
    # The new password is only the first step, for browsers and JSON clients alike.
    answer = await Auth(stranger).sign_in(password=NEW_PASSWORD)
    assert answer.headers["Location"] == "/signin/two-factor"
    assert (await stranger.get("/home")).status_code == 303
    api = app.test_client()
    token = (await (await api.get("/api/v1/csrf")).get_json())["csrf_token"]
    first = await api.post(
        "/api/v1/signin",
        json={"email": "ada@example.com", "password": NEW_PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert await first.get_json() == {"two_factor_required": True}
    assert (
        await api.get("/api/v1/account", headers={"Accept": "application/json"})
    ).status_code == 401
    done = await code_form(stranger, enrolled.code(clock))
    assert done.headers["Location"] == "/home"

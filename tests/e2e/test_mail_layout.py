"""Every HTML mail, as the app's own mail code composes it (``mail.messages.compose``),
opened in Chromium on a phone's width: no sideways scroll at 320 and 390 px, and text,
links and buttons at 4.5:1 or better (axe's color-contrast) in the light and the dark
scheme."""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from quartapp import create_app
from quartapp.mail.messages import compose, mail_time

from ..conftest import test_config as app_settings
from ..support.mail_servers import html_of, text_of
from ..support.settings import PUBLIC_URL
from .conftest import ROOT
from .pages import axe_source, describe

pytestmark = pytest.mark.e2e

WIDTHS = (320, 390)
SCHEMES = ("light", "dark")
TOKEN = "Zq3xW9vB2nL7kP0sR5tY8uA1cD4eF6gH9jK2mN5pQ7r"  # a token's length: 43 characters
# What a notice carries: a long device name and an IPv6 address, the widest they get.
NOTICE = {
    "device": "Chrome 131 on Windows",
    "ip": "2001:db8:85a3:1234:5678:8a2e:370:7334",
    "when": mail_time(),
    "sessions_link": f"{PUBLIC_URL}/sessions",
    "passkeys_link": f"{PUBLIC_URL}/account/passkeys",
    "forgot_link": f"{PUBLIC_URL}/password/forgot",
}
# Each mail the app sends (mailings.JOBS), with the context its job gives it.
MAILS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "verify": (
        "verify_email",
        "Confirm your email address for quartapp",
        {"link": f"{PUBLIC_URL}/email/verify/{TOKEN}", "valid_for": "2 days"},
    ),
    "reset": (
        "password_reset",
        "Reset your quartapp password",
        {"link": f"{PUBLIC_URL}/password/reset/{TOKEN}", "valid_for": "1 hour"},
    ),
    "change": (
        "email_change",
        "Confirm your new email address for quartapp",
        {"link": f"{PUBLIC_URL}/email/change/{TOKEN}", "valid_for": "1 hour"},
    ),
    "changed, with undo": (
        "email_changed",
        "Your quartapp email address was changed",
        {
            **NOTICE,
            "new_email": "a.rather.long.new.address.for.someone@subdomain.example.com",
            "undo_link": f"{PUBLIC_URL}/email/undo/{TOKEN}",
            "undo_for": "7 days",
        },
    ),
    "changed, unverified": (
        "email_changed",
        "Your quartapp email address was changed",
        {**NOTICE, "new_email": "", "undo_link": "", "undo_for": ""},
    ),
    "password changed": (
        "password_changed",
        "Your quartapp password was changed",
        {**NOTICE, "how": "change"},
    ),
    "password reset": (
        "password_changed",
        "Your quartapp password was reset",
        {**NOTICE, "how": "reset"},
    ),
    "new device": ("new_device", "New sign-in to your quartapp account", NOTICE),
    "passkey added": (
        "passkey_changed",
        "A passkey was added to your account",
        {**NOTICE, "added": True, "passkey": "MacBook Pro Touch ID, the one on the desk"},
    ),
    "passkey removed": (
        "passkey_changed",
        "A passkey was removed from your account",
        {**NOTICE, "added": False, "passkey": "YubiKey 5C"},
    ),
    "second factor on": (
        "two_factor",
        "A second factor now protects your quartapp account",
        {**NOTICE, "what": "on", "left": None, "account_link": f"{PUBLIC_URL}/account/two-factor"},
    ),
    "recovery code used": (
        "two_factor",
        "A recovery code was used to sign in to your quartapp account",
        {
            **NOTICE,
            "what": "recovery_code_used",
            "left": 1,
            "account_link": f"{PUBLIC_URL}/account/two-factor",
        },
    ),
}
# Phrasing that was read again and replaced.
RETIRED = ("we hope you", "was signed in to from", "Every session of it")
CONTRAST = """async () => {
  const results = await axe.run(document, {
    resultTypes: ["violations"], runOnly: {type: "rule", values: ["color-contrast"]},
  });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target, html: n.html, summary: n.failureSummary})),
  }));
}"""
SCROLL = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
})"""


async def _compose_all() -> dict[str, Message]:
    app = create_app(app_settings("mysql://unused/none", "quartapp-test:mails:"))
    mails = {}
    async with app.app_context():
        for what, (name, subject, context) in MAILS.items():
            message = await compose(name, "ada@example.com", subject, **context)
            mails[what] = email.message_from_bytes(message.as_bytes())
    return mails


@pytest.fixture(scope="module")
def mails() -> dict[str, Message]:
    """The mails, composed in a thread of their own: Playwright's loop holds this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _compose_all()).result()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 800})
    yield context.new_page()
    context.close()


def test_every_mail_the_app_sends_is_checked() -> None:
    names = {path.stem for path in (ROOT / "templates" / "mail").glob("[!_]*.html")}
    assert names - {"base"} == {name for name, _, _ in MAILS.values()}


@pytest.mark.parametrize("what", list(MAILS))
def test_a_mail_fits_a_phone_and_reads_in_both_schemes(
    phone: Page, mails: dict[str, Message], what: str
) -> None:
    html = html_of(mails[what])
    phone.set_content(html)
    phone.evaluate(axe_source())
    for width in WIDTHS:
        phone.set_viewport_size({"width": width, "height": 800})
        for scheme in SCHEMES:
            phone.emulate_media(color_scheme=scheme)
            size = phone.evaluate(SCROLL)
            assert size["scrollWidth"] <= size["clientWidth"], (what, width, scheme, size)
            violations = phone.evaluate(CONTRAST)
            assert not violations, f"{what} at {width} px ({scheme}):\n{describe(violations)}"


def test_times_give_their_zone_and_the_copy_reads_well(mails: dict[str, Message]) -> None:
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC", NOTICE["when"])
    for what in ("password changed", "new device", "changed, with undo"):
        assert f"When:   {NOTICE['when']}" in text_of(mails[what])
    for what, mail in mails.items():
        words = " ".join((text_of(mail) + html_of(mail)).split())
        for retired in RETIRED:
            assert retired not in words, (what, retired)

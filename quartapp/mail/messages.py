"""A mail from its templates: ``templates/mail/<name>.txt`` and ``<name>.html`` (the HTML
part has the product's look with inline styles and no remote images; it is as wide as the
screen up to 560 px, so a phone never scrolls sideways, every colour pair reads at 4.5:1 or
better, and mail apps that honour a style sheet get a dark scheme of the same contrast;
tests/e2e/test_mail_layout.py checks each). Times in mails name their zone (``mail_time``).

Mail goes out as plain (7-bit headers) SMTP, which every server takes: an address with a
non-ASCII local part (``jürgen@...``) needs the server's SMTPUTF8 extension and cannot be
sent this way, so forms refuse it (``address_problem``); an international domain is sent
in its ASCII (IDNA) form."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from email_validator import EmailNotValidError, validate_email
from quart import current_app

NOT_MAILABLE = (
    "We cannot send mail to an address with letters outside English before the @. "
    "Use another address."
)


def mail_time(moment: datetime | None = None) -> str:
    """A moment as mails give it, in UTC and saying so: "7 December 2026, 14:05 UTC" (now
    when not given). A mail is read anywhere, later, so the zone is always named."""
    moment = (moment or datetime.now(tz=UTC)).astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


class Uncomposable(ValueError):
    """A mail that cannot be made (its address cannot be written in plain SMTP): sending it
    again would fail the same way, so it is dropped, never retried."""


def ascii_address(email: str) -> str | None:
    """``email`` as plain SMTP writes it (the domain in its IDNA form), or None when it
    cannot be written so (a non-ASCII local part, or not an address)."""
    try:
        valid = validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return None
    return valid.ascii_email or None


def address_problem(email: str) -> str | None:
    """Why mail cannot be sent to a valid ``email`` (a message for the form), or None."""
    return NOT_MAILABLE if ascii_address(email) is None else None


async def compose(name: str, to: str, subject: str, **context: Any) -> EmailMessage:
    """The message; raises Uncomposable when ``to`` cannot be written in plain SMTP."""
    config = current_app.config
    env = current_app.jinja_env
    recipient = ascii_address(to)
    if recipient is None:
        raise Uncomposable("the recipient's address cannot be written in plain SMTP")
    context = {"public_url": config["PUBLIC_URL"], "subject": subject, **context}
    text = await env.get_template(f"mail/{name}.txt").render_async(**context)
    html = await env.get_template(f"mail/{name}.html").render_async(**context)
    message = EmailMessage()
    try:
        message["From"] = str(config["MAIL_FROM"])
        message["To"] = str(Address(addr_spec=recipient))
        message["Subject"] = subject
    except ValueError as error:  # the email package's header defects are ValueErrors
        raise Uncomposable(str(error)) from error
    sender_domain = str(config["MAIL_FROM"]).rpartition("@")[2].rstrip(">").strip()
    message["Message-ID"] = make_msgid(domain=sender_domain or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message

"""Sending one message over SMTP with aiosmtplib; only workers call this."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib

from quartapp.engine.saq_queue import MailQueue
from quartapp.mail.settings import MailServer

log = logging.getLogger(__name__)


class MailNotSent(Exception):
    """The SMTP server did not take the message (yet): the job is tried again later."""


async def deliver(server: MailServer, message: EmailMessage, limit: float) -> None:
    """Hand ``message`` to the SMTP server; returns once the server accepted it."""
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.security == "tls",
            start_tls=server.security == "starttls",
            timeout=limit,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise MailNotSent(f"{type(error).__name__}: {error}") from error


async def send_once(
    queue: MailQueue,
    job_key: str,
    compose: Callable[[], Awaitable[EmailMessage | None]],
    send: Callable[[EmailMessage], Awaitable[None]],
    *,
    hold_for: int,
) -> bool:
    """Send the mail of job ``job_key`` unless the SMTP server already acknowledged it.

    ``compose`` builds the message (None: nothing to send, such as a reset asked for an
    address without an account). A job re-run after its worker died finds the "sent" key
    and stops; two workers never talk to SMTP about one job at once (the "sending" key,
    held for ``hold_for`` seconds at most). Returns whether a mail went out now."""
    redis = queue.redis
    sent, sending = queue.sent_key(job_key), queue.sending_key(job_key)
    if await redis.exists(sent):
        log.info("mail job %s was sent already", job_key)
        return False
    if not await redis.set(sending, "1", nx=True, ex=hold_for):
        raise MailNotSent("another worker is sending this mail")
    try:
        message = await compose()
        if message is None:
            await redis.set(sent, "0", ex=hold_for * 10)
            return False
        await send(message)
        # Acknowledged: from here on this job never sends again.
        await redis.set(sent, "1", ex=24 * 60 * 60)
        return True
    finally:
        await redis.delete(sending)

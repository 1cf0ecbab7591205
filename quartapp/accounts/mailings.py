"""The mails an account gets, as jobs the mail worker runs (``python -m quartapp
mail-worker``): each looks up what it needs when it runs, composes the mail from its
templates and sends it once (``mail.smtp.send_once``). Links are built on ``PUBLIC_URL``,
never on a request's Host header. A link is made when it is asked for (``mail_tokens``):
the job carries its id, the worker makes its token again, and sends nothing if the link has
died meanwhile; every try sends the same link. No raw token is stored anywhere, the queue
included."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

from quart import current_app

from quartapp.accounts import email_change, recovery, verification
from quartapp.accounts.mail_tokens import LinkDead, LinkGrant, Purpose, get_mail_tokens
from quartapp.accounts.queries import find_user_by_id
from quartapp.accounts.throttle import Reservation, get_throttle
from quartapp.mail.messages import Uncomposable, compose, mail_time
from quartapp.mail.settings import parse_mail_url
from quartapp.mail.smtp import deliver, send_once

log = logging.getLogger(__name__)

Context = dict[str, Any]


async def _send(ctx: Context, build: Callable[[], Awaitable[EmailMessage | None]]) -> str:
    config = current_app.config
    server = parse_mail_url(config["MAIL_URL"])
    timeout = float(config["MAIL_TIMEOUT"])
    job = ctx["job"]
    throttle = get_throttle()
    reserved: list[Reservation] = []

    async def within_bound() -> EmailMessage | None:
        """The message, unless it cannot be composed or its recipient has had
        ``mail_per_recipient`` mails lately (of any kind): then it is dropped, not tried
        again (it would fail the same way)."""
        try:
            message = await build()
        except Uncomposable as error:
            log.warning("mail job %s dropped: %s", job.key, error)
            return None
        if message is None:
            return None
        reservation = await throttle.reserve_mail(str(message["To"]))
        if not reservation.allowed:
            log.warning("mail job %s dropped: its recipient had too many mails lately", job.key)
            return None
        reserved.append(reservation)
        return message

    async def send(message: EmailMessage) -> None:
        try:
            await deliver(server, message, timeout)
        except BaseException:
            for reservation in reserved:  # not sent: it counts against nobody
                await throttle.release(reservation)
            raise

    sent = await send_once(ctx["worker"].queue, job.key, within_bound, send, hold_for=job.timeout)
    return "sent" if sent else "nothing to send"


def _link(path: str) -> str:
    return f"{current_app.config['PUBLIC_URL']}{path}"


def duration_in_words(seconds: int) -> str:
    """A link's lifetime as mails and pages say it: "45 minutes", "1 hour", "7 days"."""
    minutes = max(1, seconds // 60)
    if minutes >= 2 * 24 * 60:
        return f"{round(minutes / (24 * 60))} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


async def _link_mail(
    purpose: Purpose,
    link_id: str,
    still_wanted: Callable[[LinkGrant], Awaitable[bool]],
    path: str,
    template: str,
    subject: str,
) -> EmailMessage | None:
    """The mail of link ``link_id`` (made when it was asked for) to the address it is for,
    as ``PUBLIC_URL + path + token``; None when the link is dead or no longer
    ``still_wanted`` (a password changed meanwhile, say): a dead link is never sent."""
    found = await get_mail_tokens().to_send(purpose, link_id)
    if found is None:
        return None
    token, grant, seconds_left = found
    if not await still_wanted(grant):
        return None
    return await compose(
        template,
        grant.email,
        subject,
        link=_link(f"{path}{token}"),
        valid_for=duration_in_words(seconds_left),
    )


async def _alive(check: Callable[[LinkGrant], Awaitable[object]], grant: LinkGrant) -> bool:
    try:
        await check(grant)
    except LinkDead:
        return False
    return True


async def password_reset_mail(ctx: Context, *, link: str) -> str:
    """The reset link asked for (nothing if the address has no account)."""

    async def build() -> EmailMessage | None:
        return await _link_mail(
            "reset", link, lambda grant: _alive(recovery.live_account, grant),
            "/password/reset/", "password_reset", "Reset your quartapp password",
        )  # fmt: skip

    return await _send(ctx, build)


async def verification_mail(ctx: Context, *, link: str) -> str:
    """A link that verifies the account's address, unless it is verified or changed."""

    async def build() -> EmailMessage | None:
        return await _link_mail(
            "verify", link, verification.still_unverified,
            "/email/verify/", "verify_email", "Confirm your email address for quartapp",
        )  # fmt: skip

    return await _send(ctx, build)


async def _notice(
    template: str, to: str, subject: str, *, device: str, ip: str, **extra: Any
) -> EmailMessage:
    """A notice of something done to the account: from which device and address, when, and
    where to look (the sessions page) or what to do (reset the password) if it was not them."""
    return await compose(
        template,
        to,
        subject,
        device=device,
        ip=ip or "unknown",
        when=mail_time(),
        sessions_link=_link("/sessions"),
        passkeys_link=_link("/account/passkeys"),
        forgot_link=_link("/password/forgot"),
        **extra,
    )


async def password_changed_notice(
    ctx: Context, *, user_id: int, how: str, device: str, ip: str
) -> str:
    """Tell the owner their password was changed (or reset), from where and when."""

    async def build() -> EmailMessage | None:
        user = await find_user_by_id(user_id)
        if user is None:
            return None
        subject = "Your quartapp password was " + ("reset" if how == "reset" else "changed")
        return await _notice("password_changed", user.email, subject, device=device, ip=ip, how=how)

    return await _send(ctx, build)


async def email_change_mail(ctx: Context, *, link: str) -> str:
    """A link to the NEW address; following it makes that the account's address."""

    async def build() -> EmailMessage | None:
        return await _link_mail(
            "email", link, lambda grant: _alive(email_change.live_change, grant),
            "/email/change/", "email_change", "Confirm your new email address for quartapp",
        )  # fmt: skip

    return await _send(ctx, build)


async def email_changed_notice(
    ctx: Context,
    *,
    user_id: int,
    old_email: str,
    new_email: str,
    device: str,
    ip: str,
    undo: str = "",
) -> str:
    """Tell the OLD address that the account moved to another one, from where and when,
    with the link that undoes it (``undo``, a link id) while that link is live."""

    async def build() -> EmailMessage | None:
        found = await get_mail_tokens().to_send("undo", undo) if undo else None
        undo_link = _link(f"/email/undo/{found[0]}") if found else ""
        undo_for = duration_in_words(found[2]) if found else ""
        return await _notice(
            "email_changed", old_email, "Your quartapp email address was changed",
            device=device, ip=ip, new_email=new_email, undo_link=undo_link, undo_for=undo_for,
        )  # fmt: skip

    return await _send(ctx, build)


async def new_device_notice(ctx: Context, *, user_id: int, device: str, ip: str) -> str:
    """Tell the owner about a sign-in from a device the account has not used lately."""

    async def build() -> EmailMessage | None:
        user = await find_user_by_id(user_id)
        if user is None:
            return None
        return await _notice(
            "new_device", user.email, "New sign-in to your quartapp account", device=device, ip=ip
        )

    return await _send(ctx, build)


TWO_FACTOR_SUBJECTS = {
    "on": "A second factor now protects your quartapp account",
    "off": "The second factor of your quartapp account was turned off",
    "new_codes": "New recovery codes for your quartapp account",
    "recovery_code_used": "A recovery code was used to sign in to your quartapp account",
}


async def two_factor_notice(
    ctx: Context, *, user_id: int, what: str, device: str, ip: str, left: int | None = None
) -> str:
    """Tell the owner about a change to the second factor (``what``: a key of
    ``TWO_FACTOR_SUBJECTS``), or that a recovery code was used (``left``: how many remain)."""

    async def build() -> EmailMessage | None:
        user = await find_user_by_id(user_id)
        if user is None or what not in TWO_FACTOR_SUBJECTS:
            return None
        return await _notice(
            "two_factor", user.email, TWO_FACTOR_SUBJECTS[what],
            device=device, ip=ip, what=what, left=left, account_link=_link("/account/two-factor"),
        )  # fmt: skip

    return await _send(ctx, build)


async def passkey_notice(
    ctx: Context, *, user_id: int, change: str, passkey: str, device: str, ip: str
) -> str:
    """Tell the owner a passkey was added to their account or removed from it."""

    async def build() -> EmailMessage | None:
        user = await find_user_by_id(user_id)
        if user is None:
            return None
        added = change == "added"
        subject = "A passkey was " + ("added to" if added else "removed from") + " your account"
        return await _notice(
            "passkey_changed",
            user.email,
            subject,
            device=device,
            ip=ip,
            added=added,
            passkey=passkey,
        )

    return await _send(ctx, build)


JOBS = [
    password_reset_mail,
    verification_mail,
    password_changed_notice,
    email_change_mail,
    email_changed_notice,
    new_device_notice,
    two_factor_notice,
    passkey_notice,
]

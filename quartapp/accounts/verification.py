"""A verified address: the owner followed a link mailed to it. Sign-up mails the link; the
home page offers to send it again (throttled per account); a password reset verifies too.
Each link is made when it is asked for (``mail_tokens``); sending another never kills one
already mailed."""

from __future__ import annotations

import logging

from quart import current_app

from quartapp.accounts.mail_tokens import LinkDead, LinkGrant, get_mail_tokens
from quartapp.accounts.models import User
from quartapp.accounts.queries import find_user_by_id, mark_email_verified
from quartapp.accounts.throttle import get_throttle, too_many_attempts
from quartapp.infra.redis_client import REDIS_ERRORS
from quartapp.mail.queue import get_mailer
from quartapp.sessions.extension import request_session
from quartapp.sessions.store import SessionRecord

log = logging.getLogger(__name__)

# In a session's data while its account's address is not verified, so the home page can
# say so without asking MySQL. Set at sign-up and sign-in; cleared when the link is
# followed in that session, or when "send it again" finds the address verified.
UNVERIFIED = "email_unverified"


def note_unverified(verified: bool) -> None:
    """Mark this request's new session when the account's address is not verified."""
    if not verified:
        request_session()[UNVERIFIED] = True


def forget_unverified(user_id: int) -> None:
    current = request_session()
    if current.record is not None and current.record.user_id == user_id:
        current.pop(UNVERIFIED, None)


async def queue_verification(user: User) -> None:
    """Make a verification link for the account's address and queue its mail."""
    grant = LinkGrant(user.id, user.credentials_version, user.email)
    ttl = int(current_app.config["EMAIL_VERIFY_TTL"])
    link = await get_mail_tokens().issue("verify", grant, ttl)
    await get_mailer().enqueue("verification_mail", link=link)


async def send_verification(user: User) -> None:
    """Queue the verification mail; a queue fault is logged (the home page offers it again)."""
    try:
        await queue_verification(user)
    except REDIS_ERRORS:
        log.warning("could not queue the verification mail of user %s", user.id)


async def still_unverified(grant: LinkGrant) -> bool:
    """Whether a verification link is still worth mailing: its address is the account's
    and not verified yet."""
    user = await find_user_by_id(grant.user_id)
    return user is not None and user.email == grant.email and not user.email_verified


async def check_verify_link(token: str) -> str:
    """The address a live verification link is for; looking does not use it up."""
    grant = await get_mail_tokens().peek("verify", token)
    if grant is None:
        raise LinkDead()
    user = await find_user_by_id(grant.user_id)
    if user is None or user.email != grant.email:
        raise LinkDead()
    return grant.email


async def verify_email(token: str) -> str:
    """Use a verification link: the address it was sent to is verified, if it is still the
    account's."""
    grant = await get_mail_tokens().use("verify", token)
    if grant is None or not await mark_email_verified(grant.user_id, grant.email):
        raise LinkDead()
    forget_unverified(grant.user_id)
    return grant.email


async def resend(record: SessionRecord) -> bool:
    """Queue the link again; False (and nothing sent) when the address is verified."""
    user = await find_user_by_id(record.user_id)
    if user is None or user.email_verified:
        forget_unverified(record.user_id)
        return False
    decision = await get_throttle().attempt_verification_mail(record.user_id)
    if not decision.allowed:
        raise too_many_attempts(decision)
    await queue_verification(user)
    return True

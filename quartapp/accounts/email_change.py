"""A new address for an account: asked for with the current password, applied only when
the link mailed to the new address is followed (ASVS 7.5.1 for the re-check).

Asking: the password is re-checked with ``service.confirm_password`` (throttled), the new
address must be valid and not the current one, and the request is counted per account
(``email_change_per_account``); the link is made then, its grant fixed (the account, its
credentials version now, the new address), and a job mails it to the NEW address. A
password or address change before the link is followed, however late its mail went out,
kills it. The answer does not say whether another account holds that address.

Following the link: GET shows one button and changes nothing; POST uses the link up, stores
the address (verified) and raises the account's credentials version in the same statement,
raises the credentials floor (so a sign-in with the old address that was already inside
bcrypt starts no session; the raised version kills every reset and change link out, and
verification links die with the old address), and ends every other
session of the account. A session's record carries the address pages show, so rather than
rewrite records in place, sessions end: the browser that followed the link goes on under a
new session if it was signed in to this account, every other one signs in again with the
new address. The old address gets a notice, with a link that undoes the change if that
address was verified (``email_undo``). Two accounts never share an address: the
unique index refuses the second, and the link's page answers 409.
"""

from __future__ import annotations

import logging

from quart import current_app

from quartapp.accounts.email_undo import offer_undo
from quartapp.accounts.known_devices import remember_this_device
from quartapp.accounts.mail_tokens import LinkDead, LinkGrant, get_mail_tokens
from quartapp.accounts.models import User
from quartapp.accounts.policy import canonical_email
from quartapp.accounts.queries import EMAIL_TAKEN, change_email, find_user, find_user_by_id
from quartapp.accounts.service import ASK_CURRENT, SignedOut, confirm_password, queue_notice
from quartapp.accounts.sign_in_flow import renew_session
from quartapp.accounts.throttle import get_throttle, too_many_attempts
from quartapp.mail.messages import address_problem
from quartapp.mail.queue import get_mailer
from quartapp.sessions.extension import current_record, get_sessions
from quartapp.sessions.store import SessionRecord
from quartapp.web.errors import AppError, InvalidFields

log = logging.getLogger(__name__)

SENT = "We sent a link to your new address. Follow it to finish the change."
SAME = "This is already your address. Enter the new one."

__all__ = [
    "SENT", "SignedOut", "apply_change", "check_change_link", "live_change", "request_change",
]  # fmt: skip


async def request_change(record: SessionRecord, current_password: str, typed_email: str) -> str:
    """Mail a change link to the new address; returns that address (canonical)."""
    problems: dict[str, str] = {}
    new_email = ""
    if not current_password:
        problems["current_password"] = ASK_CURRENT
    try:
        new_email = canonical_email(typed_email)
    except ValueError as error:
        problems["new_email"] = str(error)
    else:
        if problem := address_problem(new_email):
            problems["new_email"] = problem
    if new_email and new_email == record.email:
        problems["new_email"] = SAME
    if problems:
        raise InvalidFields(problems)
    user = await confirm_password(record, current_password, "current_password")
    if new_email == user.email:
        raise InvalidFields({"new_email": SAME})
    decision = await get_throttle().attempt_email_change(user.id, new_email)
    if not decision.allowed:
        raise too_many_attempts(decision)
    # The grant is fixed now: a password or address change before the mail goes out kills it.
    grant = LinkGrant(user.id, user.credentials_version, new_email)
    ttl = int(current_app.config["EMAIL_CHANGE_TTL"])
    link = await get_mail_tokens().issue("email", grant, ttl)
    await get_mailer().enqueue("email_change_mail", link=link)
    return new_email


async def live_change(grant: LinkGrant | None) -> User:
    """The account of a change link's grant, while the link may still be used."""
    if grant is None:
        raise LinkDead()
    user = await find_user_by_id(grant.user_id)
    # Any password or address change since the link was asked for raised the version.
    if (
        user is None
        or user.credentials_version != grant.credentials_version
        or user.email == grant.email
    ):
        raise LinkDead()
    return user


async def check_change_link(token: str) -> tuple[User, str]:
    """The account and the new address of a live change link; looking does not use it up."""
    grant = await get_mail_tokens().peek("email", token)
    user = await live_change(grant)
    assert grant is not None
    return user, grant.email


async def apply_change(token: str) -> tuple[User, str, SessionRecord | None]:
    """Use a change link: the account's address becomes the one the link was mailed to.

    Returns the account, its old address, and the new session of this browser when it was
    signed in to the account (every other session has ended)."""
    user, new_email = await check_change_link(token)
    if await find_user(new_email) is not None:  # the link stays live: nothing changed
        raise AppError(EMAIL_TAKEN, status=409, code="email_taken")
    grant = await get_mail_tokens().use("email", token)
    user = await live_change(grant)
    old_email, old_verified = user.email, user.email_verified
    version = await change_email(user, new_email)  # a 409 if the address was taken meanwhile
    sessions = get_sessions()
    await sessions.store.retire_credentials(user.id, version)
    current = current_record()
    record = None
    if current is not None and current.user_id == user.id:
        record = await renew_session(current, new_email, version)
    else:
        await sessions.store.revoke_all(user.id)
    await remember_this_device(user.id)
    # An old address never verified may be a stranger's, typed by whoever signed up: they
    # are told, but not the address (text of the requester's choosing) the account moved
    # to, and get no link to take the account back (see email_undo).
    if old_verified:
        undo = await offer_undo(user.id, old_email)
        await notify_email_changed(user.id, old_email, new_email, undo)
    else:
        await notify_email_changed(user.id, old_email, "", "")
    return user, old_email, record


async def notify_email_changed(user_id: int, old_email: str, new_email: str, undo: str) -> None:
    """Tell the old address that the account moved (to ``new_email``, if it is shown), with
    the undo link ``undo`` (its id; "" for none); the change stands whatever happens."""
    await queue_notice(
        "email_changed_notice", user_id, old_email=old_email, new_email=new_email, undo=undo
    )

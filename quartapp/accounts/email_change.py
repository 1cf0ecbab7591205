"""A new address for an account: asked for with the current password, applied only when
the link mailed to the new address is followed (ASVS 7.5.1 for the re-check).

Asking: the password is re-checked with ``service.confirm_password`` (throttled), the new
address must be valid and not the current one, and the request is counted per account
(``email_change_per_account``); a job then mails a link to the NEW address. The answer does
not say whether another account holds that address.

Following the link: GET shows one button and changes nothing; POST uses the link up, stores
the address (verified) and raises the account's credentials version in the same statement,
raises the credentials floor (so a sign-in with the old address that was already inside
bcrypt starts no session), kills any live reset or verification link, and ends every other
session of the account. A session's record carries the address pages show, so rather than
rewrite records in place, sessions end: the browser that followed the link goes on under a
new session if it was signed in to this account, every other one signs in again with the
new address. The old address gets a notice. Two accounts never share an address: the
unique index refuses the second, and the link's page answers 409.
"""

from __future__ import annotations

import logging

from quartapp.accounts.known_devices import remember_this_device
from quartapp.accounts.mail_tokens import LinkDead, LinkGrant, get_mail_tokens
from quartapp.accounts.models import User
from quartapp.accounts.policy import canonical_email
from quartapp.accounts.queries import EMAIL_TAKEN, change_email, find_user, find_user_by_id
from quartapp.accounts.service import ASK_CURRENT, SignedOut, confirm_password, queue_notice
from quartapp.accounts.throttle import get_throttle, too_many_attempts
from quartapp.mail.queue import get_mailer
from quartapp.sessions.extension import current_record, get_sessions
from quartapp.sessions.store import SessionRecord
from quartapp.web.errors import AppError, InvalidFields

log = logging.getLogger(__name__)

SENT = "We sent a link to your new address. Follow it to finish the change."
SAME = "This is already your address. Enter the new one."

__all__ = ["SENT", "SignedOut", "apply_change", "check_change_link", "request_change"]


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
    if new_email and new_email == record.email:
        problems["new_email"] = SAME
    if problems:
        raise InvalidFields(problems)
    user = await confirm_password(record, current_password, "current_password")
    if new_email == user.email:
        raise InvalidFields({"new_email": SAME})
    decision = await get_throttle().attempt_email_change(user.id)
    if not decision.allowed:
        raise too_many_attempts(decision)
    await get_mailer().enqueue("email_change_mail", user_id=user.id, new_email=new_email)
    return new_email


async def _live(grant: LinkGrant | None) -> User:
    if grant is None:
        raise LinkDead()
    user = await find_user_by_id(grant.user_id)
    # Any password or address change since the link was sent raised the version: it is dead.
    if user is None or user.credentials_version != grant.credentials_version:
        raise LinkDead()
    return user


async def check_change_link(token: str) -> tuple[User, str]:
    """The account and the new address of a live change link; looking does not use it up."""
    grant = await get_mail_tokens().peek("email", token)
    user = await _live(grant)
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
    user = await _live(grant)
    old_email = user.email
    version = await change_email(user, new_email)  # a 409 if the address was taken meanwhile
    sessions = get_sessions()
    await sessions.store.retire_credentials(user.id, version)
    tokens = get_mail_tokens()
    await tokens.revoke("reset", user.id)
    await tokens.revoke("verify", user.id)
    current = current_record()
    record = None
    if current is not None and current.user_id == user.id:
        record = await sessions.sign_in(
            user.id, new_email, credentials_version=version, end_other_sessions=True
        )
    else:
        await sessions.store.revoke_all(user.id)
    await remember_this_device(user.id)
    await notify_email_changed(user.id, old_email, new_email)
    return user, old_email, record


async def notify_email_changed(user_id: int, old_email: str, new_email: str) -> None:
    """Tell the old address that the account moved; the change stands whatever happens."""
    await queue_notice("email_changed_notice", user_id, old_email=old_email, new_email=new_email)

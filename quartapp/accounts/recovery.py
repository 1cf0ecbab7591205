"""A forgotten password: asking for a link by mail, and setting a new password with it.

Asking reads the same whether or not the address has an account, in content, status and
timing: the request checks the address's form, counts the request against the client and
the address (``throttle``), looks the address up, makes the link (``mail_tokens``: the
same Redis commands either way, a record that grants nothing for an address without an
account) and puts a job on the mail queue. The link's grant is fixed then, with the account's
credentials version of that moment: a password changed before the mail goes out kills it,
and the worker sends nothing (``mailings.password_reset_mail``).
"""

from __future__ import annotations

from quart import current_app

from quartapp.accounts.known_devices import remember_this_device
from quartapp.accounts.mail_tokens import LinkDead, LinkGrant, get_mail_tokens
from quartapp.accounts.models import User
from quartapp.accounts.policy import canonical_email
from quartapp.accounts.queries import find_user, find_user_by_id, mark_email_verified
from quartapp.accounts.service import (
    judge_new_password,
    notify_password_changed,
    set_password,
)
from quartapp.accounts.throttle import get_throttle, too_many_attempts
from quartapp.mail.messages import address_problem
from quartapp.mail.queue import get_mailer
from quartapp.sessions.extension import get_sessions
from quartapp.web.errors import InvalidFields

SENT = "If an account exists for that address, we sent a link to reset its password."


async def request_password_reset(typed_email: str) -> None:
    """Queue a reset mail for this address (sent only if it has an account)."""
    try:
        email = canonical_email(typed_email)
    except ValueError as error:
        raise InvalidFields({"email": str(error)}) from None
    if problem := address_problem(email):  # no mail could reach it, account or not
        raise InvalidFields({"email": problem})
    decision = await get_throttle().attempt_password_reset(email, get_sessions().client_ip())
    if not decision.allowed:
        raise too_many_attempts(decision)
    user = await find_user(email)
    grant = LinkGrant(user.id, user.credentials_version, user.email) if user else None
    ttl = int(current_app.config["PASSWORD_RESET_TTL"])
    link = await get_mail_tokens().issue("reset", grant, ttl)
    await get_mailer().enqueue("password_reset_mail", link=link)


async def live_account(grant: LinkGrant | None) -> User:
    """The account of a reset link's grant, while the link may still be used."""
    if grant is None:
        raise LinkDead()
    user = await find_user_by_id(grant.user_id)
    # A password changed since the link was sent (any way) kills it; so does a new address.
    if (
        user is None
        or user.credentials_version != grant.credentials_version
        or user.email != grant.email
    ):
        raise LinkDead()
    return user


async def check_reset_link(token: str) -> User:
    """The account a live reset link is for; looking does not use the link up."""
    return await live_account(await get_mail_tokens().peek("reset", token))


async def reset_password(token: str, new_password: str) -> User:
    """Set a new password with a reset link, then end every session of the account.

    The new password is judged before the link is used up (a weak one leaves the link
    live); the link is used up before the password is stored, so one link sets at most one
    password. The address is marked verified: the mail reached its owner."""
    user = await check_reset_link(token)
    if problem := (await judge_new_password(new_password, user.email)).message:
        raise InvalidFields({"new_password": problem})
    user = await live_account(await get_mail_tokens().use("reset", token))
    await set_password(user, new_password)
    await get_sessions().store.revoke_all(user.id)
    await mark_email_verified(user.id, user.email)
    await remember_this_device(user.id)  # so signing in with the new password is no news
    await notify_password_changed(user.id, "reset")
    return user

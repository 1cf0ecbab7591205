"""Undoing an address change from the OLD address: the way back for an owner whose account
someone who knew the password moved to an address of their own.

When an account moves from a verified address, the notice to that address carries a link
(``EMAIL_CHANGE_UNDO_TTL``, 7 days by default) that needs no password: the attacker has it
by then, and may have changed it. Following it (GET shows one button and changes nothing;
POST acts) puts the old address back (verified), replaces the password with one nobody
knows, removes every passkey (the attacker may have added one), raises the credentials
version and floor (so every reset and change link out dies, and no sign-in with the
attacker's password starts a session), ends every session, and hands the browser a fresh
reset link for the restored address, so the owner sets a new password at once. The link
works once.

A chain of changes (owner → a1 → a2) gives one link per step, each to the address it left.
Using one kills every undo link the account was given from its issue on
(``MailTokens.cancel_from``), never an earlier one: the owner's link (the earliest) still
works after an attacker used a later one, and once the owner used theirs, the attacker's
later links are dead. A change from an address never verified offers no undo link: that
address may be a stranger's, typed at sign-up.
"""

from __future__ import annotations

import secrets

from quart import current_app

from quartapp.accounts.hashing import get_hasher
from quartapp.accounts.mail_tokens import LinkDead, LinkGrant, get_mail_tokens
from quartapp.accounts.models import User
from quartapp.accounts.queries import delete_passkeys, find_user, find_user_by_id, restore_email
from quartapp.sessions.extension import get_sessions
from quartapp.web.errors import AppError

TAKEN = (
    "That address belongs to another account now, so it cannot be put back. Contact the "
    "people who run this site."
)


def _ttl() -> int:
    return int(current_app.config["EMAIL_CHANGE_UNDO_TTL"])


async def offer_undo(user_id: int, old_email: str) -> str:
    """Make the undo link for a change away from ``old_email``; returns its id."""
    return await get_mail_tokens().issue("undo", LinkGrant(user_id, 0, old_email), _ttl())


async def live_undo(grant: LinkGrant | None) -> User:
    """The account of an undo link's grant, while the link may still be used."""
    if grant is None:
        raise LinkDead()
    user = await find_user_by_id(grant.user_id)
    if user is None or user.email == grant.email:
        raise LinkDead()
    if await get_mail_tokens().cancelled("undo", grant):
        raise LinkDead()
    return user


async def check_undo_link(token: str) -> str:
    """The address a live undo link puts back; looking does not use it up."""
    grant = await get_mail_tokens().peek("undo", token)
    await live_undo(grant)
    assert grant is not None
    return grant.email


async def undo_change(token: str) -> tuple[str, str]:
    """Use an undo link: returns the restored address and the token of a fresh reset link
    for it (the account's password is now one nobody knows)."""
    old_email = await check_undo_link(token)
    holder = await find_user(old_email)
    tokens = get_mail_tokens()
    grant = await tokens.peek("undo", token)
    if holder is not None and grant is not None and holder.id != grant.user_id:
        raise AppError(TAKEN, status=409, code="email_taken")  # the link stays live
    grant = await tokens.use("undo", token)
    user = await live_undo(grant)
    assert grant is not None
    await tokens.cancel_from("undo", grant, _ttl())
    nobody_knows = await get_hasher().hash(secrets.token_urlsafe(32))
    version = await restore_email(user.id, grant.email, nobody_knows)
    await delete_passkeys(user.id)  # the owner adds theirs again
    store = get_sessions().store
    await store.retire_credentials(user.id, version)
    await store.revoke_all(user.id)
    reset = LinkGrant(user.id, version, grant.email)
    ttl = int(current_app.config["PASSWORD_RESET_TTL"])
    return grant.email, tokens.token("reset", await tokens.issue("reset", reset, ttl))

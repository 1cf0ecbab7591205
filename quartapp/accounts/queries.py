"""The MySQL queries on accounts. A database fault is a ServiceUnavailable (a 503);
an email taken twice is a 409."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from tortoise.exceptions import BaseORMException, IntegrityError
from tortoise.expressions import F, RawSQL
from tortoise.queryset import QuerySet

from quartapp.accounts.models import Passkey, User
from quartapp.web.errors import AppError, ServiceUnavailable

T = TypeVar("T")


async def stored(query: Awaitable[T]) -> T:
    """A query's result; a database fault is a 503. An IntegrityError goes to the caller,
    which knows what a broken constraint means there."""
    try:
        return await query
    except IntegrityError:
        raise
    except (BaseORMException, OSError, TimeoutError) as error:
        raise ServiceUnavailable("The account database") from error


async def create_user(email: str, password_hash: str) -> User:
    """Insert a user; an email already taken (in any case) is a 409."""
    try:
        return await stored(User.create(email=email, password_hash=password_hash))
    except IntegrityError as error:
        raise AppError(
            "An account with this email already exists. Sign in instead.",
            status=409,
            fields={"email": "This email is already registered."},
            code="email_taken",
        ) from error


async def find_user(email: str) -> User | None:
    return await stored(User.get_or_none(email=email))


async def find_user_by_id(user_id: int) -> User | None:
    return await stored(User.get_or_none(id=user_id))


# A sign-in reads the account once (one SELECT) and with it whether the account has a
# passkey, for its session to note (``sign_in_flow.start_session``): an EXISTS in the same
# statement, on the passkeys' index by account (the tables of User and Passkey).
_HAS_PASSKEY = "has_passkey"
_PASSKEY_EXISTS = "EXISTS(SELECT 1 FROM `passkeys` WHERE `passkeys`.`user_id` = `users`.`id`)"


def _with_passkey_flag() -> QuerySet[User]:
    return User.annotate(**{_HAS_PASSKEY: RawSQL(_PASSKEY_EXISTS)})


async def find_user_signing_in(email: str) -> User | None:
    """``find_user`` for a sign-in: the account and, in the same query, whether it has a
    passkey (``has_passkey``)."""
    return await stored(_with_passkey_flag().get_or_none(email=email))


async def find_user_by_id_signing_in(user_id: int) -> User | None:
    """``find_user_by_id`` for a sign-in's second step, with ``has_passkey`` as above."""
    return await stored(_with_passkey_flag().get_or_none(id=user_id))


def has_passkey(user: User) -> bool | None:
    """Whether the account had a passkey when ``user`` was read by one of the
    ``..._signing_in`` queries above; None for an account read otherwise."""
    value = getattr(user, _HAS_PASSKEY, None)
    return None if value is None else bool(value)


async def update_password_hash(user_id: int, password_hash: str) -> None:
    """Store a new hash of the same password (a cost upgrade): its version stays."""
    await stored(User.filter(id=user_id).update(password_hash=password_hash))


async def change_password_hash(user: User, password_hash: str) -> int:
    """Store the hash of a new password and return the password's new version.

    Only if ``user``'s version is still the stored one: when two changes race, the second
    gets a 409 instead of silently undoing the first."""
    version = user.credentials_version + 1
    updated = await stored(
        User.filter(id=user.id, credentials_version=user.credentials_version).update(
            password_hash=password_hash, credentials_version=F("credentials_version") + 1
        )
    )
    if not updated:
        raise AppError(
            "Your password was changed at the same moment by another request. "
            "Reload the page and try again.",
            status=409,
        )
    user.password_hash, user.credentials_version = password_hash, version
    return version


async def delete_user(user_id: int) -> None:
    await stored(User.filter(id=user_id).delete())


async def mark_email_verified(user_id: int, email: str) -> bool:
    """Mark the address verified, if it is still the account's; whether it was."""
    updated = await stored(User.filter(id=user_id, email=email).update(email_verified=True))
    return bool(updated)


EMAIL_TAKEN = "That address belongs to another account now, so it cannot be yours as well."


async def change_email(user: User, new_email: str) -> int:
    """Give the account a new (verified) address; returns its new credentials version.

    The address is part of what a sign-in checks, so its version goes up as a password
    change's does (see SessionStore.retire_credentials). Only if ``user``'s version is still
    the stored one; an address another account holds is a 409 (the unique index decides)."""
    version = user.credentials_version + 1
    try:
        updated = await stored(
            User.filter(id=user.id, credentials_version=user.credentials_version).update(
                email=new_email,
                email_verified=True,
                credentials_version=F("credentials_version") + 1,
            )
        )
    except IntegrityError as error:
        raise AppError(
            EMAIL_TAKEN, status=409, fields={"new_email": EMAIL_TAKEN}, code="email_taken"
        ) from error
    if not updated:
        raise AppError(
            "Your password or address was changed at the same moment by another request. "
            "Ask for a new link and try again.",
            status=409,
        )
    user.email, user.email_verified, user.credentials_version = new_email, True, version
    return version


async def restore_email(user_id: int, email: str, password_hash: str) -> int:
    """Put an earlier (verified) address back with a new password hash, whatever was
    changed since, and return the credentials' new version; a 409 if another account has
    the address now."""
    try:
        updated = await stored(
            User.filter(id=user_id).update(
                email=email,
                email_verified=True,
                password_hash=password_hash,
                credentials_version=F("credentials_version") + 1,
            )
        )
    except IntegrityError as error:
        raise AppError(EMAIL_TAKEN, status=409, code="email_taken") from error
    user = await find_user_by_id(user_id) if updated else None
    if user is None:
        raise AppError("This account no longer exists.", status=410)
    return user.credentials_version


# --- passkeys (accounts/passkeys.py decides what goes in and what comes out) ---------------


async def list_passkeys(user_id: int) -> list[Passkey]:
    """The account's passkeys, the oldest first."""
    return await stored(Passkey.filter(user_id=user_id).order_by("created_at", "id"))


async def count_passkeys(user_id: int) -> int:
    return await stored(Passkey.filter(user_id=user_id).count())


async def find_passkey(user_id: int, passkey_id: int) -> Passkey | None:
    """One of the account's passkeys (another account's is None)."""
    return await stored(Passkey.get_or_none(id=passkey_id, user_id=user_id))


async def find_passkey_by_key(key: str) -> Passkey | None:
    """A passkey by the SHA-256 of its credential id, with its account."""
    return await stored(Passkey.get_or_none(credential_key=key).select_related("user"))


async def create_passkey(**values: Any) -> Passkey:
    """Insert a passkey; a credential registered already (to any account) is an
    IntegrityError (the unique index on its key)."""
    return await stored(Passkey.create(**values))


async def rename_passkey(passkey_id: int, name: str) -> None:
    await stored(Passkey.filter(id=passkey_id).update(name=name))


async def delete_passkey(passkey_id: int) -> bool:
    return bool(await stored(Passkey.filter(id=passkey_id).delete()))


async def delete_passkeys(user_id: int) -> int:
    """Remove every passkey of the account; how many there were."""
    return int(await stored(Passkey.filter(user_id=user_id).delete()))


async def passkey_used(passkey: Passkey, sign_count: int, backed_up: bool) -> bool:
    """Move the passkey's counter on to ``sign_count``, only from the value ``passkey``
    was read with: of two answers racing with one counter value (a cloned authenticator's),
    one moves it and the other gets False."""
    moved = await stored(
        Passkey.filter(id=passkey.id, sign_count=passkey.sign_count).update(
            sign_count=sign_count, backed_up=backed_up, last_used_at=datetime.now(UTC)
        )
    )
    return bool(moved)

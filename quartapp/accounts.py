"""Accounts: what a valid sign-up is, and the MySQL queries the app makes."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email
from tortoise.exceptions import BaseORMException, IntegrityError

from .errors import AppError, ServiceUnavailable
from .models import User
from .passwords import MAX_PASSWORD_BYTES

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Credentials:
    email: str
    password: str


def canonical_email(raw: str) -> str:
    """The form an email is stored and looked up in. Raises ValueError with a user message."""
    email = raw.strip()
    if not email:
        raise ValueError("Enter your email address.")
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValueError(f"An email address has at most {MAX_EMAIL_LENGTH} characters.")
    try:
        valid = validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"This is not a valid email address: {error}") from error
    if len(valid.normalized) > MAX_EMAIL_LENGTH:
        raise ValueError(f"An email address has at most {MAX_EMAIL_LENGTH} characters.")
    return valid.normalized.lower()


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return (
            f"Use at most {MAX_PASSWORD_BYTES} bytes "
            "(letters outside English take 2 to 4 bytes each)."
        )
    return None


def validate_sign_up(email: str, password: str) -> Credentials:
    fields: dict[str, str] = {}
    try:
        email = canonical_email(email)
    except ValueError as error:
        fields["email"] = str(error)
    if problem := password_problem(password):
        fields["password"] = problem
    if fields:
        raise AppError("Please correct the fields below.", status=422, fields=fields)
    return Credentials(email, password)


async def _database(query: Awaitable[T]) -> T:
    try:
        return await query
    except IntegrityError:
        raise
    except (BaseORMException, OSError, TimeoutError) as error:
        raise ServiceUnavailable("The account database") from error


async def create_user(email: str, password_hash: str) -> User:
    """Insert a user; an email already taken (in any case) is a 409."""
    try:
        return await _database(User.create(email=email, password_hash=password_hash))
    except IntegrityError as error:
        raise AppError(
            "An account with this email already exists. Sign in instead.",
            status=409,
            fields={"email": "This email is already registered."},
        ) from error


async def find_user(email: str) -> User | None:
    return await _database(User.get_or_none(email=email))


async def find_user_by_id(user_id: int) -> User | None:
    return await _database(User.get_or_none(id=user_id))


async def update_password_hash(user_id: int, password_hash: str) -> None:
    await _database(User.filter(id=user_id).update(password_hash=password_hash))


async def delete_user(user_id: int) -> None:
    await _database(User.filter(id=user_id).delete())

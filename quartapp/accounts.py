"""Accounts: what a valid sign-up is, and the MySQL queries the app makes."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from tortoise.exceptions import BaseORMException, IntegrityError
from zxcvbn import zxcvbn

from .errors import AppError, ServiceUnavailable
from .models import User
from .passwords import MAX_PASSWORD_BYTES

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
# zxcvbn's scores run 0 (too guessable) to 4; 3 is "safely unguessable" (about 10^8 to 10^10
# guesses), out of reach of online guessing and slow for an offline attack on bcrypt hashes.
MIN_PASSWORD_SCORE = 3
# zxcvbn's matching grows quickly with length and the library refuses more than 72
# characters; a password at most 72 bytes long never reaches the cap anyway.
ZXCVBN_MAX_CHARS = 72
STRENGTH_LABELS = ("very weak", "weak", "fair", "strong", "very strong")
FROM_EMAIL = "Avoid passwords built from your email address."
COMMON = "This is one of the most common passwords."
TOO_GUESSABLE = "This is too easy to guess. Add another word or two; uncommon words are better."
# zxcvbn's own warnings, shortened where they say the same thing as COMMON.
_COMMON_WARNINGS = frozenset(
    {
        "This is a top-10 common password.",
        "This is a top-100 common password.",
        "This is a very common password.",
        "This is similar to a commonly used password.",
    }
)
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


@dataclass(frozen=True, slots=True)
class PasswordStrength:
    score: int  # zxcvbn's 0 to 4
    message: str | None  # why it is refused; None when it is acceptable

    @property
    def acceptable(self) -> bool:
        return self.message is None

    @property
    def label(self) -> str:
        return STRENGTH_LABELS[self.score]


def email_words(email: str) -> list[str]:
    """What a password built from this email would contain: the whole address, its local
    part, and each word of it ("ada", "lovelace" in ada.lovelace@example.com)."""
    email = email.strip().lower()
    local = email.rpartition("@")[0] or email
    words = [word for word in re.split(r"[\W_]+", local) if len(word) >= 3]
    return [text for text in dict.fromkeys([email, local, *words]) if text]


def _reason(result: dict[str, Any]) -> str:
    if any(match.get("dictionary_name") == "user_inputs" for match in result["sequence"]):
        return FROM_EMAIL
    warning: str = result["feedback"]["warning"]
    if warning in _COMMON_WARNINGS:
        return COMMON
    return warning or TOO_GUESSABLE


def judge_password(password: str, email: str = "") -> PasswordStrength:
    """How guessable ``password`` is for the account of ``email`` (ASVS 6.2.4, 6.2.11).

    zxcvbn knows the most common passwords, names, words, keyboard walks, dates and
    repeats, and is given the email's words too. A score under 3 is refused: such
    passwords fall within the first hundred million guesses, which leaked-hash cracking
    and credential stuffing lists try first. Length limits come first (``password_problem``);
    there are no composition rules."""
    if problem := password_problem(password):
        return PasswordStrength(0, problem)
    result = zxcvbn(password[:ZXCVBN_MAX_CHARS], user_inputs=email_words(email))
    score = int(result["score"])
    if score >= MIN_PASSWORD_SCORE:
        return PasswordStrength(score, None)
    return PasswordStrength(score, _reason(result))


def validate_sign_up(email: str, password: str) -> Credentials:
    fields: dict[str, str] = {}
    try:
        email = canonical_email(email)
    except ValueError as error:
        fields["email"] = str(error)
    if problem := judge_password(password, email).message:
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

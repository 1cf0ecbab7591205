"""Accounts: what a valid sign-up is, and the MySQL queries the app makes."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from tortoise.exceptions import BaseORMException, IntegrityError
from tortoise.expressions import F
from zxcvbn import zxcvbn
from zxcvbn.matching import L33T_TABLE, relevant_l33t_subtable

from .errors import AppError, ServiceUnavailable
from .models import User
from .passwords import MAX_PASSWORD_BYTES

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
# zxcvbn's scores run 0 (too guessable) to 4; 3 is "safely unguessable" (about 10^8 to 10^10
# guesses), out of reach of online guessing and slow for an offline attack on bcrypt hashes.
MIN_PASSWORD_SCORE = 3
# zxcvbn's work grows with the square of the length, times the number of ways it reads the
# password's l33t characters ("4" as "a", "(" "{" "[" "<" as "c", ...): 72 characters of
# mixed symbols took it 12 s. It is shown the longest start of the password whose estimated
# work stays under ZXCVBN_WORK, which keeps every judgement to a fraction of a second
# (tests/test_password_quality.py tries the worst cases). Ordinary passwords and passphrases
# are judged whole; in a symbol-heavy one, the start it is shown is already strong or the
# whole would not be either.
ZXCVBN_MAX_CHARS = 64
ZXCVBN_WORK = 50_000
# The email's words zxcvbn is given, and their length: enough for any real address.
MAX_EMAIL_WORDS = 8
MAX_EMAIL_WORD_CHARS = 64
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
    found = [text for text in dict.fromkeys([email, local, *words]) if text]
    return [text[:MAX_EMAIL_WORD_CHARS] for text in found[:MAX_EMAIL_WORDS]]


def zxcvbn_work(text: str) -> int:
    """An upper estimate of zxcvbn's work on ``text``: its ways of reading l33t characters
    (one per choice of character for each letter) times the length squared."""
    readings = math.prod(len(chars) for chars in relevant_l33t_subtable(text, L33T_TABLE).values())
    return (1 + readings) * len(text) ** 2


def judged_part(password: str) -> str:
    """The start of ``password`` that zxcvbn is shown (see ZXCVBN_WORK)."""
    part = password[:ZXCVBN_MAX_CHARS]
    while len(part) > MIN_PASSWORD_LENGTH and zxcvbn_work(part) > ZXCVBN_WORK:
        part = part[:-1]
    return part


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
    result = zxcvbn(judged_part(password), user_inputs=email_words(email))
    score = int(result["score"])
    if score >= MIN_PASSWORD_SCORE:
        return PasswordStrength(score, None)
    return PasswordStrength(score, _reason(result))


def sign_up_problems(email: str, password: str) -> tuple[str, dict[str, str]]:
    """The canonical email (or the input, trimmed) and what is wrong with the sign-up form,
    by field, as far as cheap checks tell: everything but the password's strength."""
    fields: dict[str, str] = {}
    try:
        email = canonical_email(email)
    except ValueError as error:
        fields["email"] = str(error)
        email = email.strip()
    if problem := password_problem(password):
        fields["password"] = problem
    return email, fields


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
    """Store a new hash of the same password (a cost upgrade): its version stays."""
    await _database(User.filter(id=user_id).update(password_hash=password_hash))


async def change_password_hash(user: User, password_hash: str) -> int:
    """Store the hash of a new password and return the password's new version.

    Only if ``user``'s version is still the stored one: when two changes race, the second
    gets a 409 instead of silently undoing the first."""
    version = user.credentials_version + 1
    updated = await _database(
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
    await _database(User.filter(id=user_id).delete())

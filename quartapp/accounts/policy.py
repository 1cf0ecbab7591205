"""What an account may be: a valid email, an acceptable password, and how guessable one is."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from zxcvbn import zxcvbn
from zxcvbn.matching import L33T_TABLE, relevant_l33t_subtable

from quartapp.accounts.hashing import MAX_PASSWORD_BYTES

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
            f"Use a shorter password: at most {MAX_PASSWORD_BYTES} characters, fewer with "
            "letters outside English (each takes the room of 2 to 4)."
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

"""The declared shapes of JSON requests and answers (pydantic models). The OpenAPI
document (``GET /openapi.json``) is made from them and from each route's ``described``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.config import JsonDict

from quartapp.sessions.store import SessionRecord


def _examples(*examples: JsonDict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class SessionSummary(BaseModel):
    """A session as answers name it: its public id and the seconds it has left."""

    model_config = _examples({"id": "Qx3vN0aZ8kLm", "expires_in": 599})

    id: str = Field(description="The session's public id (as in GET /sessions).")
    expires_in: int = Field(description="Seconds until it ends unless used.")

    @classmethod
    def of(cls, record: SessionRecord) -> SessionSummary:
        return cls(id=record.public_id, expires_in=record.seconds_left)


class CsrfToken(BaseModel):
    """A CSRF token: send it as the X-CSRF-Token header of every POST."""

    model_config = _examples({"csrf_token": "k3J9...1700000000.Zm9v..."})

    csrf_token: str


NOT_BLANK: JsonDict = {"minLength": 1, "pattern": r"\S"}


class Credentials(BaseModel):
    """An email address and a password (as JSON, or as a web form)."""

    model_config = _examples({"email": "ada@example.com", "password": "correct horse battery"})

    # What the sign-in and sign-up checks refuse first, with their own messages (a 422
    # naming the field): nothing but white space.
    email: str = Field(
        description="Up to 254 characters; letter case does not matter.",
        json_schema_extra=NOT_BLANK,
    )
    password: str = Field(
        description=(
            "Signing up: 8 characters to 72 bytes, not a common or email-derived password."
        ),
        json_schema_extra=NOT_BLANK,
    )


class SignedIn(BaseModel):
    """Signed in: the session cookie is set, and here is the new session's CSRF token
    (tokens from before the sign-in no longer work)."""

    model_config = _examples(
        {
            "message": "account created",
            "email": "ada@example.com",
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 600},
            "csrf_token": "Qx3vN0aZ8kLm...1700000000.Zm9v...",
        }
    )

    message: str = Field(description='"account created" or "signed in".')
    email: str
    session: SessionSummary
    csrf_token: str = Field(description="The session's CSRF token, for its next POSTs.")


class Account(BaseModel):
    """The signed-in account, read from the database (an address change shows at once)."""

    model_config = _examples(
        {
            "email": "ada@example.com",
            "email_verified": False,
            "two_factor_enabled": False,
            "created_at": "2026-01-31T12:00:00+00:00",
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 598},
        }
    )

    email: str
    email_verified: bool
    two_factor_enabled: bool = Field(description="A second factor is needed to sign in.")
    created_at: str = Field(description="ISO 8601, in UTC, to the second.")
    session: SessionSummary


# Second factor


class TwoFactorRequired(BaseModel):
    """The password was right, and the account has a second factor on: no session yet.
    The answer sets a cookie of its own (`quartapp_signin2`, `__Host-` over https) that
    binds the pending step; send a code to POST /api/v1/signin/two-factor within 5 minutes."""

    model_config = _examples({"two_factor_required": True})

    two_factor_required: bool = Field(description="Always true.")


class SignInAnswer(RootModel[SignedIn | TwoFactorRequired]):
    """Signed in, or (with a second factor on) asked for a code."""

    model_config = _examples(
        {
            "message": "signed in",
            "email": "ada@example.com",
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 600},
            "csrf_token": "Qx3vN0aZ8kLm...1700000000.Zm9v...",
        },
        {"two_factor_required": True},
    )


class Code(BaseModel):
    """A code: six digits from the authenticator app, or (where a sign-in asks) one of the
    unused recovery codes (letter case, spaces and dashes do not matter)."""

    model_config = _examples({"code": "123456"}, {"code": "ABCD-EFGH-JKLM-NPQR-STUV-WXYZ"})

    code: str = Field(max_length=100, json_schema_extra=NOT_BLANK)


class SignedInWithCode(SignedIn):
    """Signed in with the second factor. After a recovery code, how many are left."""

    model_config = _examples(
        {
            "message": "signed in",
            "email": "ada@example.com",
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 600},
            "csrf_token": "Qx3vN0aZ8kLm...1700000000.Zm9v...",
            "recovery_codes_left": 9,
        }
    )

    recovery_codes_left: int | None = Field(
        default=None, description="Only after a recovery code: the unused ones left."
    )


class CurrentPassword(BaseModel):
    """The account's password, typed again."""

    model_config = _examples({"password": "correct horse battery"})

    password: str = Field(max_length=1024, json_schema_extra=NOT_BLANK)


class PasswordOrCode(BaseModel):
    """The account's password, or a current code from the authenticator app."""

    model_config = _examples({"password": "123456"})

    password: str = Field(
        max_length=1024,
        description="The password, or six digits from the authenticator app.",
        json_schema_extra=NOT_BLANK,
    )


class TurnOffTwoFactor(BaseModel):
    """The password, and a current code or an unused recovery code."""

    model_config = _examples({"password": "correct horse battery", "code": "123456"})

    password: str = Field(max_length=1024, json_schema_extra=NOT_BLANK)
    code: str = Field(max_length=100, json_schema_extra=NOT_BLANK)


class TwoFactorStatus(BaseModel):
    """Whether the second factor is on, and how many recovery codes are unused."""

    model_config = _examples({"two_factor_enabled": True, "recovery_codes_left": 10})

    two_factor_enabled: bool
    recovery_codes_left: int


class TwoFactorEnrolment(BaseModel):
    """An enrolment begun: put the secret into the authenticator app (or scan the URI as a
    QR code), then confirm with a code from it. Shown this once."""

    model_config = _examples(
        {
            "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
            "otpauth_uri": "otpauth://totp/quartapp:ada%40example.com?secret=JBSW...&issuer=quartapp",
        }
    )

    secret: str = Field(description="Base32, as authenticator apps take it when typed.")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI (what the QR code holds).")


class RecoveryCodes(BaseModel):
    """New recovery codes, shown this once (only their hashes are kept); each works once,
    and any earlier set no longer works."""

    model_config = _examples(
        {"recovery_codes": ["ABCD-EFGH-JKLM-NPQR-STUV-WXYZ", "2345-67AB-CDEF-GHJK-LMNP-QRST"]}
    )

    recovery_codes: list[str]

"""The declared shapes of JSON requests and answers (pydantic models). The OpenAPI
document (``GET /openapi.json``) is made from them and from each route's ``described``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from quartapp.sessions.store import WHY_ENDED, SessionRecord


def _examples(*examples: JsonDict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class Message(BaseModel):
    """An answer that tells people what happened in ``message``; each answer built on it
    says more in its own description and examples."""

    message: str


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
    # naming the field): nothing but white space. Beyond that the document says what every
    # account's email and password are (a sign-in with anything else is refused, 401).
    email: str = Field(
        description="Up to 254 characters; letter case does not matter.",
        json_schema_extra={**NOT_BLANK, "format": "email", "maxLength": 254},
    )
    password: str = Field(
        description=(
            "Signing up: 8 characters to 72 bytes, not a common or email-derived password."
        ),
        json_schema_extra={**NOT_BLANK, "minLength": 8, "maxLength": 72},
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
            "passkeys": 1,
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 598},
        }
    )

    email: str
    email_verified: bool
    two_factor_enabled: bool = Field(description="A second factor is needed to sign in.")
    created_at: str = Field(description="ISO 8601, in UTC, to the second.")
    passkeys: int = Field(description="How many passkeys the account has.")
    session: SessionSummary


# Session countdown, extension, sign-out, strength, health

# A field that is left out when it does not apply (the responder leaves out the fields a
# view does not set), never sent as null: ``name: T | Absent = absent("...")``.
Absent = SkipJsonSchema[None]


def absent(description: str, *, enum: list[str] | None = None) -> Any:
    def finish(schema: JsonDict) -> None:
        del schema["default"]  # null, which the schema does not allow
        if enum is not None:
            schema["enum"] = list(enum)

    return Field(default=None, description=description, json_schema_extra=finish)


class Countdown(BaseModel):
    """The time left in this request's session. Reading it never extends it."""

    model_config = _examples(
        {"expires_in": 540, "expired": False},
        {"expires_in": 0, "expired": True},
        {"expires_in": 0, "expired": True, "ended": "elsewhere"},
    )

    expires_in: int = Field(ge=0, description="Seconds until the session ends unless used.")
    expired: bool = Field(
        description="No live session: never signed in, signed out, ended or timed out."
    )
    ended: str | Absent = absent(
        "Why the session ended, when something other than time or its own sign-out ended "
        "it not long ago: `elsewhere` (from another session), `account` (the password or "
        "the email address changed), `deleted` (the account was deleted).",
        enum=list(WHY_ENDED),
    )


class Extended(BaseModel):
    """The session's idle deadline slid forward now (never past its absolute limit)."""

    model_config = _examples({"expires_in": 600})

    expires_in: int = Field(ge=0, description="Seconds until the session ends unless used.")


class SignedOut(BaseModel):
    """The session has ended (its CSRF tokens with it) and its cookie is removed."""

    model_config = _examples({"message": "signed out"})

    message: str = Field(description='"signed out".')


class PasswordToJudge(BaseModel):
    """A password being typed: `password` (and `email`) on the sign-up form, or
    `new_password` on the password change form."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "password": "correct horse battery"},
                {"new_password": "a brand new passphrase"},
            ],
            # One of the two, not empty (else a 422 naming `password`).
            "anyOf": [
                {"required": ["password"], "properties": {"password": {"minLength": 1}}},
                {"required": ["new_password"], "properties": {"new_password": {"minLength": 1}}},
            ],
        }
    )

    email: str = Field(
        default="",
        description="The address it is for, signing up; signed in, the account's is used.",
    )
    password: str = Field(default="", description="The password typed on the sign-up form.")
    new_password: str = Field(
        default="", description="Or the one typed as a new password (used when no `password`)."
    )


class PasswordStrength(BaseModel):
    """How strong a password is, judged as a sign-up or a password change will judge it.
    It never contains the password."""

    model_config = _examples(
        {"score": 4, "acceptable": True, "message": None},
        {"score": 0, "acceptable": False, "message": "This is one of the most common passwords."},
    )

    score: int = Field(ge=0, le=4, description="zxcvbn's score, from 0 (weakest) to 4.")
    acceptable: bool = Field(description="Whether a sign-up or a password change takes it.")
    message: str | None = Field(description="Why it is refused; null when it is acceptable.")


class Health(BaseModel):
    """The process is up and serving."""

    model_config = _examples({"status": "ok"})

    status: Literal["ok"]


class MailQueueState(BaseModel):
    """The mail queue: workers seen lately and jobs waiting, or why it did not answer."""

    model_config = _examples({"queue": "ok", "workers": 2, "queued": 0, "waiting": 0})

    queue: str = Field(description='"ok", or "unavailable: <error type>".')
    workers: int | Absent = absent("Mail workers that reported lately.")
    queued: int | Absent = absent("Jobs not yet taken by a worker.")
    waiting: int | Absent = absent("Jobs not done, the running included.")


class Readiness(BaseModel):
    """Whether Redis and MySQL answer. Only the health token's holder, or a request made on
    the server's own machine, gets the details (each service's answer, the mail queue, and
    warnings); anyone else gets `status` alone."""

    redis: str | Absent = absent('"ok", or "unavailable: <error type>".')
    mysql: str | Absent = absent('"ok", or "unavailable: <error type>".')
    mail: MailQueueState | Absent = absent("Mail does not decide readiness: it waits in the queue.")
    warnings: list[str] | Absent = absent("Such as mail waiting with no worker to send it.")


class Ready(Readiness):
    """Ready: Redis and MySQL both answer."""

    model_config = _examples(
        {"status": "ok"},
        {
            "status": "ok",
            "redis": "ok",
            "mysql": "ok",
            "mail": {"queue": "ok", "workers": 2, "queued": 0, "waiting": 0},
        },
    )

    status: Literal["ok"]


class NotReady(Readiness):
    """Not ready: Redis or MySQL does not answer (take the instance out of rotation)."""

    model_config = _examples(
        {"status": "unavailable"},
        {
            "status": "unavailable",
            "redis": "ok",
            "mysql": "unavailable: TimeoutError",
            "mail": {"queue": "ok", "workers": 2, "queued": 0, "waiting": 0},
        },
    )

    status: Literal["unavailable"]


# Mailed links: forgot, reset, verification, address change, undo

LINK_EXAMPLE = "hT3o9wV1fLQm6cYb2XkR0sJpN8aZ4dGu7eIvWq5yMnB"


class LinkToken(BaseModel):
    """The path parameter of a mailed link's address (documented, not read through this:
    a token of any other shape names no link, and is answered as a dead one)."""

    token: str = Field(
        description=(
            "The token from the mailed link: 43 characters of base64url. A token that is "
            "unknown, used, expired or killed by a change to the account is a 410 `link_dead`."
        ),
        pattern=r"^[A-Za-z0-9_-]{43}$",
        examples=[LINK_EXAMPLE],
    )


class ForgotForm(Message):
    """What asking for a password-reset link takes (the page's form, for JSON clients)."""

    model_config = _examples(
        {
            "message": (
                'POST {"email"} here: if the address has an account, a link to set a new '
                "password is mailed to it."
            ),
            "link_lifetime": 3600,
        }
    )

    link_lifetime: int = Field(description="Seconds a mailed reset link works for.")


class ForgotPassword(BaseModel):
    """The address to mail a password-reset link to."""

    model_config = _examples({"email": "ada@example.com"})

    email: str = Field(
        description="The account's address; letter case does not matter.",
        json_schema_extra={**NOT_BLANK, "format": "email", "maxLength": 254},
    )


class ResetLinkSent(Message):
    """Asked: the same answer whether or not the address has an account."""

    model_config = _examples(
        {"message": "If an account exists for that address, we sent a link to reset its password."}
    )


class ResetLink(BaseModel):
    """A live password-reset link (looking does not use it up)."""

    model_config = _examples({"email": "ada@example.com", "valid": True})

    email: str = Field(description="The address of the account whose password it resets.")
    valid: bool = Field(description="Always true: a dead link is a 410.")


class NewPassword(BaseModel):
    """The new password a reset link sets."""

    model_config = _examples({"new_password": "a fine new passphrase"})

    new_password: str = Field(
        description="8 characters to 72 bytes, not a common or email-derived password.",
        json_schema_extra=NOT_BLANK,
    )


class PasswordReset(Message):
    """The new password is set and every session of the account has ended (this client's
    too, whichever account it was signed in to): sign in with it."""

    model_config = _examples({"message": "password reset; sign in with it"})


class VerifyLink(BaseModel):
    """A live verification link (looking does not use it up)."""

    model_config = _examples({"email": "ada@example.com", "valid": True})

    email: str = Field(description="The address it verifies.")
    valid: bool = Field(description="Always true: a dead link is a 410.")


class EmailVerified(Message):
    """The address the link was mailed to is verified."""

    model_config = _examples({"message": "email verified", "email": "ada@example.com"})

    email: str


class VerificationSent(Message):
    """A new verification link (202, `sent`), or none: the address is verified already
    (200)."""

    model_config = _examples(
        {"message": "We sent a new link to ada@example.com.", "sent": True},
        {"message": "Your email address is verified already.", "sent": False},
    )

    sent: bool = Field(description="Whether a link was put in the mail.")


class ChangeLink(BaseModel):
    """A live address-change link (looking does not use it up, nor change anything)."""

    model_config = _examples({"new_email": "ada@new.example.com", "valid": True})

    new_email: str = Field(description="The address the account gets when the link is used.")
    valid: bool = Field(description="Always true: a dead link is a 410.")


class EmailChanged(Message):
    """The account's address is the link's. Every other session has ended; a client
    signed in to the account goes on in a new session (its cookie is set) with a new CSRF
    token, and any other client is not signed in."""

    model_config = _examples(
        {
            "message": "email changed",
            "email": "ada@new.example.com",
            "signed_in": True,
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 600},
            "csrf_token": "Qx3vN0aZ8kLm...1700000000.Zm9v...",
        },
        {
            "message": "email changed",
            "email": "ada@new.example.com",
            "signed_in": False,
        },
    )

    email: str = Field(description="The account's address now.")
    signed_in: bool = Field(description="Whether this client is signed in to the account.")
    session: SessionSummary | Absent = absent("The new session, when signed in.")
    csrf_token: str | Absent = absent("The new session's CSRF token, when signed in.")


class UndoLink(BaseModel):
    """A live undo link (looking does not use it up, nor change anything)."""

    model_config = _examples({"email": "ada@example.com", "valid": True})

    email: str = Field(description="The earlier address it puts back.")
    valid: bool = Field(description="Always true: a dead link is a 410.")


class ChangeUndone(Message):
    """The earlier address is the account's again; every session has ended and the
    password no longer works: set a new one with the reset link at `reset_path`."""

    model_config = _examples(
        {
            "message": "address restored; set a new password",
            "email": "ada@example.com",
            "reset_path": f"/password/reset/{LINK_EXAMPLE}",
        }
    )

    email: str = Field(description="The address put back.")
    reset_path: str = Field(description="The path of a password-reset link for it.")


# Passkeys


class PasskeyReauthentication(BaseModel):
    """The account's current password, typed again before a passkey is added; or, for the
    browser's own offer right after a password sign-in, ``mediation`` "conditional"."""

    model_config = _examples({"current_password": "correct horse battery"})

    current_password: str = Field(
        default="",
        description=(
            "The account's password; with a second factor on, a current code from the "
            "authenticator app will do."
        ),
    )
    mediation: str = Field(
        default="",
        description=(
            '"conditional": options for a conditional create, without the password, in a '
            "session signed in with one in the last five minutes, for an account without "
            "passkeys (else a 403, or a 409)."
        ),
    )


class CeremonyOptions(BaseModel):
    """The options of a WebAuthn ceremony, as JSON (base64url for binary values): hand
    ``public_key`` to ``PublicKeyCredential.parseCreationOptionsFromJSON`` (adding) or
    ``parseRequestOptionsFromJSON`` (signing in). Its challenge is good once, for five
    minutes."""

    model_config = _examples(
        {
            "public_key": {
                "challenge": "q8h0...",
                "rpId": "accounts.example.com",
                "timeout": 300000,
                "userVerification": "required",
            }
        }
    )

    public_key: dict[str, Any]


CREDENTIAL = (
    "The credential the browser made, as `PublicKeyCredential.toJSON()` gives it "
    "(`id`, `rawId`, `type`, `response` with base64url values)."
)


class PasskeyRegistration(BaseModel):
    """The browser's answer to the options of POST /api/v1/passkeys/registration/options."""

    model_config = _examples(
        {
            "credential": {
                "id": "Y3JlZA",
                "rawId": "Y3JlZA",
                "type": "public-key",
                "response": {"clientDataJSON": "eyJ0...", "attestationObject": "o2Nm..."},
            },
            "name": "Laptop",
        }
    )

    credential: dict[str, Any] = Field(description=CREDENTIAL)
    name: str = Field(
        default="",
        max_length=64,
        description="What to call it (up to 64 characters); empty: the device it was made on.",
    )


class PasskeyAssertion(BaseModel):
    """The browser's answer to the options of POST /api/v1/passkeys/authentication/options."""

    model_config = _examples(
        {
            "credential": {
                "id": "Y3JlZA",
                "rawId": "Y3JlZA",
                "type": "public-key",
                "response": {
                    "clientDataJSON": "eyJ0...",
                    "authenticatorData": "SZYN...",
                    "signature": "MEUC...",
                    "userHandle": "dXNlcg",
                },
            }
        }
    )

    credential: dict[str, Any] = Field(description=CREDENTIAL)


class PasskeyInfo(BaseModel):
    """One passkey of the account."""

    id: int
    name: str
    created_at: str = Field(description="ISO 8601, in UTC, to the second.")
    last_used_at: str | None = Field(description="ISO 8601, in UTC; null: never used.")
    backed_up: bool = Field(description="The authenticator says the key is synced elsewhere.")


class PasskeyList(BaseModel):
    """The account's passkeys, the oldest first."""

    model_config = _examples(
        {
            "passkeys": [
                {
                    "id": 7,
                    "name": "Chrome on Linux",
                    "created_at": "2026-01-31T12:00:00+00:00",
                    "last_used_at": None,
                    "backed_up": False,
                }
            ]
        }
    )

    passkeys: list[PasskeyInfo]


class PasskeyName(BaseModel):
    """A passkey's new name."""

    model_config = _examples({"name": "Phone"})

    name: str = Field(description="1 to 64 characters.", max_length=64, json_schema_extra=NOT_BLANK)


class PasskeyChanged(BaseModel):
    """A passkey added or renamed."""

    model_config = _examples(
        {
            "message": "passkey added",
            "passkey": {
                "id": 7,
                "name": "Laptop",
                "created_at": "2026-01-31T12:00:00+00:00",
                "last_used_at": None,
                "backed_up": False,
            },
        }
    )

    message: str = Field(description='"passkey added" or "passkey renamed".')
    passkey: PasskeyInfo


class AcceptedCredentials(BaseModel):
    """The account's passkeys as the WebAuthn Signals API names them, for
    ``PublicKeyCredential.signalAllAcceptedCredentials({rpId, userId,
    allAcceptedCredentialIds})``: a password manager then forgets the others."""

    rp_id: str
    user_id: str = Field(description="The account's user handle, base64url.")
    credential_ids: list[str] = Field(description="base64url.")


class PasskeyRemoved(Message):
    """A passkey removed; a notice went to the account's address."""

    model_config = _examples(
        {
            "message": "passkey removed",
            "id": 7,
            "credential_id": "Y3JlZA",
            "accepted": {
                "rp_id": "accounts.example.com",
                "user_id": "dXNlcg",
                "credential_ids": [],
            },
        }
    )

    id: int
    credential_id: str = Field(
        description="base64url: for ``PublicKeyCredential.signalUnknownCredential``."
    )
    accepted: AcceptedCredentials


class PasskeySignedIn(SignedIn):
    """Signed in with a passkey: as a password sign-in answers, and the passkeys the
    account still has (for the Signals API)."""

    model_config = _examples(
        {
            "message": "signed in",
            "email": "ada@example.com",
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 600},
            "csrf_token": "Qx3vN0aZ8kLm...1700000000.Zm9v...",
            "accepted": {
                "rp_id": "accounts.example.com",
                "user_id": "dXNlcg",
                "credential_ids": ["Y3JlZA"],
            },
        }
    )

    accepted: AcceptedCredentials


# Sessions and account changes (blueprints/account.py)


class SessionDetail(BaseModel):
    """One signed-in session of the account, as the sessions list shows it."""

    model_config = _examples(
        {
            "id": "Qx3vN0aZ8kLm",
            "current": True,
            "device": "Firefox on Linux",
            "ip": "198.51.100.7",
            "started_at": "2026-01-31T12:00:00+00:00",
            "last_active_at": "2026-01-31T12:05:00+00:00",
            "expires_in": 599,
            "signed_in_with": "password_and_code",
        }
    )

    id: str = Field(description="The session's public id: POST /sessions/{id}/revoke ends it.")
    current: bool = Field(description="Whether this is the session the request was made in.")
    device: str = Field(description="The browser and system its User-Agent names.")
    ip: str | None = Field(description="The address it was last used from; null when unknown.")
    started_at: str = Field(description="ISO 8601, in UTC, to the second.")
    last_active_at: str = Field(description="ISO 8601, in UTC, to the second.")
    expires_in: int = Field(description="Seconds until it ends unless used.")
    signed_in_with: str | None = Field(
        description=(
            "How it was signed in: `password`, `password_and_code`, `recovery_code`, "
            "`passkey` or `sign_up`; null for sessions from before this was kept."
        )
    )


class SessionList(BaseModel):
    """Every live session of the account: this one first, then the most recently active."""

    model_config = _examples(
        {
            "sessions": [
                {
                    "id": "Qx3vN0aZ8kLm",
                    "current": True,
                    "device": "Firefox on Linux",
                    "ip": "198.51.100.7",
                    "started_at": "2026-01-31T12:00:00+00:00",
                    "last_active_at": "2026-01-31T12:05:00+00:00",
                    "expires_in": 599,
                }
            ]
        }
    )

    sessions: list[SessionDetail]


class SessionId(BaseModel):
    """The path parameter of a session's address (documented, not read through this: an id
    of any other shape names no session, and is answered as an unknown one)."""

    public_id: str = Field(
        description=(
            "A session's public id, from GET /sessions: 12 characters of base64url. One "
            "that is unknown, has ended, or is another account's is a 404 `not_found`."
        ),
        pattern=r"^[A-Za-z0-9_-]{12}$",
        examples=["Rt5bW2cY9pQs"],
    )


class SessionEnded(BaseModel):
    """A session ended. Ending the session the request was made in is signing out: its
    cookie no longer works."""

    model_config = _examples({"message": "session ended", "id": "Rt5bW2cY9pQs"})

    message: str = Field(description='"session ended", or "signed out" when it was this one.')
    id: str = Field(description="The public id of the session that ended.")


class OtherSessionsEnded(Message):
    """Every other session of the account ended; this one goes on."""

    model_config = _examples({"message": "other sessions ended", "ended": 2})

    ended: int = Field(description="How many sessions ended (0 when there were none).")


class PasswordChange(BaseModel):
    """The current password, and the new one."""

    model_config = _examples(
        {"current_password": "correct horse battery", "new_password": "staple grape lantern"}
    )

    current_password: str = Field(
        description="With a second factor on, a current code from the app works too.",
        json_schema_extra=NOT_BLANK,
    )
    new_password: str = Field(
        description=(
            "8 characters to 72 bytes, not a common or email-derived password, and not the "
            "current one."
        ),
        json_schema_extra={"minLength": 8, "maxLength": 72},
    )


class PasswordChanged(Message):
    """The password is changed: every other session has ended, and this one goes on under a
    new cookie (set in this answer) and a new CSRF token (tokens from before no longer work)."""

    model_config = _examples(
        {
            "message": "password changed",
            "session": {"id": "Vb8nM1xZ4kLp", "expires_in": 600},
            "csrf_token": "Vb8nM1xZ4kLp...1700000000.Zm9v...",
        }
    )

    session: SessionSummary = Field(description="This session, under its new id.")
    csrf_token: str = Field(description="The new session's CSRF token, for its next POSTs.")


class EmailAddress(BaseModel):
    """The account's address, as this session knows it."""

    model_config = _examples({"email": "ada@example.com"})

    email: str


class EmailChange(BaseModel):
    """The current password, and the address to move the account to."""

    model_config = _examples(
        {"current_password": "correct horse battery", "new_email": "ada.new@example.com"}
    )

    current_password: str = Field(json_schema_extra=NOT_BLANK)
    new_email: str = Field(
        description="Up to 254 characters; not the current address.",
        json_schema_extra={"format": "email", "maxLength": 254},
    )


class EmailChangeSent(Message):
    """A link went to the new address; nothing changes until it is followed. The answer is
    the same whether or not another account has that address."""

    model_config = _examples(
        {"message": "link sent to the new address", "new_email": "ada.new@example.com"}
    )

    new_email: str = Field(description="The new address, as it will be stored.")


class AccountDeletion(BaseModel):
    """The account's password, to confirm."""

    model_config = _examples({"password": "correct horse battery"})

    password: str = Field(
        description="With a second factor on, a current code from the app works too.",
        json_schema_extra=NOT_BLANK,
    )


class AccountDeleted(Message):
    """The account and every session of it are gone."""

    model_config = _examples({"message": "account deleted"})


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

    recovery_codes_left: int | Absent = absent(
        "Only after a recovery code: how many unused ones are left."
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

"""The declared shapes of JSON requests and answers (pydantic models). The OpenAPI
document (``GET /openapi.json``) is made from them and from each route's ``described``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
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
            "created_at": "2026-01-31T12:00:00+00:00",
            "passkeys": 1,
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 598},
        }
    )

    email: str
    email_verified: bool
    created_at: str = Field(description="ISO 8601, in UTC, to the second.")
    passkeys: int = Field(description="How many passkeys the account has.")
    session: SessionSummary


# Passkeys


class PasskeyReauthentication(BaseModel):
    """The account's current password, typed again before a passkey is added; or, for the
    browser's own offer right after a password sign-in, ``mediation`` "conditional"."""

    model_config = _examples({"current_password": "correct horse battery"})

    current_password: str = Field(default="", description="The account's password.")
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


class PasskeyRemoved(BaseModel):
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

    message: str
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

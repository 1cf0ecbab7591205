"""The declared shapes of JSON requests and answers (pydantic models). The OpenAPI
document (``GET /openapi.json``) is made from them and from each route's ``described``."""

from __future__ import annotations

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
            "created_at": "2026-01-31T12:00:00+00:00",
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 598},
        }
    )

    email: str
    email_verified: bool
    created_at: str = Field(description="ISO 8601, in UTC, to the second.")
    session: SessionSummary


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
        }
    )

    id: str = Field(description="The session's public id: POST /sessions/{id}/revoke ends it.")
    current: bool = Field(description="Whether this is the session the request was made in.")
    device: str = Field(description="The browser and system its User-Agent names.")
    ip: str | None = Field(description="The address it was last used from; null when unknown.")
    started_at: str = Field(description="ISO 8601, in UTC, to the second.")
    last_active_at: str = Field(description="ISO 8601, in UTC, to the second.")
    expires_in: int = Field(description="Seconds until it ends unless used.")


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


class SessionEnded(BaseModel):
    """A session ended. Ending the session the request was made in is signing out: its
    cookie no longer works."""

    model_config = _examples({"message": "session ended", "id": "Rt5bW2cY9pQs"})

    message: str = Field(description='"session ended", or "signed out" when it was this one.')
    id: str = Field(description="The public id of the session that ended.")


class OtherSessionsEnded(BaseModel):
    """Every other session of the account ended; this one goes on."""

    model_config = _examples({"message": "other sessions ended", "ended": 2})

    message: str
    ended: int = Field(description="How many sessions ended (0 when there were none).")


class PasswordChange(BaseModel):
    """The current password, and the new one."""

    model_config = _examples(
        {"current_password": "correct horse battery", "new_password": "staple grape lantern"}
    )

    current_password: str = Field(json_schema_extra=NOT_BLANK)
    new_password: str = Field(
        description=(
            "8 characters to 72 bytes, not a common or email-derived password, and not the "
            "current one."
        ),
        json_schema_extra={"minLength": 8, "maxLength": 72},
    )


class PasswordChanged(BaseModel):
    """The password is changed: every other session has ended, and this one goes on under a
    new cookie (set in this answer) and a new CSRF token (tokens from before no longer work)."""

    model_config = _examples(
        {
            "message": "password changed",
            "session": {"id": "Vb8nM1xZ4kLp", "expires_in": 600},
            "csrf_token": "Vb8nM1xZ4kLp...1700000000.Zm9v...",
        }
    )

    message: str
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


class EmailChangeSent(BaseModel):
    """A link went to the new address; nothing changes until it is followed. The answer is
    the same whether or not another account has that address."""

    model_config = _examples(
        {"message": "link sent to the new address", "new_email": "ada.new@example.com"}
    )

    message: str
    new_email: str = Field(description="The new address, as it will be stored.")


class AccountDeletion(BaseModel):
    """The account's password, to confirm."""

    model_config = _examples({"password": "correct horse battery"})

    password: str = Field(json_schema_extra=NOT_BLANK)


class AccountDeleted(BaseModel):
    """The account and every session of it are gone."""

    model_config = _examples({"message": "account deleted"})

    message: str

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
            "session": {"id": "Qx3vN0aZ8kLm", "expires_in": 598},
        }
    )

    email: str
    email_verified: bool
    created_at: str = Field(description="ISO 8601, in UTC, to the second.")
    session: SessionSummary

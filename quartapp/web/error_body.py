"""The one JSON error shape, ``{"code", "message", "fields"?}``, and every machine code.

``code`` is stable: a program branches on it. ``message`` is written for the people who
write such programs; where the page's wording speaks to someone in a browser ("the fields
below", "Reload the page"), JSON clients get ``API_MESSAGES`` instead. ``fields`` names
each failing field when there are any (always on a 422 ``validation_failed``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Every code an error can carry: its status, and when. docs/api.md has the same table (a
# test compares them).
CODES = {
    "bad_request": (400, "the body is not a JSON object (malformed JSON, invalid UTF-8, an array)"),
    "passkey_invalid": (
        400,
        "a passkey to add did not check out, or its challenge is unknown, used or expired",
    ),
    "unauthenticated": (401, "the route needs a session: sign in first"),
    "invalid_credentials": (
        401,
        "a sign-in refused: the same answer for every wrong email or password",
    ),
    "passkey_refused": (
        401,
        "a passkey sign-in refused: its signature, challenge, origin, user handle or counter "
        "did not check out",
    ),
    "passkey_unknown": (401, "a passkey sign-in with a passkey no account has (removed?)"),
    "forbidden": (403, "not allowed"),
    "csrf_failed": (403, "the CSRF token is missing, wrong, or expired"),
    "invalid_code": (
        401,
        "the sign-in's second step refused the code: not a current one, or not an unused "
        "recovery code",
    ),
    "two_factor_ended": (
        401,
        "no pending second step: it took over 5 minutes, had 5 wrong codes, or never began; "
        "sign in with the password again",
    ),
    "wrong_password": (403, "the current password given to confirm a change is not the account's"),
    "wrong_code": (
        403,
        "the code given to confirm a change is not a current one (or an unused recovery code)",
    ),
    "not_found": (404, "nothing at this address, or no such session of yours"),
    "method_not_allowed": (405, "the address does not take this method"),
    "request_timeout": (408, "the body did not arrive in time"),
    "conflict": (409, "another request changed the account at the same moment: read it and retry"),
    "email_taken": (409, "another account has this address (in any letter case)"),
    "passkey_taken": (409, "the passkey is registered already"),
    "passkey_limit": (409, "the account has as many passkeys as it may have (20)"),
    "passkey_exists": (
        409,
        "the account has a passkey already: the browser's offer is for accounts without one",
    ),
    "last_way_in": (409, "the account's last way to sign in cannot be removed"),
    "gone": (410, "the thing asked for has gone"),
    "link_dead": (
        410,
        "a mailed link that is unknown, used, expired, or killed by a change to the account",
    ),
    "too_large": (413, "the body is over the size limit, or a form has too many parts"),
    "unsupported_media_type": (415, "the body is neither JSON nor a web form"),
    "validation_failed": (422, "fields are missing or invalid; `fields` names each one"),
    "throttled": (429, "too many attempts: wait `Retry-After` seconds"),
    "cookies_too_large": (431, "the Cookie headers are over the size limit"),
    "internal_error": (500, "a fault in the app"),
    "unavailable": (
        503,
        "Redis, MySQL or password checking is not answering: retry after `Retry-After`",
    ),
}

# JSON wording for codes whose page wording speaks to someone in a browser.
API_MESSAGES = {
    "validation_failed": "Some fields are missing or invalid: `fields` names each one.",
    "csrf_failed": (
        "The CSRF token is missing, invalid or expired: get one from GET /api/v1/csrf "
        "and send it in the X-CSRF-Token header."
    ),
    "wrong_password": "The password given is not the account's: `fields` names the field.",
    "conflict": (
        "Another request changed the account at the same moment: read it again and retry."
    ),
}


class ErrorBody(BaseModel):
    """An error: a stable machine code, a message for people, and the failing fields."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "validation_failed",
                    "message": API_MESSAGES["validation_failed"],
                    "fields": {"password": "Use at least 8 characters."},
                },
                {
                    "code": "throttled",
                    "message": "Too many attempts. Please try again in 1 minute.",
                },
            ]
        }
    )

    code: str = Field(
        description="Stable: a program branches on it (docs/api.md says when each is sent).",
        json_schema_extra={"enum": list(CODES)},
    )
    message: str = Field(description="For the people who write and use the program.")
    fields: dict[str, str] | None = Field(
        default=None, description="Each failing field and what is wrong with it."
    )

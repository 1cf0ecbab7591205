"""The sign-in flow: every way into an account ends here, in ``start_session``.

A sign-in has steps: a first proof (a password today), then, for some accounts, a second
one still pending, and last the session's start. This module is the one place where a
proof becomes a session, so that each way in (password, password and a code, a
recovery code, a passkey) is recorded the same way and nothing that belongs to "a
session has started" happens earlier:

- the session gets a brand-new token (``Sessions.sign_in``), only if the password the
  first step checked is still the account's current one (``User.credentials_version``);
- how it was signed in (``Way``) is kept in the session's data, for ``/sessions``;
- the device is noted (known devices, the new-device notice) and the unverified-address
  reminder set.

The steps before (the password check, a pending second step and its throttle) belong to
the modules that make them (``service.authenticate`` for the password); each hands over
to ``start_session`` when its proof is complete.
"""

from __future__ import annotations

from enum import StrEnum

from quartapp.accounts.known_devices import note_sign_in_device
from quartapp.accounts.models import User
from quartapp.accounts.verification import note_unverified
from quartapp.sessions.extension import get_sessions
from quartapp.sessions.store import CredentialsChanged, SessionRecord
from quartapp.web.errors import AppError

SIGN_IN_FAILED = "Incorrect email or password."
# The key, in a session's data, of how it was signed in.
WAY_KEY = "way"


class Way(StrEnum):
    """How a session was signed in (kept in its data; ``/sessions`` shows the label)."""

    PASSWORD = "password"  # noqa: S105 (a way in, not a password)
    PASSWORD_AND_CODE = "password_and_code"  # noqa: S105
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"
    SIGN_UP = "sign_up"

    @property
    def label(self) -> str:
        return WAY_LABELS[self]


WAY_LABELS = {
    Way.PASSWORD: "password",
    Way.PASSWORD_AND_CODE: "password + code",
    Way.RECOVERY_CODE: "recovery code",
    Way.PASSKEY: "passkey",
    Way.SIGN_UP: "sign-up",
}


def way_of(record: SessionRecord) -> Way | None:
    """How ``record``'s session was signed in; None for sessions started before this was
    kept."""
    try:
        return Way(record.data.get(WAY_KEY, ""))
    except ValueError:
        return None


async def start_session(user: User, way: Way) -> SessionRecord:
    """Start a new session for ``user`` on this request, signed in ``way``: the last step
    of every sign-in. A 401 ``invalid_credentials`` when the account's password changed
    (or the account went) since the first step checked it."""
    try:
        record = await get_sessions().sign_in(
            user.id,
            user.email,
            credentials_version=user.credentials_version,
            data={WAY_KEY: way.value},
        )
    except CredentialsChanged:
        raise AppError(SIGN_IN_FAILED, status=401, code="invalid_credentials") from None
    note_unverified(user.email_verified)
    await note_sign_in_device(user.id)
    return record

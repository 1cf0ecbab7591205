"""A CSRF token is ``binding.signed_at.signature``: the signature HMAC-SHA256 of the rest
under a key derived from the secret key, in base64url without padding."""

from __future__ import annotations

import base64
import hmac

from hypothesis import given
from hypothesis import strategies as st
from quart import Quart

from quartapp.sessions.csrf import KEY_PURPOSE, CsrfProtection

SECRET = "a secret key for these tokens only"


def protection() -> CsrfProtection:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY=SECRET,
        COOKIE_SECURE=False,
        CSRF_TOKEN_MAX_AGE=3600,
        SESSION_ABSOLUTE_TIMEOUT=8 * 3600,
    )
    return CsrfProtection(app)


PROTECTION = protection()


@given(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1),
    st.integers(min_value=0, max_value=10**12 - 1),  # twelve digits at most
)
def test_a_token_is_signed_as_documented_and_reads_back(binding: str, signed_at: int) -> None:
    token = PROTECTION.sign(binding, signed_at)
    key = hmac.digest(SECRET.encode(), KEY_PURPOSE, "sha256")
    digest = hmac.digest(key, f"{binding}.{signed_at}".encode(), "sha256")
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert token == f"{binding}.{signed_at}.{signature}"
    assert PROTECTION.unsign(token) == (binding, signed_at)
    assert PROTECTION.unsign(token[:-1] + ("A" if token[-1] != "A" else "B")) is None

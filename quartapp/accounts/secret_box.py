"""Encryption at rest for secrets the app must read back: the authenticator apps' TOTP
secrets (a hash would not do, since checking a code needs the secret itself).

AES-256-GCM, with a key derived by HKDF-SHA256 from the app's secret key for this purpose
alone (``INFO``), so the key is never the one that signs cookies. Each value gets a fresh
random 96-bit nonce, and is bound to its row (``context``, e.g. the user's id, as GCM's
associated data): a ciphertext copied to another account's row does not open there.

A sealed value reads ``v1.<base64url of nonce + ciphertext + tag>``. After a rotation of the
secret key (the old one kept in ``SECRET_KEY_FALLBACKS``), values sealed under an old key
still open, and ``open`` says so, so the caller seals them again under the current key;
docs/deployment.md says when the old key may go.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from quart import current_app

VERSION = "v1."
INFO = b"quartapp secrets at rest v1"
NONCE_BYTES = 12


class Unreadable(Exception):
    """No key the app has opens this value (the secret key changed without a fallback, or
    the value was altered)."""


def derive_key(secret: str | bytes) -> bytes:
    """The 256-bit encryption key derived from a secret key."""
    material = secret.encode() if isinstance(secret, str) else bytes(secret)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(material)


class SecretBox:
    def __init__(self, secret: str | bytes, fallbacks: Sequence[str | bytes] = ()) -> None:
        self._current = AESGCM(derive_key(secret))
        self._earlier = [AESGCM(derive_key(fallback)) for fallback in fallbacks]

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext.encode(), context.encode())
        return VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, value: str, context: str) -> tuple[str, bool]:
        """The plaintext, and whether it was sealed under an earlier secret key (then seal
        it again). Raises Unreadable."""
        if not value.startswith(VERSION):
            raise Unreadable("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(value[len(VERSION) :])
        except (binascii.Error, ValueError):
            raise Unreadable("not a sealed value") from None
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        for earlier, cipher in enumerate((self._current, *self._earlier)):
            try:
                plaintext = cipher.decrypt(nonce, sealed, context.encode())
            except (InvalidTag, ValueError):
                continue
            return plaintext.decode(), earlier > 0
        raise Unreadable("no secret key opens it")


EXTENSION = "quartapp.secret_box"


def get_secret_box() -> SecretBox:
    """The app's box, made on first use (its keys are derived once per process)."""
    box: SecretBox | None = current_app.extensions.get(EXTENSION)
    if box is None:
        config = current_app.config
        box = SecretBox(config["SECRET_KEY"], config.get("SECRET_KEY_FALLBACKS") or ())
        current_app.extensions[EXTENSION] = box
    return box

"""A software WebAuthn authenticator for the tests: it answers the server's options the way
a browser and a platform authenticator would (a P-256 key, "none" attestation), and can be
told to answer wrongly (another origin, RP id or challenge, a counter that goes back, no
user verification), so that every check the server makes can be seen to refuse."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# Authenticator data flags (WebAuthn §6.1).
USER_PRESENT = 0x01
USER_VERIFIED = 0x04
BACKUP_ELIGIBLE = 0x08
BACKED_UP = 0x10
ATTESTED = 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """A passkey the authenticator holds."""

    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    """Holds passkeys and answers ``navigator.credentials.create()`` and ``.get()`` options
    (as the server's JSON gives them) with what ``PublicKeyCredential.toJSON()`` would."""

    origin: str
    credentials: list[Credential] = field(default_factory=list)

    def client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        verified: bool = True,
        present: bool = True,
        flags: int = 0,
        copy_of: Credential | None = None,
    ) -> dict[str, Any]:
        """A new passkey for the options' user, as ``create()`` answers (``copy_of``: one
        with the same id and key as another, as a cloned authenticator would make)."""
        for excluded in options.get("excludeCredentials", []):
            if any(b64url(held.id) == excluded["id"] for held in self.credentials):
                raise ValueError("InvalidStateError: a passkey for this account is here already")
        credential = Credential(
            id=copy_of.id if copy_of else secrets.token_bytes(32),
            key=copy_of.key if copy_of else ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id or options["rp"]["id"],
            user_handle=unb64url(options["user"]["id"]),
        )
        self.credentials.append(credential)
        data_flags = (
            (USER_PRESENT if present else 0) | ATTESTED | (USER_VERIFIED if verified else 0) | flags
        )
        attested = (
            bytes(16)  # AAGUID
            + struct.pack(">H", len(credential.id))
            + credential.id
            + credential.cose_public_key()
        )
        auth_data = (
            hashlib.sha256(credential.rp_id.encode()).digest()
            + bytes([data_flags])
            + struct.pack(">I", credential.sign_count)
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self.client_data("webauthn.create", challenge or options["challenge"], origin)
        return {
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        verified: bool = True,
        sign_count: int | None = None,
        user_handle: bytes | None = None,
    ) -> dict[str, Any]:
        """An assertion by ``credential`` (the first one held by default), as ``get()``
        answers; the counter goes up by one unless ``sign_count`` says what to send."""
        held = credential or self.credentials[0]
        held.sign_count = held.sign_count + 1 if sign_count is None else sign_count
        data_flags = USER_PRESENT | (USER_VERIFIED if verified else 0)
        auth_data = (
            hashlib.sha256((rp_id or held.rp_id).encode()).digest()
            + bytes([data_flags])
            + struct.pack(">I", held.sign_count)
        )
        client_data = self.client_data("webauthn.get", challenge or options["challenge"], origin)
        signature = held.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(held.id),
            "rawId": b64url(held.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(held.user_handle if user_handle is None else user_handle),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

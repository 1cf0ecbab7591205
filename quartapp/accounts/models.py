from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class User(Model):
    id = fields.BigIntField(primary_key=True)
    # Stored in canonical (lower-case) form, so the unique index is case-insensitive.
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=60)
    # Goes up with every password change; a sign-in starts a session only if the version of
    # the password it checked is still current (see SessionStore.retire_credentials).
    credentials_version = fields.IntField(default=0)
    # The owner followed a link mailed to this address (a verification or a reset link).
    email_verified = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The second factor (accounts/two_factor.py). The authenticator app's secret, encrypted
    # (accounts/secret_box.py): set when enrolment starts, in use once a code confirmed it.
    totp_secret = fields.CharField(max_length=255, null=True)
    two_factor_enabled = fields.BooleanField(default=False)
    # The 30-second step of the last code accepted: a code of that step or an earlier one
    # is refused, so no code works twice.
    totp_last_step = fields.BigIntField(null=True)

    class Meta:
        table = "users"

    def __str__(self) -> str:
        return f"User {self.id}"


class Passkey(Model):
    """A WebAuthn credential (a passkey) its owner signs in with, as the authenticator
    registered it. Deleting the account deletes its passkeys (the foreign key cascades)."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "quartapp.User", related_name="passkeys", on_delete=fields.CASCADE
    )
    # The SHA-256 of the credential id, in hex: the unique index a sign-in looks it up by
    # (a credential id may be up to 1023 bytes, too long for an index of its own).
    credential_key = fields.CharField(max_length=64, unique=True)
    # The credential id and the COSE public key the signatures are checked with, both in
    # base64url (as text: the MySQL driver cannot bind bytes here).
    credential_id = fields.TextField()
    public_key = fields.TextField()
    # The authenticator's signature counter as last seen: one that goes back is refused.
    sign_count = fields.BigIntField(default=0)
    # Whether the authenticator may sync the key (backup eligible), and whether it has.
    backup_eligible = fields.BooleanField(default=False)
    backed_up = fields.BooleanField(default=False)
    # The transports the browser reported ("internal,hybrid"), handed back as hints.
    transports = fields.CharField(max_length=255, default="")
    # The account's user handle in WebAuthn: random, the same for each of its passkeys,
    # never the account's id or address.
    user_handle = fields.CharField(max_length=86)
    name = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "passkeys"

    def __str__(self) -> str:
        return f"Passkey {self.id}"


class RecoveryCode(Model):
    # One unused recovery code of an account, kept only as a hash (accounts/two_factor.py);
    # using it deletes the row.

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "quartapp.User", related_name="recovery_codes", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=64)

    class Meta:
        table = "recovery_codes"
        unique_together = (("user", "code_hash"),)

    def __str__(self) -> str:
        return f"Recovery code {self.id}"

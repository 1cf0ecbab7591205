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

    class Meta:
        table = "users"

    def __str__(self) -> str:
        return f"User {self.id}"

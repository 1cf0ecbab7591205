from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class User(Model):
    id = fields.BigIntField(primary_key=True)
    # Stored in canonical (lower-case) form, so the unique index is case-insensitive.
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=60)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"

    def __str__(self) -> str:
        return f"User {self.id}"

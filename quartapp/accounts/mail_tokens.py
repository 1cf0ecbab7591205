"""The tokens in mailed links: password resets, address verifications and address changes.

A token is 256 random bits (``secrets.token_urlsafe(32)``); Redis keeps only its SHA-256,
under ``<prefix>mt:<purpose>:<hash>`` with the link's lifetime as TTL, holding the account,
its credentials version when the link was sent, and the address the link is for. Each
account has one live link per purpose: ``<prefix>mt:<purpose>:user:<id>`` names the newest,
and an older one no longer works (its record is deleted). Deleting the account deletes the
live links' records (``forget_user``). A token is used up with GETDEL, so two requests with one
link cannot both succeed. A reset link also dies with any password change, as its
credentials version is then no longer the account's. Every command touches one key, so this
works on every Redis topology the app supports.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from quart import current_app

from quartapp.infra.redis_client import RedisConnection, get_redis
from quartapp.web.errors import AppError

Purpose = Literal["reset", "verify", "email"]
PURPOSES: tuple[Purpose, ...] = ("reset", "verify", "email")
# What secrets.token_urlsafe(32) makes; anything else names no link.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a live link is for."""

    user_id: int
    credentials_version: int
    email: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class MailTokens:
    def __init__(self, redis: RedisConnection, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, purpose: Purpose, digest: str) -> str:
        return f"{self.prefix}mt:{purpose}:{digest}"

    def _latest(self, purpose: Purpose, user_id: int) -> str:
        return f"{self.prefix}mt:{purpose}:user:{user_id}"

    async def issue(self, purpose: Purpose, grant: LinkGrant, ttl: int) -> str:
        """A new token for ``grant``; the account's earlier link of this purpose dies."""
        token = secrets.token_urlsafe(32)
        digest = token_hash(token)
        value = json.dumps(
            {"u": grant.user_id, "v": grant.credentials_version, "e": grant.email},
            separators=(",", ":"),
        )
        await self.redis.set(self._key(purpose, digest), value, ex=ttl)
        earlier = await self.redis.set(
            self._latest(purpose, grant.user_id), digest, ex=ttl, get=True
        )
        if isinstance(earlier, str | bytes):  # dead now; its record (the address) goes too
            await self.redis.delete(self._key(purpose, _text(earlier)))
        return token

    async def peek(self, purpose: Purpose, token: str) -> LinkGrant | None:
        """What a live token grants, without using it up; None for any other string."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None
        digest = token_hash(token)
        grant = _grant(await self.redis.get(self._key(purpose, digest)))
        if grant is None or not await self._newest(purpose, grant, digest):
            return None
        return grant

    async def use(self, purpose: Purpose, token: str) -> LinkGrant | None:
        """Use a token up: what it granted, or None if it was not live. Only one caller
        ever gets a grant for one token."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None
        digest = token_hash(token)
        grant = _grant(await self.redis.getdel(self._key(purpose, digest)))
        if grant is None or not await self._newest(purpose, grant, digest):
            return None
        await self.redis.delete(self._latest(purpose, grant.user_id))
        return grant

    async def revoke(self, purpose: Purpose, user_id: int) -> None:
        """The account's live link of this purpose (if any) stops working."""
        await self.redis.delete(self._latest(purpose, user_id))

    async def forget_user(self, user_id: int) -> None:
        """Delete the account's live links and their records (each holds its address), for
        an account that is deleted."""
        for purpose in PURPOSES:
            latest = self._latest(purpose, user_id)
            if digest := await self.redis.getdel(latest):
                await self.redis.delete(self._key(purpose, _text(digest)))

    async def _newest(self, purpose: Purpose, grant: LinkGrant, digest: str) -> bool:
        latest = await self.redis.get(self._latest(purpose, grant.user_id))
        if isinstance(latest, bytes):
            latest = latest.decode()
        return latest == digest


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _grant(value: str | bytes | None) -> LinkGrant | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
        return LinkGrant(int(data["u"]), int(data["v"]), str(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None


LINK_DEAD = (
    "This link has expired or has already been used. Ask for a new one below, and use the "
    "newest mail we send."
)


class LinkDead(AppError):
    """A mailed link that is unknown, used, expired, or replaced by a newer one."""

    def __init__(self) -> None:
        super().__init__(LINK_DEAD, status=410, code="link_dead")


def get_mail_tokens() -> MailTokens:
    return MailTokens(get_redis(), str(current_app.config["REDIS_PREFIX"]))

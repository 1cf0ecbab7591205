"""The tokens in mailed links: password resets, address verifications and address changes.

A link is made when it is asked for, not when its mail goes out: the request fixes what it
grants (the account, its credentials version at that moment, and the address the link is
for) and puts only the link's id on the mail queue. However late the mail then goes, a
password or address change made meanwhile has raised the account's credentials version, and
the link is dead (the worker then sends nothing). Every try to send one job sends the same
link.

The token is ``HMAC-SHA256(key, purpose + link id)`` (256 bits, base64url), under a key
derived from the app's secret for this purpose alone. The link id (128 random bits) is what
the queue holds; Redis keeps only the token's SHA-256, under ``<prefix>mt:<purpose>:<hash>``
with the link's lifetime as TTL, holding the grant. So neither the queue nor the token
records show a token, and a token cannot be made from a link id without the secret.
Rotating the secret kills the links not yet sent.

A token is used up with GETDEL, so two requests with one link cannot both succeed. A newer
link does not kill an older one (someone asking for a link must not void the owner's); the
throttle bounds how many are made. Each account's link records are also named in a set,
``<prefix>mt:links:<id>``, so that deleting the account deletes them (``forget_user``: each
holds an address). A link for an address without an account (asked for by "forgot your
password") is made all the same, with a record that grants nothing, named in a set of its
own: asking costs the same two round trips (the record, then the set, in one script)
whether or not the address has an account. Every command touches one key, so this works on
every Redis topology the app supports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from quart import current_app

from quartapp.engine.redis_scripts import Script
from quartapp.infra.redis_client import RedisConnection, get_redis
from quartapp.web.errors import AppError

Purpose = Literal["reset", "verify", "email", "undo"]
PURPOSES: tuple[Purpose, ...] = ("reset", "verify", "email", "undo")
# What a token is (43 base64url characters: 256 bits); anything else names no link.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
# What a link id is (22 base64url characters: 128 bits).
LINK_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")

# Names a link record (ARGV[1]) in a set of link records (KEYS[1]) that lives as long as the
# longest-lived of them (ARGV[2]: the new one's seconds); one key, so one slot on a Cluster.
_INDEX = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a live link is for: fixed when the link is asked for."""

    user_id: int
    credentials_version: int
    email: str
    issued_at: int = 0  # ms since the epoch, set by ``issue``


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class MailTokens:
    def __init__(self, redis: RedisConnection, prefix: str, secret: str | bytes) -> None:
        if not secret:
            raise ValueError("mail links need a secret to make their tokens")
        self.redis = redis
        self.prefix = prefix
        key = secret.encode() if isinstance(secret, str) else secret
        # Its own key, so these tokens cannot be matched with any other HMAC of the secret.
        self._token_key = hmac.new(key, b"quartapp mail link tokens", hashlib.sha256).digest()

    def _key(self, purpose: Purpose, digest: str) -> str:
        return f"{self.prefix}mt:{purpose}:{digest}"

    def token(self, purpose: Purpose, link_id: str) -> str:
        """The token of link ``link_id``: the same every time it is made."""
        message = f"{purpose}\0{link_id}".encode()
        digest = hmac.new(self._token_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    async def issue(self, purpose: Purpose, grant: LinkGrant | None, ttl: int) -> str:
        """A new link for ``grant``, live for ``ttl`` seconds; returns its id (for the queue).

        ``grant`` None (an address without an account) writes a record that grants nothing,
        so asking reads the same, in time too, whether or not the address has an account."""
        link_id = secrets.token_urlsafe(16)
        token = self.token(purpose, link_id)
        now = int(time.time() * 1000)
        value = json.dumps(
            {"u": grant.user_id, "v": grant.credentials_version, "e": grant.email, "t": now}
            if grant is not None
            else {"u": 0, "v": 0, "e": "", "t": now},
            separators=(",", ":"),
        )
        digest = token_hash(token)
        key = self._key(purpose, digest)
        await self.redis.set(key, value, ex=ttl)
        # The record is named in the account's set; a record that grants nothing is named
        # in a set of its own, which goes with it: the same commands either way.
        links = self._links_key(grant.user_id) if grant is not None else self._no_links_key(digest)
        await Script(self.redis, _INDEX)(keys=[links], args=[key, ttl])
        return link_id

    def _links_key(self, user_id: int) -> str:
        return f"{self.prefix}mt:links:{user_id}"

    def _no_links_key(self, digest: str) -> str:
        """The set naming the record of a link that grants nothing (no account has it)."""
        return f"{self.prefix}mt:links:none:{digest}"

    async def forget_user(self, user_id: int) -> None:
        """Delete every link record of the account (each holds its address) and its
        cancellations, for an account that is deleted."""
        links = self._links_key(user_id)
        for key in await self.redis.smembers(links):
            await self.redis.delete(key.decode() if isinstance(key, bytes) else key)
        await self.redis.delete(links)
        for purpose in PURPOSES:
            await self.redis.delete(self._cancelled_key(purpose, user_id))

    async def to_send(self, purpose: Purpose, link_id: str) -> tuple[str, LinkGrant, int] | None:
        """For the mail worker: the token of a live link, what it grants and its seconds
        left; None when the link is used up, expired, or grants nothing."""
        if not LINK_ID_SHAPE.fullmatch(link_id):
            return None
        token = self.token(purpose, link_id)
        key = self._key(purpose, token_hash(token))
        grant = _grant(await self.redis.get(key))
        seconds_left = int(await self.redis.ttl(key))
        if grant is None or seconds_left <= 0:
            return None
        return token, grant, seconds_left

    async def peek(self, purpose: Purpose, token: str) -> LinkGrant | None:
        """What a live token grants, without using it up; None for any other string."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None
        return _grant(await self.redis.get(self._key(purpose, token_hash(token))))

    async def use(self, purpose: Purpose, token: str) -> LinkGrant | None:
        """Use a token up: what it granted, or None if it was not live. Only one caller
        ever gets a grant for one token."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None
        return _grant(await self.redis.getdel(self._key(purpose, token_hash(token))))

    def _cancelled_key(self, purpose: Purpose, user_id: int) -> str:
        return f"{self.prefix}mt:{purpose}:cancelled:{user_id}"

    async def cancel_from(self, purpose: Purpose, grant: LinkGrant, ttl: int) -> None:
        """Kill every link of this purpose the account was given from ``grant``'s issue
        until now (the ones given before it stay live). ``ttl``: the links' lifetime."""
        key = self._cancelled_key(purpose, grant.user_id)
        now = int(time.time() * 1000)
        await self.redis.rpush(key, f"{grant.issued_at}:{now}")
        await self.redis.expire(key, ttl)  # every link it can kill has expired by then

    async def cancelled(self, purpose: Purpose, grant: LinkGrant) -> bool:
        """Whether ``cancel_from`` killed this link."""
        for entry in await self.redis.lrange(self._cancelled_key(purpose, grant.user_id), 0, -1):
            text = entry.decode() if isinstance(entry, bytes) else str(entry)
            start, _, end = text.partition(":")
            if int(start) <= grant.issued_at <= int(end):
                return True
        return False


def _grant(value: str | bytes | None) -> LinkGrant | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
        grant = LinkGrant(int(data["u"]), int(data["v"]), str(data["e"]), int(data.get("t", 0)))
    except (ValueError, KeyError, TypeError):
        return None
    return grant if grant.user_id else None


LINK_DEAD = (
    "This link has expired, has already been used, or no longer works because the "
    "account's password or address changed since it was sent."
)
# What a dead link of each purpose says; what to do next is the page's (or the view's) to add.
DEAD_LINKS: dict[Purpose, str] = {
    "reset": (
        "This password reset link has expired or has already been used, or the account's "
        "password or address has changed since it was sent."
    ),
    "verify": (
        "This verification link has expired or has already been used, or the account's "
        "address has changed since it was sent."
    ),
    "email": (
        "This address-change link has expired or has already been used, or the account's "
        "password or address has changed since it was sent."
    ),
    "undo": "This undo link has expired or has already been used.",
}


class LinkDead(AppError):
    """A mailed link that is unknown, used, expired, or killed by a change to the account.
    ``purpose``: what the link was for, so its message can name it; ``next_step``: a
    sentence saying what to do instead."""

    def __init__(self, purpose: Purpose | None = None, next_step: str = "") -> None:
        message = DEAD_LINKS[purpose] if purpose is not None else LINK_DEAD
        super().__init__(f"{message} {next_step}".strip(), status=410, code="link_dead")
        self.purpose = purpose
        self.reason = message
        self.next_step = next_step


def get_mail_tokens() -> MailTokens:
    config = current_app.config
    return MailTokens(get_redis(), str(config["REDIS_PREFIX"]), config["SECRET_KEY"])

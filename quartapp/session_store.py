"""Server-side sessions in Redis.

A session is one JSON record under a key derived from the SHA-256 of its token, so neither a
Redis dump nor ``MONITOR`` shows a token that would work in a cookie. The key's TTL is always
min(idle deadline, absolute deadline): the key vanishes exactly when the session ends, and its
PTTL is the time left. Each user has a sorted set of their session key ids (score: absolute
deadline), so per-user operations never SCAN.

All times come from the Redis server's clock (``TIME`` inside the scripts), so app processes
on several machines agree on every deadline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

# A record is compact JSON that always starts with {"c":<created ms>,"a":<absolute deadline
# ms>, so the scripts read the deadline with a pattern instead of decoding (and re-encoding,
# which would alter) the rest. Field names are short because every session pays for them in
# Redis memory: u user id, e email, d free-form session data.

# ARGV[1] is the record's JSON without c and a; the script puts them first.
_CREATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle, absolute = tonumber(ARGV[2]), tonumber(ARGV[3])
local deadline = now + absolute
local record = string.format('{"c":%d,"a":%d,', now, deadline) .. string.sub(ARGV[1], 2)
local ttl = math.min(idle, absolute)
if not redis.call('SET', KEYS[1], record, 'NX', 'PX', ttl) then
  return false
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], deadline, ARGV[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return {now, deadline, now + ttl}
"""

# ARGV[1] = '1' slides the idle deadline (never past the absolute one), '0' only reads.
_LOAD = """
local value = redis.call('GET', KEYS[1])
if not value then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '1' then
  local absolute = tonumber(string.match(value, '^{"c":%d+,"a":(%d+)'))
  local deadline = math.min(now + tonumber(ARGV[2]), absolute)
  if deadline <= now then
    redis.call('DEL', KEYS[1])
    return false
  end
  redis.call('PEXPIREAT', KEYS[1], deadline)
  return {value, now, deadline}
end
local left = redis.call('PTTL', KEYS[1])
if left <= 0 then
  return false
end
return {value, now, now + left}
"""


def _dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def key_id_for(token: str) -> str:
    """The Redis-side name of a session: the first 128 bits of SHA-256(token), base64url.

    128 bits name a session without collisions and without a way back to the token; the
    rest of the digest would only cost every session more Redis memory."""
    digest = hashlib.sha256(token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(slots=True)
class SessionRecord:
    key_id: str
    user_id: int
    email: str
    created_at: int
    absolute_deadline: int
    expires_at: int
    read_at: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def public_id(self) -> str:
        """A short handle that names the session on pages; it cannot be turned into a token."""
        return self.key_id[:12]

    @property
    def time_left_ms(self) -> int:
        return max(0, self.expires_at - self.read_at)

    @property
    def can_extend(self) -> bool:
        return self.expires_at < self.absolute_deadline


class SessionStore:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        idle_timeout: float,
        absolute_timeout: float,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.idle_ms = int(idle_timeout * 1000)
        self.absolute_ms = int(absolute_timeout * 1000)
        self._create = redis.register_script(_CREATE)
        self._load = redis.register_script(_LOAD)

    def record_key(self, key_id: str) -> str:
        return f"{self.prefix}s:{key_id}"

    def index_key(self, user_id: int) -> str:
        return f"{self.prefix}u:{user_id}:sessions"

    async def create(
        self, user_id: int, email: str, data: Mapping[str, Any] | None = None
    ) -> tuple[str, SessionRecord]:
        """Start a session with a brand-new token; returns the token and the record."""
        # The user id travels as a string: Lua numbers are doubles, and cjson would print a
        # big id in exponent form.
        body: dict[str, Any] = {"u": str(user_id), "e": email}
        if data:
            body["d"] = dict(data)
        while True:
            token = secrets.token_urlsafe(32)
            key_id = key_id_for(token)
            result = await self._create(
                keys=[self.record_key(key_id), self.index_key(user_id)],
                args=[_dumps(body), self.idle_ms, self.absolute_ms, key_id],
            )
            if result:  # a 256-bit collision is not going to happen, but SET NX makes sure
                break
        now, absolute_deadline, expires_at = (int(x) for x in result)
        record = SessionRecord(
            key_id=key_id,
            user_id=user_id,
            email=email,
            created_at=now,
            absolute_deadline=absolute_deadline,
            expires_at=expires_at,
            read_at=now,
            data=dict(data or {}),
        )
        return token, record

    async def load(self, token: str, *, touch: bool) -> SessionRecord | None:
        """The live record for ``token``, or None; ``touch`` slides the idle deadline."""
        key_id = key_id_for(token)
        result = await self._load(
            keys=[self.record_key(key_id)], args=["1" if touch else "0", self.idle_ms]
        )
        if not result:
            return None
        value, read_at, expires_at = result
        body = json.loads(value)
        return SessionRecord(
            key_id=key_id,
            user_id=int(body["u"]),
            email=str(body["e"]),
            created_at=int(body["c"]),
            absolute_deadline=int(body["a"]),
            expires_at=int(expires_at),
            read_at=int(read_at),
            data=dict(body.get("d") or {}),
        )

    async def save_data(self, record: SessionRecord, data: Mapping[str, Any]) -> None:
        """Replace the free-form data of a live session, keeping its deadlines."""
        body: dict[str, Any] = {
            "c": record.created_at,
            "a": record.absolute_deadline,
            "u": str(record.user_id),
            "e": record.email,
        }
        if data:
            body["d"] = dict(data)
        key = self.record_key(record.key_id)
        await self.redis.set(key, _dumps(body), xx=True, keepttl=True)

    async def revoke(self, record: SessionRecord) -> None:
        """End a session now: its cookie stops working on the next request."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.record_key(record.key_id))
            pipe.zrem(self.index_key(record.user_id), record.key_id)
            await pipe.execute()

"""Server-side sessions in Redis.

A session is one JSON record under a key derived from the SHA-256 of its token, so neither a
Redis dump nor ``MONITOR`` shows a token that would work in a cookie. The key's TTL is always
min(idle deadline, absolute deadline): the key vanishes exactly when the session ends, and its
PTTL is the time left. Each user has a sorted set of their session key ids (score: absolute
deadline), so per-user operations never SCAN.

All times come from the Redis server's clock (``TIME`` inside the scripts), so app processes
on several machines agree on every deadline.

The scripts that work on a user's sessions reach the records through the index in one round
trip, as creation does: that needs one Redis server (or Sentinel), where any script may touch
any key. On Redis Cluster the records and the index live in different hash slots.
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
# ms>,"l":<last active>, so the scripts read and rewrite these numbers with patterns instead
# of decoding (and re-encoding, which would alter) the rest. Field names are short because
# every session pays for them in Redis memory: l last activity in whole seconds after c (at
# most 5 digits where a time in ms takes 13), u user id, e email, i IP address, b device
# ("Firefox 128 on Linux"), d free-form session data. Records written before "l" existed
# lack it: they read as last active at creation, and are never rewritten.

# ARGV[1] is the record's JSON without c, a and l; the script puts them first.
_CREATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle, absolute = tonumber(ARGV[2]), tonumber(ARGV[3])
local deadline = now + absolute
local record = string.format('{"c":%d,"a":%d,"l":0,', now, deadline) .. string.sub(ARGV[1], 2)
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

# ARGV[1] = '1' slides the idle deadline (never past the absolute one) and records activity,
# '0' only reads. ARGV[3] is the activity resolution in ms: "l" is rewritten only when it is
# at least that old (and then only if the whole second changed), so an active user costs one
# extra write a minute, not one per request. Only that number changes (SET ... PXAT also
# sets the new deadline), never the rest of the record.
_LOAD = """
local value = redis.call('GET', KEYS[1])
if not value then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '1' then
  local head, created, absolute = string.match(value, '^({"c":(%d+),"a":(%d+),)')
  local deadline = math.min(now + tonumber(ARGV[2]), tonumber(absolute))
  if deadline <= now then
    redis.call('DEL', KEYS[1])
    return false
  end
  local seen = string.match(value, '^"l":(%d+)', #head + 1)
  local active = seen and math.floor((now - tonumber(created)) / 1000)
  if seen and active > tonumber(seen)
      and now - tonumber(created) - 1000 * tonumber(seen) >= tonumber(ARGV[3]) then
    value = head .. string.format('"l":%d', active) .. string.sub(value, #head + 5 + #seen)
    redis.call('SET', KEYS[1], value, 'PXAT', deadline)
  else
    redis.call('PEXPIREAT', KEYS[1], deadline)
  end
  return {value, now, deadline}
end
local left = redis.call('PTTL', KEYS[1])
if left <= 0 then
  return false
end
return {value, now, now + left}
"""

# The live sessions of one user, pruning the index as it goes: members past their absolute
# deadline, and members whose record is gone (ended by the idle timeout).
# KEYS[1] is the index, ARGV[1] the record key prefix. Returns now, then id, value, PTTL for
# each live session.
_LIST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local found = {now}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local value = redis.call('GET', key)
  local left = value and redis.call('PTTL', key) or -2
  if left > 0 then
    found[#found + 1] = id
    found[#found + 1] = value
    found[#found + 1] = left
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return found
"""

# Ends the user's session whose key id starts with ARGV[2] (its public id); only this user's
# index is searched, so nobody can end a session that is not theirs. Returns the key id if a
# live session ended, else false.
_REVOKE_ONE = """
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(id, 1, #ARGV[2]) == ARGV[2] then
    redis.call('ZREM', KEYS[1], id)
    if redis.call('DEL', ARGV[1] .. id) == 1 then
      return id
    end
    return false
  end
end
return false
"""

# Ends every session of the user but the one with key id ARGV[2] ('' ends them all).
# Returns how many live sessions ended.
_REVOKE_OTHERS = """
local ended = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[2] then
    ended = ended + redis.call('DEL', ARGV[1] .. id)
    redis.call('ZREM', KEYS[1], id)
  end
end
return ended
"""


def _dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _body(
    user_id: int, email: str, ip: str, device: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A record's fields after c, a and l; empty ones are left out to save memory."""
    # The user id travels as a string: Lua numbers are doubles, and cjson would print a big
    # id in exponent form.
    body: dict[str, Any] = {"u": str(user_id), "e": email}
    if ip:
        body["i"] = ip
    if device:
        body["b"] = device
    if data:
        body["d"] = dict(data)
    return body


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
    # ms, Redis clock: the last activity, to the second, as of at most a resolution ago
    last_active: int = 0
    ip: str = ""
    device: str = ""

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

    @classmethod
    def from_redis(
        cls, key_id: str, value: str | bytes, read_at: int, expires_at: int
    ) -> SessionRecord:
        body = json.loads(value)
        created_at = int(body["c"])
        return cls(
            key_id=key_id,
            user_id=int(body["u"]),
            email=str(body["e"]),
            created_at=created_at,
            absolute_deadline=int(body["a"]),
            expires_at=int(expires_at),
            read_at=int(read_at),
            data=dict(body.get("d") or {}),
            last_active=created_at + 1000 * int(body.get("l", 0)),
            ip=str(body.get("i", "")),
            device=str(body.get("b", "")),
        )


class SessionStore:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        idle_timeout: float,
        absolute_timeout: float,
        activity_resolution: float = 60,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.idle_ms = int(idle_timeout * 1000)
        self.absolute_ms = int(absolute_timeout * 1000)
        self.activity_resolution_ms = int(activity_resolution * 1000)
        self._create = redis.register_script(_CREATE)
        self._load = redis.register_script(_LOAD)
        self._list = redis.register_script(_LIST)
        self._revoke_one = redis.register_script(_REVOKE_ONE)
        self._revoke_others = redis.register_script(_REVOKE_OTHERS)

    def record_key(self, key_id: str) -> str:
        return f"{self.prefix}s:{key_id}"

    def index_key(self, user_id: int) -> str:
        return f"{self.prefix}u:{user_id}:sessions"

    async def create(
        self,
        user_id: int,
        email: str,
        data: Mapping[str, Any] | None = None,
        *,
        ip: str = "",
        device: str = "",
    ) -> tuple[str, SessionRecord]:
        """Start a session with a brand-new token; returns the token and the record."""
        body = _body(user_id, email, ip, device, data)
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
            last_active=now,
            ip=ip,
            device=device,
        )
        return token, record

    async def load(self, token: str, *, touch: bool) -> SessionRecord | None:
        """The live record for ``token``, or None; ``touch`` slides the idle deadline."""
        key_id = key_id_for(token)
        result = await self._load(
            keys=[self.record_key(key_id)],
            args=["1" if touch else "0", self.idle_ms, self.activity_resolution_ms],
        )
        if not result:
            return None
        value, read_at, expires_at = result
        return SessionRecord.from_redis(key_id, value, read_at, expires_at)

    async def save_data(self, record: SessionRecord, data: Mapping[str, Any]) -> None:
        """Replace the free-form data of a live session, keeping its deadlines."""
        body = {
            "c": record.created_at,
            "a": record.absolute_deadline,
            "l": (record.last_active - record.created_at) // 1000,
            **_body(record.user_id, record.email, record.ip, record.device, data),
        }
        key = self.record_key(record.key_id)
        await self.redis.set(key, _dumps(body), xx=True, keepttl=True)

    async def list_sessions(self, user_id: int) -> list[SessionRecord]:
        """Every live session of this user, oldest first, in one round trip.

        Costs O(that user's sessions), and drops ended ones from the index on the way."""
        result = await self._list(keys=[self.index_key(user_id)], args=[self.record_key("")])
        now = int(result[0])
        records = [
            SessionRecord.from_redis(_text(key_id), value, now, now + int(left))
            for key_id, value, left in zip(result[1::3], result[2::3], result[3::3], strict=True)
        ]
        return sorted(records, key=lambda record: (record.created_at, record.key_id))

    async def revoke_by_public_id(self, user_id: int, public_id: str) -> str | None:
        """End this user's session that ``public_id`` names; its key id, or None if this
        user has no live session by that name (another user's sessions are never found)."""
        if not public_id:
            return None
        ended = await self._revoke_one(
            keys=[self.index_key(user_id)], args=[self.record_key(""), public_id]
        )
        return _text(ended) if ended else None

    async def revoke_others(self, user_id: int, keep_key_id: str) -> int:
        """End every session of this user but ``keep_key_id``; how many live ones ended."""
        ended = await self._revoke_others(
            keys=[self.index_key(user_id)], args=[self.record_key(""), keep_key_id]
        )
        return int(ended)

    async def revoke_all(self, user_id: int) -> int:
        """End every session of this user; how many live ones ended."""
        return await self.revoke_others(user_id, "")

    async def revoke(self, record: SessionRecord) -> None:
        """End a session now: its cookie stops working on the next request."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.record_key(record.key_id))
            pipe.zrem(self.index_key(record.user_id), record.key_id)
            await pipe.execute()

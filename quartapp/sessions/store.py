"""Server-side sessions in Redis; docs/sessions.md explains the layout and its reasons.

A session is one packed record under ``<prefix>{<tag>}s:<key id>``, the key id being the
first 128 bits of SHA-256(token), so no dump shows a working token. Its TTL is always
min(idle deadline, absolute deadline): the key vanishes when the session ends, and its PTTL
is the time left, on the Redis clock. Users share index hashes ("buckets" of 16,
``<prefix>{<tag>}ix``), whose hash tag the token carries, so a record, its bucket and the
user's credentials floor sit in one Cluster slot and every script here is one round trip.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from quartapp.engine.redis_scripts import Script
from quartapp.infra.redis_client import RedisConnection

# Users per bucket. Redis keeps a hash compact (a listpack) up to hash-max-listpack-entries
# fields, 128 by default: 16 users may hold 8 sessions each on average before their bucket
# grows into a hash table, which still works, at about twice the memory.
BUCKET_USERS = 16
TAG_LENGTH = 6
TOKEN_LENGTH = TAG_LENGTH + 43  # the tag, then secrets.token_urlsafe(32)
_TAG_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

# A record is: version (1 byte, 1), created (ms, 6 bytes), absolute deadline (ms after
# created, 5 bytes), last activity (whole seconds after created, 4 bytes), all unsigned
# little-endian; then the user id (8 bytes), the IP address (length byte, then 4 or 16
# bytes, or none), the device ("Firefox 128 on Linux") and the email (each a length, one
# byte or 0xFF and two more, then UTF-8), and last the free-form session data as JSON (the
# rest of the value; empty when there is none). The scripts read and rewrite the 16-byte
# head with struct.unpack/pack and never look at the rest. The head is what _CREATE writes.
VERSION = 1

# KEYS[1]: the new record, KEYS[2]: its bucket, KEYS[3]: the user's credentials floor.
# ARGV[1]: the record after its head, ARGV[2]/[3]: idle/absolute timeout (ms), ARGV[4]: the
# key id, ARGV[5]: the bucket's record key prefix, ARGV[6]: the user id, ARGV[7]: the
# credentials version the sign-in checked the password against ('' skips the check),
# ARGV[8]: the most sessions a user may have (0: no limit).
# Returns false on a token collision, 0 when the credentials changed since they were
# checked, else {now, absolute deadline, expiry}.
_CREATE = """
if ARGV[7] ~= '' then
  local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
  if floor > tonumber(ARGV[7]) then
    return 0
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle, absolute = tonumber(ARGV[2]), tonumber(ARGV[3])
local record = struct.pack('<BI6I5I4', 1, now, absolute, 0) .. ARGV[1]
local ttl = math.min(idle, absolute)
if not redis.call('SET', KEYS[1], record, 'NX', 'PX', ttl) then
  return false
end
-- Drop the bucket's fields whose record is gone (ended, or expired), and note when each
-- live session of this user started.
local mine = {}
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local id = fields[i]
  local head = redis.call('GETRANGE', ARGV[5] .. id, 1, 6)
  if #head < 6 then
    redis.call('HDEL', KEYS[2], id)
  elseif fields[i + 1] == ARGV[6] then
    mine[#mine + 1] = {struct.unpack('<I6', head), id}
  end
end
-- Over the limit, the oldest sessions end to make room for this one.
local most = tonumber(ARGV[8])
if most > 0 and #mine >= most then
  table.sort(mine, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for i = 1, #mine - most + 1 do
    redis.call('DEL', ARGV[5] .. mine[i][2])
    redis.call('HDEL', KEYS[2], mine[i][2])
  end
end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[6])
-- The bucket lives as long as its longest-lived session could.
local left = redis.call('PTTL', KEYS[2])
if left < absolute then
  redis.call('PEXPIRE', KEYS[2], absolute)
end
return {now, now + absolute, now + ttl}
"""

# Raises the credentials floor KEYS[1] to ARGV[1] (never lowers it) for ARGV[2] ms.
_RAISE_FLOOR = """
local floor = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted > floor then
  floor = wanted
end
redis.call('SET', KEYS[1], string.format('%d', floor), 'PX', tonumber(ARGV[2]))
return floor
"""

# ARGV[1] = '1' slides the idle deadline (never past the absolute one) and records activity,
# '0' only reads. ARGV[3] is the activity resolution in ms: the last-activity seconds are
# rewritten only when at least that old, so an active user costs one extra write a minute,
# not one per request; SET ... PXAT then also sets the new deadline.
_LOAD = """
local value = redis.call('GET', KEYS[1])
-- A record in another format (another version of the app) is not a session here.
if not value or #value < 16 or string.byte(value, 1) ~= 1 then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '1' then
  local created, absolute, seen = struct.unpack('<I6I5I4', value, 2)
  local deadline = math.min(now + tonumber(ARGV[2]), created + absolute)
  if deadline <= now then
    redis.call('DEL', KEYS[1])
    return false
  end
  local active = math.floor((now - created) / 1000)
  if active > seen and now - created - 1000 * seen >= tonumber(ARGV[3]) then
    value = string.sub(value, 1, 12) .. struct.pack('<I4', active) .. string.sub(value, 17)
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

# The live sessions of user ARGV[2] in bucket KEYS[1], pruning that user's fields whose
# record is gone. ARGV[1] is the record key prefix of the bucket. Returns now, then id,
# value, PTTL for each live session.
_LIST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local found = {now}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local id = fields[i]
  if fields[i + 1] == ARGV[2] then
    local key = ARGV[1] .. id
    local value = redis.call('GET', key)
    local left = value and redis.call('PTTL', key) or -2
    if left > 0 then
      found[#found + 1] = id
      found[#found + 1] = value
      found[#found + 1] = left
    else
      redis.call('HDEL', KEYS[1], id)
    end
  end
end
return found
"""

# Ends the record ARGV[1] .. id and leaves the reason ARGV[4] under ARGV[5] .. id (see
# ``SessionStore.ended_reason``) for as long as the session had left, but at least ARGV[6]
# ms. Returns 1 if a live session ended, else 0. Shared by the two scripts below.
_END_WITH_REASON = """
local function finish(id)
  local key = ARGV[1] .. id
  local left = redis.call('PTTL', key)
  if redis.call('DEL', key) == 0 then
    return 0
  end
  redis.call('SET', ARGV[5] .. id, ARGV[4], 'PX', math.max(left, tonumber(ARGV[6])))
  return 1
end
"""

# Ends user ARGV[2]'s session whose key id starts with ARGV[3] (its public id); only that
# user's fields are searched, so nobody can end a session that is not theirs. Returns the
# key id if a live session ended, else false.
_REVOKE_ONE = (
    _END_WITH_REASON
    + """
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local id = fields[i]
  if fields[i + 1] == ARGV[2] and string.sub(id, 1, #ARGV[3]) == ARGV[3] then
    redis.call('HDEL', KEYS[1], id)
    if finish(id) == 1 then
      return id
    end
    return false
  end
end
return false
"""
)

# Ends every session of user ARGV[2] but the one with key id ARGV[3] ('' ends them all).
# Returns how many live sessions ended.
_REVOKE_OTHERS = (
    _END_WITH_REASON
    + """
local ended = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local id = fields[i]
  if fields[i + 1] == ARGV[2] and id ~= ARGV[3] then
    ended = ended + finish(id)
    redis.call('HDEL', KEYS[1], id)
  end
end
return ended
"""
)

# Ends one session: its record and its field in the bucket.
_REVOKE = """
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"""


# A credentials floor outlives any sign-in that could have read the credentials it retires
# (bcrypt and a MySQL statement with its deadline take seconds, not a day).
FLOOR_TTL_MS = 24 * 60 * 60 * 1000
# A floor above every version: what an account's deletion leaves, so no sign-in begun
# before it can start a session.
DELETED = 2**53 - 1


# Why a session was ended by something other than its own sign-out, remembered for its
# browser (``SessionStore.ended_reason``) so that its page can say so rather than "Your
# session has expired": the code, and what the page says.
ENDED_ELSEWHERE = "elsewhere"  # from another session: "End", "Sign out everywhere else"
ENDED_BY_ACCOUNT_CHANGE = "account"  # a new password (changed or reset) or email address
ENDED_BY_DELETION = "deleted"  # the account was deleted
WHY_ENDED = {
    ENDED_ELSEWHERE: "You were signed out from another device.",
    ENDED_BY_ACCOUNT_CHANGE: (
        "You were signed out because your password or email address was changed."
    ),
    ENDED_BY_DELETION: "You were signed out because your account was deleted.",
}
# The reason is kept as long as the session had left (after that "expired" is true anyway),
# but at least this long, for a tab whose polling the browser slowed down in the background.
ENDED_REASON_MIN_MS = 5 * 60 * 1000


class CredentialsChanged(Exception):
    """The password (or the account) changed after the sign-in checked it: no session."""


def _length(data: bytes) -> bytes:
    return bytes([len(data)]) if len(data) < 0xFF else b"\xff" + len(data).to_bytes(2, "little")


def _sized(value: str, limit: int) -> bytes:
    """``value`` in UTF-8 behind its length, cut to ``limit`` bytes on a character boundary."""
    data = value.encode()[:limit].decode(errors="ignore").encode()
    return _length(data) + data


def pack_ip(ip: str) -> bytes:
    """An IP address in 4 or 16 bytes behind a length byte; anything else as none."""
    try:
        packed = ipaddress.ip_address(ip).packed
    except ValueError:
        packed = b""
    return bytes([len(packed)]) + packed


def encode_body(
    user_id: int, email: str, ip: str, device: str, data: Mapping[str, Any] | None
) -> bytes:
    """A record after its head (see the layout above)."""
    return b"".join(
        (
            user_id.to_bytes(8, "little"),
            pack_ip(ip),
            _sized(device, 200),
            _sized(email, 0xFFFF),
            json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False).encode()
            if data
            else b"",
        )
    )


class _Reader:
    def __init__(self, value: bytes, offset: int) -> None:
        self.value = value
        self.offset = offset

    def take(self, size: int) -> bytes:
        chunk = self.value[self.offset : self.offset + size]
        if len(chunk) != size:
            raise ValueError("truncated session record")
        self.offset += size
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def sized(self) -> bytes:
        size = self.number(1)
        if size == 0xFF:
            size = self.number(2)
        return self.take(size)


def key_id_for(token: str) -> str:
    """The Redis-side name of a session: the first 128 bits of SHA-256(token), base64url.

    128 bits name a session without collisions and without a way back to the token; the
    rest of the digest would only cost every session more Redis memory."""
    digest = hashlib.sha256(token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def bucket_key(secret: str | bytes) -> bytes:
    """The key that names buckets, derived from one of the app's secret keys."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, b"quartapp session buckets", hashlib.sha256).digest()


def tag_for(key: bytes, user_id: int) -> str:
    """The hash tag of ``user_id``'s bucket under ``key``."""
    digest = hmac.new(key, str(user_id // BUCKET_USERS).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:TAG_LENGTH]


def tag_of(token: str) -> str | None:
    """The bucket tag a token carries, or None for anything that is not a session token."""
    if len(token) != TOKEN_LENGTH or not _TAG_ALPHABET.issuperset(token):
        return None
    return token[:TAG_LENGTH]


@dataclass(slots=True)
class SessionRecord:
    key_id: str
    tag: str
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
    def seconds_left(self) -> int:
        """Whole seconds left, rounded up: "0" only once the session has ended. Every page,
        fragment and JSON answer shows this one number."""
        return -(-self.time_left_ms // 1000)

    @property
    def can_extend(self) -> bool:
        return self.expires_at < self.absolute_deadline

    @classmethod
    def from_redis(
        cls, key_id: str, tag: str, value: bytes, read_at: int, expires_at: int
    ) -> SessionRecord:
        # The 16-byte head (see _head), then the user id; read in place, once per request.
        if len(value) < 24 or value[0] != VERSION:
            raise ValueError("unknown session record version or a truncated record")
        created_at = int.from_bytes(value[1:7], "little")
        absolute_deadline = created_at + int.from_bytes(value[7:12], "little")
        last_active = created_at + 1000 * int.from_bytes(value[12:16], "little")
        user_id = int.from_bytes(value[16:24], "little")
        reader = _Reader(value, 24)
        ip = reader.sized()
        device = reader.sized().decode()
        email = reader.sized().decode()
        rest = value[reader.offset :]
        return cls(
            key_id=key_id,
            tag=tag,
            user_id=user_id,
            email=email,
            created_at=created_at,
            absolute_deadline=absolute_deadline,
            expires_at=int(expires_at),
            read_at=int(read_at),
            data=dict(json.loads(rest)) if rest else {},
            last_active=last_active,
            ip=_address_text(ip) if ip else "",
            device=device,
        )

    def to_redis(self) -> bytes:
        """The whole record, head included, as _CREATE and _LOAD would have left it."""
        head = _head(
            self.created_at, self.absolute_deadline, (self.last_active - self.created_at) // 1000
        )
        return head + encode_body(self.user_id, self.email, self.ip, self.device, self.data)


class SessionStore:
    def __init__(
        self,
        redis: RedisConnection,
        *,
        prefix: str,
        idle_timeout: float,
        absolute_timeout: float,
        secret_keys: Sequence[str | bytes],
        activity_resolution: float = 60,
        max_sessions_per_user: int = 0,
    ) -> None:
        """``secret_keys``: the app's secret key first, then any fallbacks still accepted.
        ``max_sessions_per_user``: past it a new session ends the user's oldest (0: no limit)."""
        if "{" in prefix or "}" in prefix:
            raise ValueError("the Redis key prefix must not contain { or }")
        if not secret_keys:
            raise ValueError("a session store needs a secret key")
        self.redis = redis
        self.prefix = prefix
        self.idle_ms = int(idle_timeout * 1000)
        self.absolute_ms = int(absolute_timeout * 1000)
        if not 0 < self.absolute_ms < 2**40 or self.idle_ms <= 0:
            raise ValueError("session timeouts must be positive (and under 34 years)")
        self.activity_resolution_ms = int(activity_resolution * 1000)
        if isinstance(max_sessions_per_user, bool) or not isinstance(max_sessions_per_user, int):
            raise ValueError("the most sessions per user must be a whole number")
        if max_sessions_per_user < 0:
            raise ValueError("the most sessions per user must be 0 (no limit) or more")
        self.max_sessions_per_user = max_sessions_per_user
        self.bucket_keys = [bucket_key(secret) for secret in secret_keys]
        self._create = Script(redis, _CREATE)
        self._load = Script(redis, _LOAD)
        self._list = Script(redis, _LIST)
        self._revoke_one = Script(redis, _REVOKE_ONE)
        self._revoke_others = Script(redis, _REVOKE_OTHERS)
        self._revoke = Script(redis, _REVOKE)
        self._raise_floor = Script(redis, _RAISE_FLOOR)

    # -- key names ----------------------------------------------------------------------

    def record_key(self, tag: str, key_id: str) -> str:
        return f"{self.prefix}{{{tag}}}s:{key_id}"

    def record_key_for(self, token: str) -> str | None:
        tag = tag_of(token)
        return None if tag is None else self.record_key(tag, key_id_for(token))

    def bucket_index(self, tag: str) -> str:
        return f"{self.prefix}{{{tag}}}ix"

    def ended_key(self, tag: str, key_id: str) -> str:
        """Why the session ``key_id`` was ended, while that is worth telling its browser."""
        return f"{self.prefix}{{{tag}}}e:{key_id}"

    def credentials_floor_key(self, tag: str, user_id: int) -> str:
        """The lowest credentials version from which a session of this user may start."""
        return f"{self.prefix}{{{tag}}}cv:{user_id}"

    def tags(self, user_id: int) -> list[str]:
        """``user_id``'s bucket tags: the current one first, then those of fallback keys."""
        return list(dict.fromkeys(tag_for(key, user_id) for key in self.bucket_keys))

    # -- sessions -----------------------------------------------------------------------

    async def create(
        self,
        user_id: int,
        email: str,
        data: Mapping[str, Any] | None = None,
        *,
        ip: str = "",
        device: str = "",
        credentials_version: int | None = None,
    ) -> tuple[str, SessionRecord]:
        """Start a session with a brand-new token; returns the token and the record.

        ``credentials_version``: the version of the password the sign-in checked (see
        ``retire_credentials``); raises CredentialsChanged if it has been retired since.
        None skips that check."""
        body = encode_body(user_id, email, ip, device, data)
        tag = self.tags(user_id)[0]
        while True:
            token = tag + secrets.token_urlsafe(32)
            key_id = key_id_for(token)
            result = await self._create(
                keys=[
                    self.record_key(tag, key_id),
                    self.bucket_index(tag),
                    self.credentials_floor_key(tag, user_id),
                ],
                args=[
                    body,
                    self.idle_ms,
                    self.absolute_ms,
                    key_id,
                    self.record_key(tag, ""),
                    user_id,
                    "" if credentials_version is None else credentials_version,
                    self.max_sessions_per_user,
                ],
            )
            if result == 0:
                raise CredentialsChanged()
            if result:  # a 256-bit collision is not going to happen, but SET NX makes sure
                break
        now, absolute_deadline, expires_at = (int(x) for x in result)
        # Read back through the same decoder as every later load.
        value = _head(now, absolute_deadline, 0) + body
        record = SessionRecord.from_redis(key_id, tag, value, now, expires_at)
        return token, record

    async def load(self, token: str, *, touch: bool) -> SessionRecord | None:
        """The live record for ``token``, or None; ``touch`` slides the idle deadline."""
        tag = tag_of(token)
        if tag is None:
            return None
        key_id = key_id_for(token)
        result = await self._load(
            keys=[self.record_key(tag, key_id)],
            args=["1" if touch else "0", self.idle_ms, self.activity_resolution_ms],
        )
        if not result:
            return None
        value, read_at, expires_at = result
        try:
            return SessionRecord.from_redis(key_id, tag, value, read_at, expires_at)
        except ValueError:  # UnicodeDecodeError, JSONDecodeError, a truncated record
            return None

    async def save_data(self, record: SessionRecord, data: Mapping[str, Any]) -> None:
        """Replace the free-form data of a live session, keeping its deadlines."""
        record.data = dict(data)
        key = self.record_key(record.tag, record.key_id)
        await self.redis.set(key, record.to_redis(), xx=True, keepttl=True)

    async def list_sessions(self, user_id: int) -> list[SessionRecord]:
        """Every live session of this user, oldest first; one round trip per bucket key.

        Costs O(sessions in the user's bucket), and drops ended ones of this user on the way."""
        records = []
        for tag in self.tags(user_id):
            result = await self._list(
                keys=[self.bucket_index(tag)], args=[self.record_key(tag, ""), user_id]
            )
            now = int(result[0])
            for key_id, value, left in zip(result[1::3], result[2::3], result[3::3], strict=True):
                try:
                    records.append(
                        SessionRecord.from_redis(_text(key_id), tag, value, now, now + int(left))
                    )
                except ValueError:  # another version's record: not listed, not touched
                    continue
        return sorted(records, key=lambda record: (record.created_at, record.key_id))

    def _reason_args(self, tag: str, reason: str) -> list[str | int]:
        if reason not in WHY_ENDED:
            raise ValueError(f"unknown reason for ending a session: {reason!r}")
        return [reason, self.ended_key(tag, ""), ENDED_REASON_MIN_MS]

    async def revoke_by_public_id(
        self, user_id: int, public_id: str, reason: str = ENDED_ELSEWHERE
    ) -> str | None:
        """End this user's session that ``public_id`` names; its key id, or None if this
        user has no live session by that name (another user's sessions are never found).
        Its browser is told ``reason`` (``ended_reason``)."""
        if not public_id:
            return None
        for tag in self.tags(user_id):
            ended = await self._revoke_one(
                keys=[self.bucket_index(tag)],
                args=[
                    self.record_key(tag, ""),
                    user_id,
                    public_id,
                    *self._reason_args(tag, reason),
                ],
            )
            if ended:
                return _text(ended)
        return None

    async def revoke_others(
        self, user_id: int, keep_key_id: str, reason: str = ENDED_ELSEWHERE
    ) -> int:
        """End every session of this user but ``keep_key_id``; how many live ones ended.
        Their browsers are told ``reason`` (``ended_reason``)."""
        ended = 0
        for tag in self.tags(user_id):
            ended += int(
                await self._revoke_others(
                    keys=[self.bucket_index(tag)],
                    args=[
                        self.record_key(tag, ""),
                        user_id,
                        keep_key_id,
                        *self._reason_args(tag, reason),
                    ],
                )
            )
        return ended

    async def revoke_all(self, user_id: int, reason: str = ENDED_BY_ACCOUNT_CHANGE) -> int:
        """End every session of this user; how many live ones ended. Unless ``reason`` says
        otherwise, what ends them all is a change of the account: a new password (changed
        or reset) or email address."""
        return await self.revoke_others(user_id, "", reason)

    async def ended_reason(self, token: str) -> str | None:
        """Why the session of ``token`` was ended (a ``WHY_ENDED`` code), if something other
        than its own sign-out ended it, not long ago; else None."""
        tag = tag_of(token)
        if tag is None:
            return None
        reason = await self.redis.get(self.ended_key(tag, key_id_for(token)))
        if reason is None:
            return None
        code = _text(reason)
        return code if code in WHY_ENDED else None

    async def retire_credentials(self, user_id: int, below: int) -> None:
        """From now on, no session of this user starts from a sign-in that checked a
        password of a version under ``below``; ``DELETED`` retires every version.

        A password change calls it after the new hash is stored and before it ends the
        user's sessions: a sign-in that checked the old password while the change ran then
        either started its session before the sweep (and the sweep ends it) or is refused
        here. The floor is written under every bucket tag in use, so that app processes
        amid a secret-key rotation see it too."""
        for tag in self.tags(user_id):
            await self._raise_floor(
                keys=[self.credentials_floor_key(tag, user_id)], args=[below, FLOOR_TTL_MS]
            )

    async def revoke(self, record: SessionRecord) -> None:
        """End a session now: its cookie stops working on the next request."""
        await self._revoke(
            keys=[self.record_key(record.tag, record.key_id), self.bucket_index(record.tag)],
            args=[record.key_id],
        )


def _head(created_at: int, absolute_deadline: int, active_seconds: int) -> bytes:
    """A record's first 16 bytes, as the scripts write them (struct '<BI6I5I4')."""
    return b"".join(
        (
            bytes([VERSION]),
            created_at.to_bytes(6, "little"),
            (absolute_deadline - created_at).to_bytes(5, "little"),
            active_seconds.to_bytes(4, "little"),
        )
    )


@functools.lru_cache(maxsize=4096)  # a session's address is read on each of its requests
def _address_text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value

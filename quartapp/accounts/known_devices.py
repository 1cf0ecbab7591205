"""The devices an account has signed in from, so that a sign-in from any other one mails
the owner a notice (ASVS 6.3.7 / 2.2.3).

What is kept: per account, one sorted set ``<prefix>kd:<user id>`` of HMACs (keyed by a key
derived from the app's secret key) of the device's name as the sessions list shows it
(``sessions.devices.describe_device``, e.g. "Firefox 128 on Linux"), scored by the last
sign-in from it. No user agent and no IP address is stored here; the names cannot be read
back from the set, nor matched across apps with other secret keys. The set keeps the
``KNOWN_DEVICES_MAX`` most recent devices and lives ``KNOWN_DEVICES_DAYS`` after the last
sign-in. One script on one key: it works on every Redis topology the app supports.
After a rotation of the secret key a device is looked up under its names by the earlier keys
(``SECRET_KEY_FALLBACKS``) too, and renamed under the current one, so a rotation turns no
known device into a new one.

Sign-up, a password reset and an address change remember the device that did them without
a notice (the owner is there, with a mail just read); a sign-in from an unknown device
remembers it and queues the notice. A new major browser version is a new name, and so gets
one notice.

The notices are bounded per account: at most ``NEW_DEVICE_NOTICES`` (3 an hour by default),
counted in ``<prefix>kdn:<user id>`` (a sorted set of the times notices were queued, which
lives one window). Past it the notices stop until the window has room again: one who cycles
user agents with the password in hand gets the owner three mails, not one per sign-in. A
device whose notice was held back is not remembered either, so its next sign-in, once the
window has room, is told; meanwhile the sessions page lists every session, and the notices
already sent link to it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence

from quart import current_app, request

from quartapp.accounts.throttle import Limit
from quartapp.infra.redis_client import REDIS_ERRORS, RedisConnection, get_redis
from quartapp.mail.queue import get_mailer
from quartapp.sessions.devices import describe_device
from quartapp.sessions.extension import get_sessions

log = logging.getLogger(__name__)

DAY_MS = 24 * 60 * 60 * 1000

# KEYS[1]: the account's set. ARGV[1]: the device's name (an HMAC), ARGV[2]: how long the
# set lives (ms), ARGV[3]: how many devices it keeps, ARGV[4...]: its names under earlier
# secret keys (SECRET_KEY_FALLBACKS), which are replaced by ARGV[1]. Returns 1 when the
# device was not in the set under any of its names (or had expired from it), else 0.
_REMEMBER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - period))
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
for i = 4, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    known = true
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIREAT', KEYS[1], now + period)
if known then
  return 0
end
return 1
"""


# KEYS[1]: the account's notice log. ARGV[1]: the window (ms), ARGV[2]: how many notices it
# allows, ARGV[3]: a nonce. Returns 1 and logs the notice if the window has room, else 0.
_NOTICE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, string.format('%d', now) .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
"""


class KnownDevices:
    def __init__(
        self,
        redis: RedisConnection,
        *,
        prefix: str,
        secret: str | bytes,
        fallbacks: Sequence[str | bytes] = (),
        days: float,
        most: int,
        notices: Limit | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self._name_key = _name_key(secret)
        self._earlier_name_keys = [_name_key(fallback) for fallback in fallbacks]
        self.period_ms = max(1, round(days * DAY_MS))
        self.most = most
        self.notices = notices
        self._remember = redis.register_script(_REMEMBER)
        self._notice = redis.register_script(_NOTICE)

    def key(self, user_id: int) -> str:
        return f"{self.prefix}kd:{user_id}"

    def notice_key(self, user_id: int) -> str:
        return f"{self.prefix}kdn:{user_id}"

    def name(self, device: str, name_key: bytes | None = None) -> str:
        """The device's name in the set: by the current secret key unless given another."""
        key = name_key or self._name_key
        digest = hmac.new(key, device.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    async def remember(self, user_id: int, device: str) -> bool:
        """Remember ``device`` for the account; whether it was unknown until now."""
        earlier = [self.name(device, key) for key in self._earlier_name_keys]
        new = await self._remember(
            keys=[self.key(user_id)],
            args=[self.name(device), self.period_ms, self.most, *earlier],
        )
        return int(new) == 1

    async def forget(self, user_id: int, device: str) -> None:
        await self.redis.zrem(self.key(user_id), self.name(device))  # remember renamed it

    async def may_notify(self, user_id: int) -> bool:
        """Count a new-device notice for the account if its window has room (see above)."""
        if self.notices is None:
            return True
        allowed = await self._notice(
            keys=[self.notice_key(user_id)],
            args=[self.notices.window_ms, self.notices.attempts, secrets.token_hex(4)],
        )
        return int(allowed) == 1

    async def forget_all(self, user_id: int) -> None:
        await self.redis.delete(self.key(user_id))
        await self.redis.delete(self.notice_key(user_id))


def _name_key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, b"quartapp known devices", hashlib.sha256).digest()


def get_known_devices() -> KnownDevices:
    config = current_app.config
    return KnownDevices(
        get_redis(),
        prefix=str(config["REDIS_PREFIX"]),
        secret=config["SECRET_KEY"],
        fallbacks=config.get("SECRET_KEY_FALLBACKS") or (),
        days=float(config["KNOWN_DEVICES_DAYS"]),
        most=int(config["KNOWN_DEVICES_MAX"]),
        notices=Limit.parse(config["NEW_DEVICE_NOTICES"]),
    )


def this_device() -> str:
    return describe_device(request.headers.get("User-Agent"))


async def remember_this_device(user_id: int) -> None:
    """The device of this request is the owner's (sign-up, a reset, an address change)."""
    try:
        await get_known_devices().remember(user_id, this_device())
    except REDIS_ERRORS:
        log.warning("could not remember the device of user %s", user_id)


async def note_sign_in_device(user_id: int) -> None:
    """After a sign-in: a device the account has not used (lately) gets the owner a notice.
    A Redis fault is logged; it never stops the sign-in."""
    device = this_device()
    known_devices = get_known_devices()
    try:
        if not await known_devices.remember(user_id, device):
            return
        if not await known_devices.may_notify(user_id):
            # Told at its next sign-in once the window has room, not never.
            await known_devices.forget(user_id, device)
            log.info("new-device notice for user %s held back: too many this window", user_id)
            return
        await get_mailer().enqueue(
            "new_device_notice", user_id=user_id, device=device, ip=get_sessions().client_ip()
        )
    except REDIS_ERRORS:
        log.warning("could not check the sign-in device of user %s", user_id)

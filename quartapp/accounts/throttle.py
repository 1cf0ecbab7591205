"""Throttling of password guesses, sign-ups and strength judgements in Redis, shared by every
app process. docs/throttling.md gives the rules, the reasons for their numbers and how the
owner keeps a way in.

Each rule keeps, per key, a sorted set of attempt times on the Redis clock: an exact sliding
window, at most N entries per key, expiring with its window. Every password check reserves
its attempt in one script before any bcrypt work (a right password gives it back), so no
concurrency gets more checks than a rule allows. Keys share one hash tag (``{throttle}``) so
a check is one round trip on Redis Cluster; accounts and clients appear in them only as
HMACs keyed by the app's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from ipaddress import IPv6Address, ip_network
from typing import Any

from quart import Quart, current_app

from quartapp.engine.redis_scripts import Script
from quartapp.infra.extension import ServingExtension
from quartapp.infra.redis_client import RedisConnection, get_redis
from quartapp.web.client_address import parse_address
from quartapp.web.errors import AppError

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# The most attempts a rule may allow in its window, and so the most entries one key holds.
MAX_ATTEMPTS = 1000
# The most clients remembered per account.
MAX_REMEMBERED = 1000
# An IPv6 client is its network of this size (what one subscriber is given).
IPV6_CLIENT_PREFIX = 64

# The rules a client the account remembers is exempt from: strangers filling them must not
# keep the owner out, nor from asking for a reset link.
_REMEMBERED_EXEMPT = frozenset(
    {"sign_in_per_ip", "sign_in_per_account", "password_reset_per_ip", "password_reset_per_address"}
)

# KEYS[1..n] are attempt logs; KEYS[n + 1] is the account's remembered clients when ARGV[3]
# is not ''.
# ARGV[1]: 'check' only reads; 'record' adds an attempt to every log, then reads (the
# decision for the next attempt); 'attempt' reads, and adds an attempt if no log refuses.
# ARGV[2] makes this attempt's member unique; ARGV[3] is the client's member in the
# remembered set, ARGV[4] how long a client stays remembered (ms). Then per log a limit, a
# window (ms) and '1' if a remembered client is exempt from it (else '0').
# Returns now, 1 if the client is remembered (else 0), then per log the ms until it allows
# another attempt (0: it does now). An attempt's member is "<now>:<ARGV[2]>".
_ATTEMPTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = (#ARGV - 4) / 3

local function waits()
  local found, full = {now, 0}, false
  if ARGV[3] ~= '' then
    local seen = redis.call('ZSCORE', KEYS[n + 1], ARGV[3])
    if seen and tonumber(seen) > now - tonumber(ARGV[4]) then
      found[2] = 1
    end
  end
  for i = 1, n do
    local limit, window = tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
    local since = '(' .. string.format('%d', now - window)
    local count = redis.call('ZCOUNT', KEYS[i], since, '+inf')
    local wait = 0
    if count >= limit then
      -- The limit-th newest attempt: once it leaves the window, the log has room again.
      -- (ZRANGE ... BYSCORE needs Redis 6.2 or later.)
      local oldest = redis.call('ZRANGE', KEYS[i], since, '+inf', 'BYSCORE',
        'LIMIT', count - limit, 1, 'WITHSCORES')
      wait = tonumber(oldest[2]) + window - now
      if not (found[2] == 1 and ARGV[4 + 3 * i] == '1') then
        full = true
      end
    end
    found[i + 2] = wait
  end
  return found, full
end

local function record()
  local member = string.format('%d:%s', now, ARGV[2])
  for i = 1, n do
    local limit, window = tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%d', now - window))
    redis.call('ZADD', KEYS[i], now, member)
    -- Only the newest `limit` attempts can ever matter to a decision.
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -limit - 1)
    redis.call('PEXPIREAT', KEYS[i], now + window)  -- from the same clock reading as the entry
  end
end

if ARGV[1] == 'record' then
  record()
  return (waits())
end
local found, full = waits()
if ARGV[1] == 'attempt' and not full then
  record()
end
return found
"""

# Gives a reserved attempt back: removes member ARGV[1] from every log in KEYS.
_RELEASE = """
local removed = 0
for i = 1, #KEYS do
  removed = removed + redis.call('ZREM', KEYS[i], ARGV[1])
end
return removed
"""

# A successful sign-in. KEYS[1]: the account's remembered clients, KEYS[2]: the (account,
# client) log. ARGV[1]: the client's member, ARGV[2]: how long it is remembered (ms),
# ARGV[3]: how many clients are remembered. The newest ones stay.
_REMEMBER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - period))
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIREAT', KEYS[1], now + period)
redis.call('DEL', KEYS[2])
return now
"""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``attempts`` in any ``window`` seconds."""

    attempts: int
    window: float

    def __post_init__(self) -> None:
        if not _is_int(self.attempts) or not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise ValueError(f"attempts must be a whole number from 1 to {MAX_ATTEMPTS}")
        if not _is_number(self.window) or self.window < 0.001:
            raise ValueError("the window must be a number of seconds, at least 0.001")

    @property
    def window_ms(self) -> int:
        return max(1, round(self.window * 1000))

    @classmethod
    def parse(cls, value: object) -> Limit | None:
        """A limit as settings give it: ``[attempts, seconds]``, ``"attempts/seconds"``,
        or None, "" or "off" for no limit."""
        if isinstance(value, Limit | None):
            return value
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in ("", "off", "none"):
                return None
            attempts, slash, window = text.partition("/")
            if not slash:
                raise ValueError(f"{value!r} is not attempts/seconds, e.g. 20/600")
            try:
                return cls(int(attempts), float(window))
            except ValueError as error:
                raise ValueError(f"{value!r}: {error}") from error
        if isinstance(value, Sequence) and len(value) == 2:
            return cls(value[0], value[1])
        raise ValueError(f"{value!r} is not [attempts, seconds], e.g. [20, 600]")


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    """The limits, and how long a client that signed in stays exempt from the wide rules.

    The module's docstring gives the reasons for the defaults."""

    sign_in_per_account_ip: Limit | None = Limit(5, 15 * MINUTE)
    sign_in_per_ip: Limit | None = Limit(20, 10 * MINUTE)
    sign_in_per_account: Limit | None = Limit(50, HOUR)
    sign_up_per_ip: Limit | None = Limit(10, HOUR)
    password_check_per_session: Limit | None = Limit(5, 15 * MINUTE)
    password_check_per_account: Limit | None = Limit(20, HOUR)
    password_strength_per_ip: Limit | None = Limit(60, 5 * MINUTE)
    password_strength_per_account: Limit | None = Limit(60, 5 * MINUTE)
    password_reset_per_ip: Limit | None = Limit(10, HOUR)
    password_reset_per_address: Limit | None = Limit(3, HOUR)
    password_reset_per_address_ip: Limit | None = Limit(3, HOUR)
    verification_mail_per_account: Limit | None = Limit(3, HOUR)
    email_change_per_account: Limit | None = Limit(3, HOUR)
    email_change_per_address: Limit | None = Limit(3, HOUR)
    mail_per_recipient: Limit | None = Limit(20, HOUR)
    # Passkey sign-in challenges asked for: each is a key in Redis for five minutes, and a
    # sign-in page asks for one as it loads (the browser's passkey autofill).
    passkey_options_per_ip: Limit | None = Limit(100, 5 * MINUTE)
    # Seconds after its last successful sign-in that a client stays remembered; 0: never.
    remember_clients_for: float = 30 * DAY
    # How many clients each account remembers (the most recent ones); 0: none.
    remember_clients: int = 10

    def __post_init__(self) -> None:
        for name in sorted(_LIMIT_FIELDS):
            if not isinstance(getattr(self, name), Limit | None):
                raise ValueError(f"{name} must be a Limit or None")
        if not _is_number(self.remember_clients_for) or self.remember_clients_for < 0:
            raise ValueError("remember_clients_for must be a number of seconds, 0 or more")
        if not _is_int(self.remember_clients) or not 0 <= self.remember_clients <= MAX_REMEMBERED:
            raise ValueError(f"remember_clients must be a whole number from 0 to {MAX_REMEMBERED}")

    @property
    def remembers(self) -> bool:
        return self.remember_clients > 0 and self.remember_clients_for >= 0.001

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ThrottleRules:
        """Rules from ``THROTTLE_<FIELD>`` settings (e.g. ``THROTTLE_SIGN_IN_PER_IP``);
        a missing one keeps its default. Raises ValueError naming the setting."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = f"THROTTLE_{field.name.upper()}"
            if name not in config:
                continue
            try:
                value = config[name]
                if field.name in _LIMIT_FIELDS:
                    value = Limit.parse(value)
                cls(**{field.name: value})  # checked alone, so the error names this one
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from error
            values[field.name] = value
        return cls(**values)


_LIMIT_FIELDS = frozenset(
    {
        "sign_in_per_account_ip",
        "sign_in_per_ip",
        "sign_in_per_account",
        "sign_up_per_ip",
        "password_check_per_session",
        "password_check_per_account",
        "password_strength_per_ip",
        "password_strength_per_account",
        "password_reset_per_ip",
        "password_reset_per_address",
        "password_reset_per_address_ip",
        "verification_mail_per_account",
        "email_change_per_account",
        "email_change_per_address",
        "mail_per_recipient",
        "passkey_options_per_ip",
    }
)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether an attempt may go ahead; if not, in how many seconds to retry, and why."""

    allowed: bool
    retry_after: int = 0  # whole seconds, at least 1 when not allowed
    limited_by: tuple[str, ...] = ()  # names of the rules (ThrottleRules fields) that refuse

    def only(self) -> Decision:
        """This decision as a plain Decision (without what a Reservation adds)."""
        return Decision(self.allowed, self.retry_after, self.limited_by)

    @property
    def retry_after_text(self) -> str:
        if self.retry_after < 90:
            return f"{self.retry_after} second{'s' if self.retry_after != 1 else ''}"
        minutes = math.ceil(self.retry_after / 60)
        return f"{minutes} minutes"


ALLOWED = Decision(allowed=True)


@dataclass(frozen=True, slots=True)
class Reservation(Decision):
    """A decision that, when allowed, already counts the attempt (see ``Throttle.release``)."""

    keys: tuple[str, ...] = ()  # the logs the attempt was added to
    member: str = ""  # its entry in each of them
    remembered: bool = False  # the account remembers this client (see record_sign_in)


def too_many_attempts(decision: Decision) -> AppError:
    """The 429 for a refused attempt; the same words whether or not the account exists."""
    return AppError(
        f"Too many attempts. Please try again in {decision.retry_after_text}.",
        status=429,
        headers={"Retry-After": str(decision.retry_after)},
    )


def client_network(ip: str) -> str:
    """What counts as one client: an IPv4 address, or an IPv6 /64. Text that is not an
    address (say "" for a Unix socket) counts as a client of its own."""
    address = parse_address(ip)
    if address is None:
        return ip.strip()
    if isinstance(address, IPv6Address):
        return str(ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


@dataclass(frozen=True, slots=True)
class _Log:
    rule: str
    key: str
    limit: Limit

    @property
    def exempt_when_remembered(self) -> bool:
        return self.rule in _REMEMBERED_EXEMPT


class Throttle:
    """Sliding-window limits on sign-ins and sign-ups; see the module's docstring.

    ``email`` arguments are the canonical email (``accounts.canonical_email``), or the
    trimmed input when it is not a valid one: an unknown or malformed email is throttled
    like any other, so the throttle never tells which accounts exist. ``ip`` is the
    client's address as ``Sessions.client_ip`` gives it.

    Sign-in: check the form (a 422 costs nothing), then ``reserve_sign_in``; refused,
    raise ``too_many_attempts`` before any bcrypt work. Then verify the password: wrong (or
    no such account), answer the 401 (the attempt stays counted); right, ``release`` the
    reservation, ``record_sign_in`` and start the session. Sign-up: check the form, then
    ``attempt_sign_up``; refused, the 429; allowed, judge the password (too weak:
    ``release``), hash and create the account, and on success ``record_sign_in``, since
    the new user is signed in from this client."""

    def __init__(
        self,
        redis: RedisConnection,
        *,
        prefix: str,
        secret: str | bytes,
        rules: ThrottleRules | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the throttle needs a secret to name its keys")
        self.redis = redis
        self.prefix = prefix
        self.rules = rules or ThrottleRules()
        key = secret.encode() if isinstance(secret, str) else secret
        # Its own key, so these names cannot be matched with any other HMAC of the secret.
        self._name_key = hmac.new(key, b"quartapp throttle key names", hashlib.sha256).digest()
        self._attempts = Script(redis, _ATTEMPTS)
        self._remember = Script(redis, _REMEMBER)
        self._release = Script(redis, _RELEASE)

    # -- names ----------------------------------------------------------------------------

    def _name(self, kind: str, text: str) -> str:
        message = f"{kind}\0{text}".encode()
        digest = hmac.new(self._name_key, message, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def account_name(self, email: str) -> str:
        return self._name("account", email.strip().lower())

    def client_name(self, ip: str) -> str:
        return self._name("client", client_network(ip))

    def key(self, rule: str, *names: str) -> str:
        """A throttle key; every one carries the same hash tag (see the docstring)."""
        return ":".join((f"{self.prefix}{{throttle}}", rule, *names))

    def sign_in_keys(self, email: str, ip: str) -> dict[str, str]:
        """The keys a sign-in with these credentials touches, by rule (and "remembered")."""
        account, client = self.account_name(email), self.client_name(ip)
        return {
            "sign_in_per_account_ip": self.key("sign_in_per_account_ip", account, client),
            "sign_in_per_ip": self.key("sign_in_per_ip", client),
            "sign_in_per_account": self.key("sign_in_per_account", account),
            "remembered": self.key("remembered", account),
        }

    def sign_up_key(self, ip: str) -> str:
        return self.key("sign_up_per_ip", self.client_name(ip))

    def _sign_in_logs(self, keys: Mapping[str, str]) -> list[_Log]:
        rules = self.rules
        limits = {
            "sign_in_per_account_ip": rules.sign_in_per_account_ip,
            "sign_in_per_ip": rules.sign_in_per_ip,
            "sign_in_per_account": rules.sign_in_per_account,
        }
        return [_Log(rule, keys[rule], limit) for rule, limit in limits.items() if limit]

    # -- the script -----------------------------------------------------------------------

    async def _run(
        self,
        mode: str,
        logs: Sequence[_Log],
        remembered: tuple[str, str] | None,
        *,
        ask_remembered: bool = False,
    ) -> Reservation:
        """Run the attempts script; the answer names the entry an allowed 'attempt' added.

        ``ask_remembered``: the caller needs to know whether the client is remembered even
        when no rule applies (a sign-in's lane), so Redis is asked then too, and an outage
        raises instead of reading as "not remembered"."""
        if remembered is not None and not self.rules.remembers:
            remembered = None
        if not logs and not (ask_remembered and remembered is not None):
            return Reservation(allowed=True)
        keys = [log.key for log in logs]
        nonce = secrets.token_hex(4)
        args: list[str | int] = [mode, nonce, "", 0]
        if remembered is not None:
            keys.append(remembered[0])
            args[2:4] = [remembered[1], round(self.rules.remember_clients_for * 1000)]
        for log in logs:
            args += [log.limit.attempts, log.limit.window_ms, int(log.exempt_when_remembered)]
        result = await self._attempts(keys=keys, args=args)
        is_remembered = int(result[1]) == 1
        waits = {
            log.rule: int(wait)
            for log, wait in zip(logs, result[2:], strict=True)
            if int(wait) > 0 and not (is_remembered and log.exempt_when_remembered)
        }
        if not waits:
            if mode != "attempt" or not logs:  # nothing recorded: nothing to give back
                return Reservation(allowed=True, remembered=is_remembered)
            member = f"{int(result[0])}:{nonce}"
            return Reservation(
                allowed=True,
                keys=tuple(log.key for log in logs),
                member=member,
                remembered=is_remembered,
            )
        # Every refusing rule has to have room again; they lapse one after another.
        wait_ms = max(waits.values())
        return Reservation(False, max(1, math.ceil(wait_ms / 1000)), tuple(waits))

    async def release(self, reservation: Reservation) -> None:
        """Give a reserved attempt back: it succeeded, so it counts against nobody."""
        if reservation.member:
            await self._release(keys=list(reservation.keys), args=[reservation.member])

    # -- sign-in --------------------------------------------------------------------------

    async def reserve_sign_in(self, email: str, ip: str) -> Reservation:
        """Count a password attempt on this account from this client, if every rule allows
        it, in one atomic step; refused, it counts nowhere.

        Call it before any bcrypt work, so that however many requests arrive at once, no
        more passwords are checked than the rules allow. On success ``release`` the
        reservation and ``record_sign_in``; on failure the attempt stays counted."""
        keys = self.sign_in_keys(email, ip)
        remembered = (keys["remembered"], self.client_name(ip))
        logs = self._sign_in_logs(keys)
        # Asked even with every sign-in rule off: the password check's lane depends on it.
        return await self._run("attempt", logs, remembered, ask_remembered=True)

    async def check_sign_in(self, email: str, ip: str) -> Decision:
        """May this client try a password on this account now? Records nothing (for
        operators and tests; the routes use ``reserve_sign_in``)."""
        keys = self.sign_in_keys(email, ip)
        remembered = (keys["remembered"], self.client_name(ip))
        return (await self._run("check", self._sign_in_logs(keys), remembered)).only()

    async def record_failed_sign_in(self, email: str, ip: str) -> Decision:
        """Count a wrong password (or an unknown email) against the account, the client
        and the pair; returns the decision for this client's next attempt."""
        keys = self.sign_in_keys(email, ip)
        remembered = (keys["remembered"], self.client_name(ip))
        return (await self._run("record", self._sign_in_logs(keys), remembered)).only()

    async def record_sign_in(self, email: str, ip: str) -> None:
        """A correct password: forget this pair's failures and remember the client for the
        account. The account's and the client's logs stay (see the docstring)."""
        keys = self.sign_in_keys(email, ip)
        if not self.rules.remembers:
            await self.redis.delete(keys["sign_in_per_account_ip"])
            return
        await self._remember(
            keys=[keys["remembered"], keys["sign_in_per_account_ip"]],
            args=[
                self.client_name(ip),
                round(self.rules.remember_clients_for * 1000),
                self.rules.remember_clients,
            ],
        )

    async def reserve_passkey_sign_in(self, ip: str) -> Reservation:
        """Count a passkey sign-in from this client in the sign-in rule per client
        (``sign_in_per_ip``, the log password sign-ins from it count in too), before its
        answer is checked; the account is not known until then. On success ``release``
        it; a refused passkey stays counted."""
        limit = self.rules.sign_in_per_ip
        key = self.key("sign_in_per_ip", self.client_name(ip))
        logs = [_Log("sign_in_per_ip", key, limit)] if limit else []
        return await self._run("attempt", logs, None)

    async def attempt_passkey_options(self, ip: str) -> Decision:
        """Count a passkey sign-in challenge asked for by this client, if it is allowed."""
        limit = self.rules.passkey_options_per_ip
        key = self.key("passkey_options_per_ip", self.client_name(ip))
        logs = [_Log("passkey_options_per_ip", key, limit)] if limit else []
        return (await self._run("attempt", logs, None)).only()

    # -- sign-up --------------------------------------------------------------------------

    async def attempt_sign_up(self, ip: str) -> Reservation:
        """Count a sign-up attempt from this client if it is allowed, in one atomic step.

        Call it after the cheap checks of the form and before judging the password's
        strength or hashing it, so a refused sign-up costs nothing; ``release`` it when the
        password is then refused as too weak (the user only has to pick another)."""
        limit = self.rules.sign_up_per_ip
        logs = [_Log("sign_up_per_ip", self.sign_up_key(ip), limit)] if limit else []
        return await self._run("attempt", logs, None)

    # -- password re-checks and the strength hint -------------------------------------------

    async def reserve_password_check(self, session_id: str, user_id: int) -> Reservation:
        """Count a re-check of a signed-in user's password (before a password change or an
        account deletion), per session and per account, before any bcrypt work.

        These rules are apart from sign-in's: a stolen session cannot guess faster than
        they allow, and failed sign-ins by others from the owner's network never lock the
        owner out of their own account pages. ``release`` it when the password is right."""
        rules = self.rules
        logs = [
            _Log(rule, self.key(rule, name), limit)
            for rule, name, limit in (
                (
                    "password_check_per_session",
                    self._name("session", session_id),
                    rules.password_check_per_session,
                ),
                (
                    "password_check_per_account",
                    self._name("user", str(user_id)),
                    rules.password_check_per_account,
                ),
            )
            if limit
        ]
        return await self._run("attempt", logs, None)

    async def attempt_password_strength(self, ip: str, user_id: int | None = None) -> Decision:
        """Count a request for a strength judgement, if allowed: judging a password costs
        real CPU time, so nobody gets it for free in bulk.

        A signed-in user's judgements (``user_id``: the live hint on the password form, a
        password change) count against their own account only, never against the client:
        others behind the same address (an office, a NAT) cannot spend that budget, nor the
        user theirs. Anonymous ones (sign-up, its hint, a reset) count against the client."""
        if user_id is not None:
            rule, name = "password_strength_per_account", self._name("user", str(user_id))
        else:
            rule, name = "password_strength_per_ip", self.client_name(ip)
        limit: Limit | None = getattr(self.rules, rule)
        logs = [_Log(rule, self.key(rule, name), limit)] if limit else []
        return await self._run("attempt", logs, None)

    # -- mail -----------------------------------------------------------------------------

    async def attempt_password_reset(self, email: str, ip: str) -> Decision:
        """Count a "forgot your password" request for this address from this client, if
        the rules allow it. ``email`` is what was asked for, known or not: the decision
        reads the same either way to anyone the account does not remember.

        A client that signed in to the account lately (see ``record_sign_in``) is exempt
        from the per-client and per-address rules, so strangers asking for the owner's
        address cannot keep the owner from a link; only its own (address, client) rule
        applies to it. So one address gets at most ``password_reset_per_address`` links
        from strangers, plus ``password_reset_per_address_ip`` from each remembered client."""
        rules = self.rules
        address, client = self.account_name(email), self.client_name(ip)
        logs = [
            _Log(rule, self.key(rule, *names), limit)
            for rule, names, limit in (
                ("password_reset_per_ip", (client,), rules.password_reset_per_ip),
                ("password_reset_per_address", (address,), rules.password_reset_per_address),
                (
                    "password_reset_per_address_ip",
                    (address, client),
                    rules.password_reset_per_address_ip,
                ),
            )
            if limit
        ]
        remembered = (self.key("remembered", address), client)
        return (await self._run("attempt", logs, remembered)).only()

    async def attempt_verification_mail(self, user_id: int) -> Decision:
        """Count a request to send the address-verification link again."""
        limit = self.rules.verification_mail_per_account
        key = self.key("verification_mail_per_account", self._name("user", str(user_id)))
        logs = [_Log("verification_mail_per_account", key, limit)] if limit else []
        return (await self._run("attempt", logs, None)).only()

    async def attempt_email_change(self, user_id: int, new_email: str) -> Decision:
        """Count a request to mail an address-change link for this account to
        ``new_email``: per account, and per address mailed (however many accounts ask)."""
        rules = self.rules
        logs = [
            _Log(rule, self.key(rule, name), limit)
            for rule, name, limit in (
                (
                    "email_change_per_account",
                    self._name("user", str(user_id)),
                    rules.email_change_per_account,
                ),
                (
                    "email_change_per_address",
                    self.account_name(new_email),
                    rules.email_change_per_address,
                ),
            )
            if limit
        ]
        return (await self._run("attempt", logs, None)).only()

    async def reserve_mail(self, recipient: str) -> Reservation:
        """Count a mail about to be sent to ``recipient``, of any kind, if it has not had
        ``mail_per_recipient`` already; ``release`` it if the SMTP server does not take it.
        The bound behind every rule that limits one kind of mail."""
        limit = self.rules.mail_per_recipient
        key = self.key("mail_per_recipient", self._name("recipient", recipient.strip().lower()))
        logs = [_Log("mail_per_recipient", key, limit)] if limit else []
        return await self._run("attempt", logs, None)

    # -- operators ------------------------------------------------------------------------

    async def reset(self, *, email: str | None = None, ip: str | None = None) -> int:
        """Clear every count named by what is given: the account's, the client's (sign-in
        and sign-up), and with both, the pair's. Remembered clients stay. Returns how many
        keys were deleted."""
        found: list[str] = []
        if email is not None:
            account = self.account_name(email)
            found.append(self.key("sign_in_per_account", account))
            if ip is not None:
                found.append(self.key("sign_in_per_account_ip", account, self.client_name(ip)))
        if ip is not None:
            found.append(self.key("sign_in_per_ip", self.client_name(ip)))
            found.append(self.sign_up_key(ip))
            found.append(self.key("password_strength_per_ip", self.client_name(ip)))
        if not found:
            return 0
        return int(await self.redis.delete(*found))


EXTENSION = "quartapp.throttle"


class Throttling(ServingExtension):
    """The app's ``Throttle``: rules read from ``THROTTLE_*`` settings at start-up (a bad
    one stops start-up), the Redis side opened when the app starts serving."""

    EXTENSION = EXTENSION
    _throttle: Throttle | None = None

    def init_app(self, app: Quart) -> None:
        # Checked already where the settings are loaded (config.load_config): a bad rule
        # stops the app there, with the setting's name.
        self.rules = ThrottleRules.from_config(app.config)
        super().init_app(app)

    async def open(self) -> None:
        config = current_app.config
        self._throttle = Throttle(
            get_redis(),
            prefix=str(config["REDIS_PREFIX"]),
            secret=config["SECRET_KEY"],
            rules=self.rules,
        )

    @property
    def throttle(self) -> Throttle:
        if self._throttle is None:
            raise RuntimeError("the throttle is used before the app started serving")
        return self._throttle


def get_throttle() -> Throttle:
    throttling: Throttling = current_app.extensions[EXTENSION]
    return throttling.throttle

"""The sign-in and sign-up throttle against real Redis, with real (short) time."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from quartapp.accounts.throttle import (
    Decision,
    Limit,
    Throttle,
    ThrottleRules,
    client_network,
    too_many_attempts,
)

from .conftest import REDIS_URL

SECRET = "test throttle secret"
EMAIL = "ada@example.com"
IP = "192.0.2.1"

MakeThrottle = Callable[..., Throttle]


def only(**limits: Any) -> ThrottleRules:
    """Rules with every limit off but the ones given."""
    off: dict[str, Any] = {
        "sign_in_per_account_ip": None,
        "sign_in_per_ip": None,
        "sign_in_per_account": None,
        "sign_up_per_ip": None,
    }
    return ThrottleRules(**{**off, **limits})


@pytest.fixture
async def make_throttle(redis: Redis, redis_prefix: str) -> AsyncIterator[MakeThrottle]:
    """Throttles on this test's key prefix; its keys are deleted afterwards."""

    def make(rules: ThrottleRules | None = None, client: Redis | None = None) -> Throttle:
        return Throttle(client or redis, prefix=redis_prefix, secret=SECRET, rules=rules)

    yield make
    keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)


async def redis_ms(redis: Redis) -> int:
    seconds, microseconds = await redis.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


async def fail(throttle: Throttle, email: str, ip: str, times: int = 1) -> Decision:
    """Wrong passwords, each let through by the check first, as the sign-in route does."""
    decision = Decision(allowed=True)
    for _ in range(times):
        assert (await throttle.check_sign_in(email, ip)).allowed
        decision = await throttle.record_failed_sign_in(email, ip)
    return decision


# -- limits and windows ---------------------------------------------------------------------


async def test_failures_up_to_the_limit_then_refused(make_throttle: MakeThrottle) -> None:
    throttle = make_throttle(only(sign_in_per_account_ip=Limit(3, 60)))
    assert (await fail(throttle, EMAIL, IP, 2)).allowed
    # The failure that fills the window says so at once: the next attempt is refused.
    last = await fail(throttle, EMAIL, IP)
    assert last == Decision(False, 60, ("sign_in_per_account_ip",))
    decision = await throttle.check_sign_in(EMAIL, IP)
    assert not decision.allowed
    assert decision.retry_after == 60  # all three are under a second old
    assert decision.limited_by == ("sign_in_per_account_ip",)


async def test_limits_lapse_as_the_window_slides(make_throttle: MakeThrottle) -> None:
    throttle = make_throttle(only(sign_in_per_account_ip=Limit(2, 1.0)))
    start = time.monotonic()
    await fail(throttle, EMAIL, IP)
    await asyncio.sleep(0.5)
    await fail(throttle, EMAIL, IP)
    refused = await throttle.check_sign_in(EMAIL, IP)
    assert not refused.allowed
    assert refused.retry_after == 1
    # The first failure leaves the window; the second still counts (a fixed window would
    # have forgotten both or neither).
    await asyncio.sleep(max(0.0, 1.05 - (time.monotonic() - start)))
    assert (await throttle.check_sign_in(EMAIL, IP)).allowed
    assert not (await throttle.record_failed_sign_in(EMAIL, IP)).allowed


async def test_retry_after_is_when_the_oldest_counted_attempt_leaves(
    make_throttle: MakeThrottle, redis: Redis
) -> None:
    throttle = make_throttle(only(sign_in_per_account_ip=Limit(3, 60)))
    key = throttle.sign_in_keys(EMAIL, IP)["sign_in_per_account_ip"]
    now = await redis_ms(redis)
    # Seconds ago: one out of the window already, then four that count.
    ages = {"old": 70, "a": 55, "b": 50, "c": 40, "d": 10}
    await redis.zadd(key, {name: now - age * 1000 for name, age in ages.items()})
    decision = await throttle.check_sign_in(EMAIL, IP)
    # Three must count for a refusal: it lasts until "b" (the third newest) leaves.
    assert decision == Decision(False, 10, ("sign_in_per_account_ip",))
    await redis.zrem(key, "b", "c")
    assert (await throttle.check_sign_in(EMAIL, IP)).allowed


async def test_retry_after_waits_for_every_refusing_rule(
    make_throttle: MakeThrottle, redis: Redis
) -> None:
    throttle = make_throttle(
        only(sign_in_per_account_ip=Limit(1, 60), sign_in_per_ip=Limit(1, 600))
    )
    keys = throttle.sign_in_keys(EMAIL, IP)
    now = await redis_ms(redis)
    await redis.zadd(keys["sign_in_per_account_ip"], {"x": now - 30_000})
    await redis.zadd(keys["sign_in_per_ip"], {"x": now - 100_000})
    decision = await throttle.check_sign_in(EMAIL, IP)
    assert decision == Decision(False, 500, ("sign_in_per_account_ip", "sign_in_per_ip"))


async def test_accounts_and_clients_are_counted_apart(make_throttle: MakeThrottle) -> None:
    throttle = make_throttle(only(sign_in_per_account_ip=Limit(2, 60)))
    await fail(throttle, EMAIL, IP, 2)
    assert not (await throttle.check_sign_in(EMAIL, IP)).allowed
    assert (await throttle.check_sign_in(EMAIL, "192.0.2.2")).allowed
    assert (await throttle.check_sign_in("bob@example.com", IP)).allowed
    # The same account however it is typed; the same client however its address is written.
    assert not (await throttle.check_sign_in("  ADA@Example.com ", IP)).allowed
    assert not (await throttle.check_sign_in(EMAIL, "::ffff:192.0.2.1")).allowed


async def test_an_ipv6_client_is_its_slash_64(make_throttle: MakeThrottle) -> None:
    throttle = make_throttle(only(sign_in_per_ip=Limit(2, 60)))
    await fail(throttle, EMAIL, "2001:db8:1:2::1")
    await fail(throttle, "bob@example.com", "2001:db8:1:2:ffff::9")
    assert not (await throttle.check_sign_in("eve@example.com", "2001:db8:1:2::77")).allowed
    assert (await throttle.check_sign_in("eve@example.com", "2001:db8:1:3::1")).allowed
    assert client_network("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_network("::ffff:192.0.2.1") == client_network("192.0.2.1") == "192.0.2.1"
    assert client_network("") == ""


# -- sprays and stuffing --------------------------------------------------------------------


SPRAY_RULES = ThrottleRules(
    sign_in_per_account_ip=Limit(3, 60),
    sign_in_per_ip=Limit(5, 60),
    sign_in_per_account=Limit(8, 60),
    sign_up_per_ip=None,
)


async def test_a_spray_on_one_account_leaves_its_owner_a_way_in(
    make_throttle: MakeThrottle,
) -> None:
    throttle = make_throttle(SPRAY_RULES)
    owner_ip = "198.51.100.7"
    await throttle.record_sign_in(EMAIL, owner_ip)  # signed in from home last week
    attackers = [f"203.0.113.{n}" for n in range(1, 9)]
    for ip in attackers[:7]:
        await fail(throttle, EMAIL, ip)
    # Below the account's limit, a client that has not failed is let through.
    assert (await throttle.check_sign_in(EMAIL, "192.0.2.200")).allowed
    await fail(throttle, EMAIL, attackers[7])
    # Now the account is being sprayed: clients it does not know wait...
    for ip in [*attackers, "192.0.2.200"]:
        decision = await throttle.check_sign_in(EMAIL, ip)
        assert not decision.allowed
        assert decision.limited_by == ("sign_in_per_account",)
        assert 0 < decision.retry_after <= 60
    # ...but the owner, on a client that signed in before, still gets in.
    assert (await throttle.check_sign_in(EMAIL, owner_ip)).allowed
    # Other accounts are not affected.
    assert (await throttle.check_sign_in("bob@example.com", attackers[0])).allowed


async def test_many_accounts_from_one_client_hit_the_per_client_limit(
    make_throttle: MakeThrottle,
) -> None:
    throttle = make_throttle(SPRAY_RULES)
    await throttle.record_sign_in("carol@example.com", IP)  # carol shares the office address
    for n in range(5):
        await fail(throttle, f"user{n}@example.com", IP)
    decision = await throttle.check_sign_in("user9@example.com", IP)
    assert not decision.allowed
    assert decision.limited_by == ("sign_in_per_ip",)
    # Another client is not affected, and carol still signs in from the office.
    assert (await throttle.check_sign_in("user9@example.com", "192.0.2.2")).allowed
    assert (await throttle.check_sign_in("carol@example.com", IP)).allowed


async def test_a_remembered_client_still_meets_its_own_limit(make_throttle: MakeThrottle) -> None:
    throttle = make_throttle(SPRAY_RULES)
    await throttle.record_sign_in(EMAIL, IP)
    decision = await fail(throttle, EMAIL, IP, 3)
    assert decision.limited_by == ("sign_in_per_account_ip",)
    assert not (await throttle.check_sign_in(EMAIL, IP)).allowed


async def test_clients_are_remembered_for_a_while_and_only_the_latest(
    make_throttle: MakeThrottle, redis: Redis
) -> None:
    rules = ThrottleRules(
        sign_in_per_account_ip=None,
        sign_in_per_ip=None,
        sign_in_per_account=Limit(1, 60),
        remember_clients_for=0.5,
        remember_clients=2,
    )
    throttle = make_throttle(rules)
    first, second, third = "192.0.2.1", "192.0.2.2", "192.0.2.3"
    for ip in (first, second, third):
        await throttle.record_sign_in(EMAIL, ip)
        await asyncio.sleep(0.005)  # one sign-in per millisecond at most: a clear order
    remembered = throttle.sign_in_keys(EMAIL, IP)["remembered"]
    assert await redis.zcard(remembered) == 2
    assert 0 < await redis.pttl(remembered) <= 500
    await fail(throttle, EMAIL, "203.0.113.1")
    assert not (await throttle.check_sign_in(EMAIL, first)).allowed  # pushed out
    assert (await throttle.check_sign_in(EMAIL, second)).allowed
    assert (await throttle.check_sign_in(EMAIL, third)).allowed
    await asyncio.sleep(0.55)
    assert not (await throttle.check_sign_in(EMAIL, third)).allowed  # forgotten


# -- success, reset ---------------------------------------------------------------------------


async def test_a_sign_in_clears_only_its_own_pair(
    make_throttle: MakeThrottle, redis: Redis
) -> None:
    throttle = make_throttle(SPRAY_RULES)
    keys = throttle.sign_in_keys(EMAIL, IP)
    await fail(throttle, EMAIL, IP, 2)
    await fail(throttle, EMAIL, "192.0.2.2", 2)
    await throttle.record_sign_in(EMAIL, IP)
    assert await redis.exists(keys["sign_in_per_account_ip"]) == 0
    other_pair = throttle.sign_in_keys(EMAIL, "192.0.2.2")["sign_in_per_account_ip"]
    assert await redis.zcard(other_pair) == 2
    # Neither the client's nor the account's record is wiped by a success.
    assert await redis.zcard(keys["sign_in_per_ip"]) == 2
    assert await redis.zcard(keys["sign_in_per_account"]) == 4
    assert (await fail(throttle, EMAIL, IP, 2)).allowed  # a fresh allowance for the pair


async def test_a_sign_in_with_remembering_off_still_clears_its_pair(
    make_throttle: MakeThrottle, redis: Redis
) -> None:
    throttle = make_throttle(ThrottleRules(remember_clients=0))
    keys = throttle.sign_in_keys(EMAIL, IP)
    await fail(throttle, EMAIL, IP, 2)
    await throttle.record_sign_in(EMAIL, IP)
    assert await redis.exists(keys["sign_in_per_account_ip"], keys["remembered"]) == 0


async def test_reset_clears_what_it_names(make_throttle: MakeThrottle, redis: Redis) -> None:
    throttle = make_throttle(ThrottleRules())
    keys = throttle.sign_in_keys(EMAIL, IP)
    sign_up = throttle.sign_up_key(IP)

    async def fill() -> None:
        await fail(throttle, EMAIL, IP)
        await throttle.attempt_sign_up(IP)
        await throttle.record_sign_in(EMAIL, "198.51.100.1")

    async def present() -> set[str]:
        names = {**keys, "sign_up_per_ip": sign_up}
        return {name for name, key in names.items() if await redis.exists(key)}

    await fill()
    assert await throttle.reset(email=EMAIL) == 1
    assert await present() == {
        "sign_in_per_account_ip",
        "sign_in_per_ip",
        "sign_up_per_ip",
        "remembered",
    }
    assert await throttle.reset(ip=IP) == 2
    assert await present() == {"sign_in_per_account_ip", "remembered"}
    await fill()
    assert await throttle.reset(email=EMAIL, ip=IP) == 4
    assert await present() == {"remembered"}  # remembered clients outlive a reset
    assert await throttle.reset() == 0


# -- memory ---------------------------------------------------------------------------------


async def test_keys_expire_with_their_window_and_hold_at_most_the_limit(
    make_throttle: MakeThrottle, redis: Redis
) -> None:
    rules = ThrottleRules(
        sign_in_per_account_ip=Limit(3, 30),
        sign_in_per_ip=Limit(4, 20),
        sign_in_per_account=Limit(5, 40),
        sign_up_per_ip=Limit(2, 10),
        remember_clients_for=50,
    )
    throttle = make_throttle(rules)
    # Requests that all passed the check at once record more than the limit.
    for _ in range(12):
        await throttle.record_failed_sign_in(EMAIL, IP)
        await throttle.attempt_sign_up(IP)
    await throttle.record_sign_in(EMAIL, "198.51.100.1")
    keys = throttle.sign_in_keys(EMAIL, IP)
    expected = {
        keys["sign_in_per_account_ip"]: (3, 30),
        keys["sign_in_per_ip"]: (4, 20),
        keys["sign_in_per_account"]: (5, 40),
        throttle.sign_up_key(IP): (2, 10),
        keys["remembered"]: (1, 50),
    }
    for key, (cap, seconds) in expected.items():
        assert await redis.zcard(key) == cap, key
        assert seconds * 1000 - 2000 < await redis.pttl(key) <= seconds * 1000, key


async def test_sign_ups_count_every_attempt_atomically(
    make_throttle: MakeThrottle, redis: Redis
) -> None:
    throttle = make_throttle(only(sign_up_per_ip=Limit(10, 3600)))
    decisions = await asyncio.gather(*(throttle.attempt_sign_up(IP) for _ in range(25)))
    assert sum(decision.allowed for decision in decisions) == 10
    refused = [decision for decision in decisions if not decision.allowed]
    assert {decision.limited_by for decision in refused} == {("sign_up_per_ip",)}
    assert {decision.retry_after for decision in refused} == {3600}
    assert await redis.zcard(throttle.sign_up_key(IP)) == 10  # refusals are not recorded
    assert (await throttle.attempt_sign_up("192.0.2.2")).allowed


async def test_rules_that_are_off_touch_nothing(
    make_throttle: MakeThrottle, redis: Redis, redis_prefix: str
) -> None:
    throttle = make_throttle(only(), client=Redis.from_url("redis://127.0.0.1:1/0"))
    # Not one call reaches Redis (there is none on port 1).
    assert (await throttle.check_sign_in(EMAIL, IP)).allowed
    assert (await throttle.record_failed_sign_in(EMAIL, IP)).allowed
    assert (await throttle.attempt_sign_up(IP)).allowed
    await throttle.redis.aclose()
    assert [key async for key in redis.scan_iter(match=f"{redis_prefix}*")] == []


# -- processes, names, faults -------------------------------------------------------------


async def test_two_processes_share_their_counts(make_throttle: MakeThrottle, redis: Redis) -> None:
    other_client = Redis.from_url(REDIS_URL)
    try:
        rules = only(sign_in_per_account_ip=Limit(2, 60), sign_up_per_ip=Limit(1, 60))
        first, second = make_throttle(rules), make_throttle(rules, client=other_client)
        await first.record_failed_sign_in(EMAIL, IP)
        await second.record_failed_sign_in(EMAIL, IP)
        assert not (await first.check_sign_in(EMAIL, IP)).allowed
        assert not (await second.check_sign_in(EMAIL, IP)).allowed
        await second.record_sign_in(EMAIL, IP)
        assert (await first.check_sign_in(EMAIL, IP)).allowed
        assert (await first.attempt_sign_up(IP)).allowed
        assert not (await second.attempt_sign_up(IP)).allowed
    finally:
        await other_client.aclose()


async def test_key_names_hide_emails_and_addresses_and_share_one_slot(
    make_throttle: MakeThrottle, redis: Redis, redis_prefix: str
) -> None:
    throttle = make_throttle(ThrottleRules())
    email, ip = "zoë.o'brien@example.com", "2001:db8::1"
    await fail(throttle, email, ip)
    await throttle.record_sign_in(email, ip)
    await throttle.attempt_sign_up(ip)
    keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}*")]
    assert len(keys) == 4  # the pair's log went with the successful sign-in
    members = [m for key in keys for m in await redis.zrange(key, 0, -1)]
    for text in [*keys, *members]:
        for clear in (email, "o'brien", "example.com", ip, "2001:db8"):
            assert clear not in text, text
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert all(key.startswith(f"{redis_prefix}{{throttle}}:") for key in keys)
    # Another secret, other names: nobody can work out the names without it.
    other = Throttle(redis, prefix=redis_prefix, secret="another secret")
    assert other.account_name(email) != throttle.account_name(email)
    assert other.client_name(ip) != throttle.client_name(ip)


async def test_redis_errors_reach_the_caller(make_throttle: MakeThrottle) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    throttle = make_throttle(ThrottleRules(), client=client)
    try:
        for call in (
            throttle.check_sign_in(EMAIL, IP),
            throttle.record_failed_sign_in(EMAIL, IP),
            throttle.record_sign_in(EMAIL, IP),
            throttle.attempt_sign_up(IP),
            throttle.reset(email=EMAIL),
        ):
            with pytest.raises(RedisConnectionError):
                await call
    finally:
        await client.aclose()


async def test_a_sign_in_asks_whether_its_client_is_remembered_with_every_rule_off(
    make_throttle: MakeThrottle, redis_prefix: str
) -> None:
    """The password check's lane depends on it (accounts/hashing.py), rules or none; and
    with Redis away the reservation fails rather than read as "not remembered"."""
    throttle = make_throttle(only())
    assert not (await throttle.reserve_sign_in(EMAIL, IP)).remembered
    await throttle.record_sign_in(EMAIL, IP)
    reservation = await throttle.reserve_sign_in(EMAIL, IP)
    assert reservation.allowed
    assert reservation.remembered
    assert not (await throttle.reserve_sign_in(EMAIL, "192.0.2.99")).remembered
    assert not (await throttle.reserve_sign_in("bob@example.com", IP)).remembered
    assert reservation.keys == ()  # nothing was counted, so nothing is given back
    # Not remembering clients at all: nothing to ask.
    forgetful = make_throttle(dataclasses.replace(only(), remember_clients=0))
    assert not (await forgetful.reserve_sign_in(EMAIL, IP)).remembered

    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        down = Throttle(client, prefix=redis_prefix, secret=SECRET, rules=only())
        with pytest.raises(RedisConnectionError):
            await down.reserve_sign_in(EMAIL, IP)
    finally:
        await client.aclose()


# -- settings and the answer --------------------------------------------------------------


def test_limits_are_checked() -> None:
    for attempts, window in [(0, 60), (-1, 60), (True, 60), (1001, 60), (5, 0), (5, float("nan"))]:
        with pytest.raises(ValueError, match=r"attempts|window"):
            Limit(attempts, window)
    with pytest.raises(ValueError, match="remember_clients"):
        ThrottleRules(remember_clients=-1)
    with pytest.raises(ValueError, match="secret"):
        Throttle(Redis(), prefix="x:", secret="")


def test_rules_from_settings() -> None:
    assert ThrottleRules.from_config({}) == ThrottleRules()
    rules = ThrottleRules.from_config(
        {
            "THROTTLE_SIGN_IN_PER_IP": [30, 300],
            "THROTTLE_SIGN_IN_PER_ACCOUNT": "100/7200",
            "THROTTLE_SIGN_UP_PER_IP": None,
            "THROTTLE_SIGN_IN_PER_ACCOUNT_IP": "off",
            "THROTTLE_REMEMBER_CLIENTS": 3,
            "UNRELATED": 1,
        }
    )
    assert rules == ThrottleRules(
        sign_in_per_account_ip=None,
        sign_in_per_ip=Limit(30, 300),
        sign_in_per_account=Limit(100, 7200),
        sign_up_per_ip=None,
        remember_clients=3,
    )
    for name, value in [
        ("THROTTLE_SIGN_IN_PER_IP", "20 per minute"),
        ("THROTTLE_SIGN_IN_PER_IP", "x/60"),
        ("THROTTLE_SIGN_IN_PER_IP", [0, 60]),
        ("THROTTLE_SIGN_UP_PER_IP", 10),
        ("THROTTLE_REMEMBER_CLIENTS_FOR", "long"),
    ]:
        with pytest.raises(ValueError, match=name):
            ThrottleRules.from_config({name: value})


def test_a_refusal_is_a_429_with_retry_after() -> None:
    error = too_many_attempts(Decision(False, 61, ("sign_in_per_ip",)))
    assert error.status == 429
    assert error.headers == {"Retry-After": "61"}
    assert "61 seconds" in error.message
    assert "1 second." in too_many_attempts(Decision(False, 1)).message
    assert "15 minutes" in too_many_attempts(Decision(False, 900)).message

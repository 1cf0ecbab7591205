"""The throttle against a model of its sliding windows, with real Redis and real (short) time.

A hypothesis state machine makes sign-in attempts (checked first, as the route does, and
recorded when they fail), successful sign-ins, bursts of failures that all passed the check
at once, sign-ups and resets, for a few accounts and clients, while real time passes. Every
decision is checked against a model that keeps every attempt's time, and Redis itself
against what the model says it must hold: the newest attempts still in the window, never
more than the limit, and a TTL that ends with the window.

Time is Redis's. After each write the model reads the time it was stamped with (and checks
it lies between two readings of Redis's ``TIME`` taken around the call), so the model's
attempt times are exact. A check happens at some moment between the two readings around it:
a rule that refuses at every moment of that span must refuse, one that allows at every moment
must allow, and in between either answer is accepted. The same span bounds Retry-After.
Windows are scaled down (0.4 to 2.5 s) so limits fill and lapse within a run.
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, reject, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from quartapp.accounts.throttle import Decision, Limit, Throttle, ThrottleRules

from .support.redis_machine import RedisMachine

REDIS_URL = os.environ.get("QUARTAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

RULES = ThrottleRules(
    sign_in_per_account_ip=Limit(2, 0.4),
    sign_in_per_ip=Limit(4, 0.7),
    # Longer than an example sleeps, so Retry-After takes values above one second.
    sign_in_per_account=Limit(5, 2.5),
    sign_up_per_ip=Limit(2, 1.5),
    remember_clients_for=0.8,
    remember_clients=2,
)
REMEMBER_MS = 800
# Real sleeping per example, at most.
SLEEP_BUDGET_MS = 900
# Every time involved comes from Redis's TIME, which does not go backwards; the margin only
# absorbs the rounding of microseconds to milliseconds.
MARGIN_MS = 2


def millis(time: tuple[Any, Any]) -> int:
    """Redis's TIME (seconds, microseconds) in milliseconds, as the scripts count them."""
    return int(time[0]) * 1000 + int(time[1]) // 1000


# What the app passes, and the account or client the model expects it to count as.
EMAILS = {
    "ada@example.com": "ada",
    "  ADA@Example.COM ": "ada",
    "bob@example.com": "bob",
    "eve@example.com": "eve",
}
CLIENTS = {
    "192.0.2.1": "v4-a",
    "::ffff:192.0.2.1": "v4-a",
    "192.0.2.2": "v4-b",
    "2001:db8::1": "v6",
    "2001:db8::ffff:7": "v6",  # the same /64
}
emails = st.sampled_from(sorted(EMAILS))
ips = st.sampled_from(sorted(CLIENTS))

T = TypeVar("T")


@dataclass
class ModelLog:
    """One sliding window: every attempt recorded in it, and when it was last written."""

    rule: str
    limit: int
    window: int  # ms
    times: list[int] = field(default_factory=list)
    written_at: int | None = None

    def count_after(self, moment: int) -> int:
        return sum(1 for t in self.times if t > moment)

    def frees_at(self) -> int:
        """When the limit-th newest attempt leaves the window (while the log is full)."""
        return sorted(self.times)[-self.limit] + self.window

    def stored(self) -> list[int]:
        """What Redis must hold: the newest ``limit`` of those in the window when last written."""
        if self.written_at is None:
            return []
        kept = sorted(t for t in self.times if t > self.written_at - self.window)
        return kept[-self.limit :]

    def clear(self) -> None:
        self.times.clear()
        self.written_at = None


_BY_ACCOUNT = {"sign_in_per_account_ip", "sign_in_per_account", "remembered"}
_BY_CLIENT = {"sign_in_per_account_ip", "sign_in_per_ip", "sign_up_per_ip"}


def _limit(rule: str) -> Limit:
    limit = getattr(RULES, rule)
    assert isinstance(limit, Limit)
    return limit


class ThrottleMachine(RedisMachine):
    def __init__(self) -> None:
        super().__init__(REDIS_URL, "throttle-machine")
        self.throttle = Throttle(self.redis, prefix=self.prefix, secret="machine", rules=RULES)
        self.logs: dict[str, ModelLog] = {}  # by Redis key
        # What the throttle calls each account, client and pair of the model, and back.
        self.names: dict[tuple[str, str | None, str | None], str] = {}
        self.owners: dict[str, tuple[str, str | None, str | None]] = {}
        # remembered key -> {client's member name -> time of its last successful sign-in}
        self.remembered: dict[str, dict[str, int]] = {}
        self.remembered_written: dict[str, int] = {}
        self.slept_ms = 0

    # -- plumbing -------------------------------------------------------------------------

    def sleep(self, milliseconds: int) -> None:
        """Real sleep, within what is left of this example's budget. (A precondition would
        do the same, but hypothesis sometimes gives up on an example over it.)"""
        milliseconds = max(0, min(milliseconds, SLEEP_BUDGET_MS - self.slept_ms))
        self.slept_ms += milliseconds
        self.run(asyncio.sleep(milliseconds / 1000))

    def key(self, rule: str, email: str | None = None, ip: str | None = None) -> str:
        """The throttle's key for ``rule``; checked to name one account (or client, or pair)
        of the model's, however its email or address is written, and no other."""
        if rule == "sign_up_per_ip":
            key = self.throttle.sign_up_key(ip or "")
        else:
            key = self.throttle.sign_in_keys(email or "", ip or "")[rule]
        account = EMAILS[email or ""] if rule in _BY_ACCOUNT else None
        client = CLIENTS[ip or ""] if rule in _BY_CLIENT else None
        return self.named((rule, account, client), key)

    def member(self, ip: str) -> str:
        """The client's name in the remembered sets, checked the same way."""
        return self.named(("client", None, CLIENTS[ip]), self.throttle.client_name(ip))

    def named(self, thing: tuple[str, str | None, str | None], name: str) -> str:
        assert self.names.setdefault(thing, name) == name, f"{thing} has two names"
        assert self.owners.setdefault(name, thing) == thing, f"{thing} shares {name}"
        return name

    def log(self, rule: str, email: str | None = None, ip: str | None = None) -> ModelLog:
        key = self.key(rule, email, ip)
        if key not in self.logs:
            limit = _limit(rule)
            self.logs[key] = ModelLog(rule, limit.attempts, limit.window_ms)
        return self.logs[key]

    def sign_in_logs(self, email: str, ip: str) -> list[ModelLog]:
        rules = ("sign_in_per_account_ip", "sign_in_per_ip", "sign_in_per_account")
        return [self.log(rule, email, ip) for rule in rules]

    def stamp(self, rule: str, key: str, before: int, after: int) -> int:
        """The time of the newest attempt in ``key`` (of ``rule``), which the call just made."""

        async def read() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrange(key, -1, -1, withscores=True)
                pipe.time()
                return list(await pipe.execute())

        newest, (seconds, microseconds) = self.run(read())
        if not newest:
            # Real time is short here (windows of tenths of a second): on a machine too busy
            # to read the key before its window had passed, the attempt has rightly expired,
            # and the example says nothing.
            read_at = int(seconds) * 1000 + int(microseconds) // 1000
            if read_at - before >= _limit(rule).window_ms:
                event("an attempt expired before it could be read (a busy machine)")
                reject()
        assert newest, f"nothing was recorded in {key}"
        moment = int(newest[0][1])
        assert before <= moment <= after
        return moment

    # -- the model's verdict --------------------------------------------------------------

    def judge(
        self,
        decision: Decision,
        logs: list[ModelLog],
        remembered_at: int | None,
        before: int,
        after: int,
    ) -> None:
        """Is ``decision``, taken at some moment in [before, after], what the model allows?"""
        before, after = before - MARGIN_MS, after + MARGIN_MS
        surely_remembered = remembered_at is not None and remembered_at > after - REMEMBER_MS
        maybe_remembered = remembered_at is not None and remembered_at > before - REMEMBER_MS
        must: set[str] = set()
        may: set[str] = set()
        for log in logs:
            exempt = log.rule in ("sign_in_per_ip", "sign_in_per_account")
            if log.count_after(after - log.window) >= log.limit and not (
                exempt and maybe_remembered
            ):
                must.add(log.rule)
            if log.count_after(before - log.window) >= log.limit and not (
                exempt and surely_remembered
            ):
                may.add(log.rule)
        if maybe_remembered and (may - must) & {"sign_in_per_ip", "sign_in_per_account"}:
            event("a remembered client at the edge of being forgotten")
        refused = set(decision.limited_by)
        assert len(refused) == len(decision.limited_by)
        assert must <= refused <= may, f"refused by {refused}, expected {must} to {may}"
        assert decision.allowed == (not refused)
        if must != may:
            event("a limit at the edge of its window")
        if decision.allowed:
            assert decision.retry_after == 0
            if surely_remembered and any(
                log.count_after(before - log.window) >= log.limit for log in logs
            ):
                event("a remembered client let through past a full wide rule")
            return
        event(f"refused by {' and '.join(sorted(refused))}")
        event(f"Retry-After {decision.retry_after} s")
        frees_at = max(log.frees_at() for log in logs if log.rule in refused)
        low = max(1, math.ceil((frees_at - after) / 1000))
        high = max(1, math.ceil((frees_at - before) / 1000))
        assert low <= decision.retry_after <= high, (
            f"Retry-After {decision.retry_after}, expected {low} to {high}"
        )

    def remembered_at(self, email: str, ip: str) -> int | None:
        return self.remembered.get(self.key("remembered", email), {}).get(self.member(ip))

    # -- rules ----------------------------------------------------------------------------

    @rule(email=emails, ip=ips)
    def wrong_password(self, email: str, ip: str) -> None:
        """The sign-in route: a check first; only an attempt it lets through is recorded."""
        before, decision, after = self.timed(self.throttle.check_sign_in(email, ip))
        self.judge(
            decision, self.sign_in_logs(email, ip), self.remembered_at(email, ip), before, after
        )
        if decision.allowed:
            self.fail(email, ip)

    def fail(self, email: str, ip: str) -> None:
        before, decision, after = self.timed(self.throttle.record_failed_sign_in(email, ip))
        account_key = self.key("sign_in_per_account", email)
        moment = self.stamp("sign_in_per_account", account_key, before, after)
        for log in self.sign_in_logs(email, ip):
            assert self.stamp(log.rule, self.key(log.rule, email, ip), before, after) == moment
            log.times.append(moment)
            log.written_at = moment
        # The answer is for the next attempt, at the moment this one was recorded.
        remembered_at = self.remembered_at(email, ip)
        self.judge(decision, self.sign_in_logs(email, ip), remembered_at, moment, moment)

    @rule(email=emails, ip=ips, count=st.integers(min_value=2, max_value=6))
    def burst_of_failures(self, email: str, ip: str, count: int) -> None:
        """Requests that all passed the check together: each one is recorded."""
        for _ in range(count):
            self.fail(email, ip)

    @rule(email=emails, ip=ips)
    def right_password(self, email: str, ip: str) -> None:
        before, decision, after = self.timed(self.throttle.check_sign_in(email, ip))
        self.judge(
            decision, self.sign_in_logs(email, ip), self.remembered_at(email, ip), before, after
        )
        if not decision.allowed:
            return
        account, client = self.key("remembered", email), self.member(ip)
        before, _, after = self.timed(self.throttle.record_sign_in(email, ip))
        score = self.run(self.redis.zscore(account, client))
        assert score is not None
        moment = int(score)
        assert before <= moment <= after
        self.log("sign_in_per_account_ip", email, ip).clear()
        # The model of the remembered set: the stale ones go, the newest few stay.
        known = {
            member: at
            for member, at in self.remembered.get(account, {}).items()
            if at > moment - REMEMBER_MS
        }
        known[client] = moment
        newest = sorted(known, key=lambda member: (known[member], member))
        self.remembered[account] = {m: known[m] for m in newest[-RULES.remember_clients :]}
        self.remembered_written[account] = moment

    @rule(ip=ips)
    def sign_up(self, ip: str) -> None:
        key = self.key("sign_up_per_ip", ip=ip)
        log = self.log("sign_up_per_ip", ip=ip)
        before, decision, after = self.timed(self.throttle.attempt_sign_up(ip))
        if decision.allowed:
            moment = self.stamp("sign_up_per_ip", key, before, after)
            before = after = moment
        self.judge(decision, [log], None, before, after)
        if decision.allowed:
            log.times.append(before)
            log.written_at = before

    @rule(email=st.none() | emails, ip=st.none() | ips)
    def reset(self, email: str | None, ip: str | None) -> None:
        self.run(self.throttle.reset(email=email, ip=ip))
        cleared: list[ModelLog] = []
        if email is not None:
            cleared.append(self.log("sign_in_per_account", email))
            if ip is not None:
                cleared.append(self.log("sign_in_per_account_ip", email, ip))
        if ip is not None:
            cleared.append(self.log("sign_in_per_ip", ip=ip))
            cleared.append(self.log("sign_up_per_ip", ip=ip))
        for log in cleared:
            log.clear()

    @rule(milliseconds=st.integers(min_value=0, max_value=500))
    def let_time_pass(self, milliseconds: int) -> None:
        self.sleep(milliseconds)

    @rule(which=st.integers(min_value=0, max_value=20), offset=st.integers(-5, 5))
    def wait_until_a_limit_lapses(self, which: int, offset: int) -> None:
        """Sleep to just around the moment a full log has room again. (What is drawn must
        not depend on the time, or hypothesis could not replay an example.)"""
        now = self.redis_now()
        full = [
            log
            for log in self.logs.values()
            if log.count_after(now - log.window) >= log.limit and log.frees_at() - now < 600
        ]
        if full:
            log = full[which % len(full)]
            self.sleep(max(0, log.frees_at() - now + offset))

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def redis_holds_what_the_model_says(self) -> None:
        keys = list(self.logs)
        accounts = list(self.remembered)

        # One transaction, so no other client writes in between; but Redis's clock moves on
        # while it runs (a busy machine may pause Redis itself), so each key is read at
        # some moment between the two clock readings around the reads.
        async def snapshot() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.time()
                for key in keys:
                    pipe.zrange(key, 0, -1, withscores=True)
                    pipe.pttl(key)
                for account in accounts:
                    pipe.zrange(account, 0, -1, withscores=True)
                    pipe.pttl(account)
                pipe.time()
                return list(await pipe.execute())

        results = self.run(snapshot())
        now = (millis(results[0]), millis(results[-1]))
        for index, key in enumerate(keys):
            entries, pttl = results[1 + 2 * index : 3 + 2 * index]
            log = self.logs[key]
            self.check_stored(
                log.rule, entries, pttl, log.stored(), log.written_at, log.window, now
            )
            assert len(entries) <= log.limit
        for index, account in enumerate(accounts, start=len(keys)):
            entries, pttl = results[1 + 2 * index : 3 + 2 * index]
            known = self.remembered[account]
            written = self.remembered_written.get(account)
            expected = sorted(known.values())
            self.check_stored("remembered", entries, pttl, expected, written, REMEMBER_MS, now)
            if entries:
                assert {member.decode(): int(at) for member, at in entries} == known
            else:
                known.clear()  # expired with its TTL: the model forgets them too
            assert len(entries) <= RULES.remember_clients

    def check_stored(
        self,
        what: str,
        entries: list[tuple[bytes, float]],
        pttl: int,
        expected: list[int],
        written_at: int | None,
        window: int,
        now: tuple[int, int],
    ) -> None:
        """A log holds what the model expects until its TTL, which is the window from its
        newest write, ends it. ``now``: Redis's clock before and after the log was read."""
        first, last = now
        if not entries:
            assert pttl == -2
            assert written_at is None or written_at + window <= last + MARGIN_MS, (
                f"{what} vanished {written_at + window - last} ms early"
            )
            return
        assert written_at is not None, f"{what} holds attempts the model does not know"
        assert sorted(int(at) for _, at in entries) == expected, what
        assert 0 <= pttl <= window
        ends = written_at + window
        assert ends - last - MARGIN_MS <= pttl <= ends - first + MARGIN_MS, (
            f"{what}: TTL {pttl}, expected {ends - last} to {ends - first}"
        )

    @invariant()
    def no_other_keys(self) -> None:
        known = set(self.logs) | set(self.remembered)

        async def all_keys() -> set[str]:
            pattern = f"{self.prefix}*"
            return {key.decode() async for key in self.redis.scan_iter(match=pattern, count=500)}

        stray = self.run(all_keys()) - known
        assert not stray, f"keys the model does not know: {stray}"


ThrottleMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestThrottleMachine = ThrottleMachine.TestCase

"""The Redis session store against a model of it, with real Redis and real (short) time.

A hypothesis state machine creates, reads, touches, extends, lists, revokes (one, all of a
user's but one, or all of a user's) and rewrites sessions, and retires users' credentials,
while real time passes, and checks every answer against a small model, and that the index
buckets and the records never disagree. A user has at most ``MAX_SESSIONS`` sessions (a new
one ends the oldest), and a session whose password version is under the user's credentials
floor never starts. Timeouts are scaled down to milliseconds (idle 300 ms, absolute 750 ms)
so sessions really expire during a run.

Time is Redis's: the model keeps the deadlines the store reported (which come from Redis's
clock) and brackets every operation between two readings of Redis's ``TIME``. Near a
deadline the outcome depends on scheduling, so there is a tolerance band: a session whose
deadline had passed by more than ``MARGIN_MS`` before the operation started must be gone,
one with more than ``MARGIN_MS`` left after it finished must be alive, and in between
either answer is accepted and the model follows what was observed. Bracketing keeps the
band narrow without making the test depend on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from redis.asyncio import Redis

from quartapp.sessions.store import (
    DELETED,
    TAG_LENGTH,
    CredentialsChanged,
    SessionRecord,
    SessionStore,
    key_id_for,
)

from .support.redis_machine import RedisMachine

REDIS_URL = os.environ.get("QUARTAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

IDLE_MS = 300
ABSOLUTE_MS = 750
MAX_SESSIONS = 3
# Real sleeping per example, at most (one rule may overshoot it): enough to outlive the
# absolute timeout, small enough to keep the whole run well under a minute.
SLEEP_BUDGET_MS = 1200
# Redis expires keys on access with millisecond precision; the band only has to absorb
# rounding between TIME (microseconds) and key expiry (milliseconds).
MARGIN_MS = 15
# Two readings of the same deadline (a script's TIME plus PTTL) may differ by rounding.
SAME_DEADLINE_MS = 10

# A big id checks that ids survive Lua, whose numbers are doubles (2**53 + 1 is not one).
USER_IDS = (1, 2, 3, 2**53 + 1)
# Users 1, 2 and 3 share a bucket (their sessions sit in one index hash); the big id has
# another.
EMAILS = {
    1: "ada@example.com",
    2: "zoë@exämple.com",  # non-ASCII
    3: 'o\'brien/"x"@example.com',  # characters that JSON would escape
    2**53 + 1: "big@example.com",
}

T = TypeVar("T")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
# Any JSON value; save_data serialises with Python's json, so all of these must round-trip.
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
session_data = st.dictionaries(st.text(max_size=8), json_values, max_size=4)

creation_data = st.none() | session_data
# Packed behind length bytes: quotes, backslashes, non-ASCII and long names must survive.
client_ips = st.sampled_from(["", "192.0.2.1", "2001:db8::1"])
devices = st.sampled_from(["", "Firefox 128 on Linux", 'Odd "quoted" \\ name ü', "Ü" * 100])


@dataclass
class ModelSession:
    """What the model believes about one session."""

    token: str
    user_id: int
    email: str
    key_id: str
    created_at: int
    absolute_deadline: int
    expires_at: int  # the model's idle-or-absolute deadline, Redis clock, ms
    data: dict[str, Any] = field(default_factory=dict)
    ip: str = ""
    device: str = ""
    record: SessionRecord | None = None  # the latest record the store handed out
    revoked: bool = False
    gone: bool = False  # observed expired: it must never come back

    @property
    def dead(self) -> bool:
        return self.revoked or self.gone

    def __repr__(self) -> str:  # short, for hypothesis's step log
        return f"<session {self.key_id[:6]} user={self.user_id}>"


class SessionStoreMachine(RedisMachine):
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__(REDIS_URL, "machine")
        self.store = SessionStore(
            self.redis,
            prefix=self.prefix,
            idle_timeout=IDLE_MS / 1000,
            absolute_timeout=ABSOLUTE_MS / 1000,
            secret_keys=["machine secret"],
            max_sessions_per_user=MAX_SESSIONS,
        )
        self.model: list[ModelSession] = []
        self.floors: dict[int, int] = {}  # the credentials floor the model expects per user
        self.slept_ms = 0

    # -- plumbing -------------------------------------------------------------------------

    def bucket(self, user_id: int) -> str:
        return self.store.bucket_index(self.store.tags(user_id)[0])

    def record_key(self, session: ModelSession) -> str:
        key = self.store.record_key_for(session.token)
        assert key is not None
        return key

    def index_entries(self, user_id: int) -> set[str]:
        """The key ids the user's bucket holds for this user."""
        fields = self.run(self.redis.hgetall(self.bucket(user_id)))
        return {key.decode() for key, owner in fields.items() if int(owner) == user_id}

    def sleep(self, milliseconds: float) -> None:
        self.slept_ms += int(milliseconds)
        self.run(asyncio.sleep(milliseconds / 1000))

    def may_sleep(self) -> bool:
        return self.slept_ms < SLEEP_BUDGET_MS

    def expectation(self, session: ModelSession, before: int, after: int) -> str:
        """ "alive", "dead" or "either", for an operation run between ``before`` and ``after``."""
        if session.dead or session.expires_at + MARGIN_MS <= before:
            return "dead"
        if session.expires_at - MARGIN_MS >= after:
            return "alive"
        return "either"

    def observe(
        self, session: ModelSession, record: SessionRecord | None, before: int, after: int
    ) -> None:
        """Check that the store's answer is possible, then let the model follow it."""
        expected = self.expectation(session, before, after)
        event(f"{expected}: {'gone' if record is None else 'alive'}")
        if record is None:
            assert expected != "alive", (
                f"{session} vanished with {session.expires_at - after} ms left"
            )
            if not session.revoked:
                session.gone = True
            return
        assert expected != "dead", f"{session} answered although it " + (
            "was revoked"
            if session.revoked
            else "had expired"
            if session.gone
            else f"passed its deadline {before - session.expires_at} ms before"
        )
        assert record.key_id == session.key_id
        assert record.user_id == session.user_id
        assert record.email == session.email
        assert record.created_at == session.created_at
        assert record.absolute_deadline == session.absolute_deadline
        assert record.data == session.data
        assert (record.ip, record.device) == (session.ip, session.device)
        # Last active is kept to the second after the start, and never lies ahead.
        assert record.created_at <= record.last_active <= record.read_at
        assert (record.last_active - record.created_at) % 1000 == 0
        assert before <= record.read_at <= after
        assert 0 < record.time_left_ms <= IDLE_MS
        assert record.expires_at <= record.absolute_deadline
        assert record.can_extend == (record.expires_at < record.absolute_deadline)
        session.record = record

    # -- rules ----------------------------------------------------------------------------

    @initialize(target=sessions, user_id=st.sampled_from(USER_IDS))
    def first_session(self, user_id: int) -> ModelSession:
        """Start with one session, so that every rule has something to work on."""
        assert self.index_entries(user_id) == set()
        return cast(ModelSession, self.create(user_id, None, "", "", None))

    @rule(
        target=sessions,
        user_id=st.sampled_from(USER_IDS),
        data=creation_data,
        ip=client_ips,
        device=devices,
        version=st.none() | st.integers(min_value=0, max_value=3),
    )
    def create(
        self, user_id: int, data: dict[str, Any] | None, ip: str, device: str, version: int | None
    ) -> Any:
        email = EMAILS[user_id]
        floor = self.floors.get(user_id, 0)
        entries = self.index_entries(user_id)
        if version is not None and version < floor:
            with pytest.raises(CredentialsChanged):
                self.run(
                    self.store.create(
                        user_id, email, data, ip=ip, device=device, credentials_version=version
                    )
                )
            event("refused below the credentials floor")
            assert self.index_entries(user_id) <= entries  # nothing written
            return multiple()
        earlier = [s for s in self.model if s.user_id == user_id and not s.dead]
        before = self.redis_now()
        token, record = self.run(
            self.store.create(
                user_id, email, data, ip=ip, device=device, credentials_version=version
            )
        )
        self.check_the_cap(earlier, before)
        assert key_id_for(token) == record.key_id
        assert token[:TAG_LENGTH] == record.tag == self.store.tags(user_id)[0]
        assert token not in record.key_id
        assert record.public_id == record.key_id[:12]
        assert record.read_at == record.created_at
        assert record.absolute_deadline == record.created_at + ABSOLUTE_MS
        assert record.expires_at == record.created_at + min(IDLE_MS, ABSOLUTE_MS)
        assert record.time_left_ms == IDLE_MS
        assert record.data == (data or {})
        session = ModelSession(
            token=token,
            user_id=user_id,
            email=email,
            key_id=record.key_id,
            created_at=record.created_at,
            absolute_deadline=record.absolute_deadline,
            expires_at=record.expires_at,
            data=dict(data or {}),
            ip=ip,
            device=device,
            record=record,
        )
        self.model.append(session)
        # What create stored is what load gives back.
        before, stored, after = self.timed(self.store.load(token, touch=False))
        self.observe(session, stored, before, after)
        return session

    def redis_now(self) -> int:
        seconds, microseconds = self.run(self.redis.time())
        return int(seconds) * 1000 + int(microseconds) // 1000

    def check_the_cap(self, earlier: list[ModelSession], before: int) -> None:
        """After a create: the user's sessions that vanished although surely alive were
        ended by the cap, and each was older than every one that stayed.

        "Surely alive" must hold until the records were looked at, so Redis's clock is read
        after them, in the same transaction: read before them, a session that expired by its
        idle deadline while this process waited for the CPU passed for one the cap ended."""

        async def look() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                for session in earlier:
                    pipe.exists(self.record_key(session))
                pipe.time()
                return list(await pipe.execute())

        *found, (seconds, microseconds) = self.run(look())
        after = int(seconds) * 1000 + int(microseconds) // 1000
        alive = {s.key_id: bool(exists) for s, exists in zip(earlier, found, strict=True)}
        capped = [
            s
            for s in earlier
            if not alive[s.key_id] and self.expectation(s, before, after) == "alive"
        ]
        survivors = [s for s in earlier if alive[s.key_id]]
        assert len(survivors) <= MAX_SESSIONS - 1, f"{len(survivors)} sessions stayed"
        for session in capped:
            event("the cap ended the oldest session")
            assert all(
                (session.created_at, session.key_id) < (other.created_at, other.key_id)
                for other in survivors
            ), f"the cap ended {session}, not the oldest"
            session.revoked = True
            self.assert_ended(session)

    @rule(
        user_id=st.sampled_from(USER_IDS),
        version=st.integers(min_value=0, max_value=3) | st.just(DELETED),
    )
    def retire_credentials(self, user_id: int, version: int) -> None:
        """A password change (or a deletion: every version) raises the floor, never lowers it."""
        self.run(self.store.retire_credentials(user_id, version))
        self.floors[user_id] = max(self.floors.get(user_id, 0), version)

    @rule(target=sessions, user_id=st.sampled_from(USER_IDS))
    def sign_in_again_and_again(self, user_id: int) -> Any:
        """More sign-ins in a row than the cap allows: the oldest sessions make room."""
        made = [self.create(user_id, None, "", "", None) for _ in range(MAX_SESSIONS + 1)]
        return multiple(*made)

    @rule(
        target=sessions,
        user_id=st.sampled_from(USER_IDS),
        checked=st.integers(min_value=0, max_value=2),
        changed_to=st.integers(min_value=1, max_value=3) | st.just(DELETED),
    )
    def sign_in_racing_a_change(self, user_id: int, checked: int, changed_to: int) -> Any:
        """A sign-in checked version ``checked`` of the password; a change (or a deletion)
        then retired it before the sign-in's session was made."""
        self.retire_credentials(user_id, changed_to)
        return self.create(user_id, None, "", "", checked)

    @rule(session=sessions)
    def read(self, session: ModelSession) -> None:
        """load(touch=False), as the countdown poll does: it must not move the deadline."""
        before, record, after = self.timed(self.store.load(session.token, touch=False))
        self.observe(session, record, before, after)
        if record is not None:
            assert abs(record.expires_at - session.expires_at) <= SAME_DEADLINE_MS, (
                f"a read moved the deadline by {record.expires_at - session.expires_at} ms"
            )

    def slide(self, session: ModelSession) -> None:
        before, record, after = self.timed(self.store.load(session.token, touch=True))
        self.observe(session, record, before, after)
        if record is None and not session.revoked and before >= session.absolute_deadline:
            event("ended by the absolute deadline")
        if record is not None:
            assert record.expires_at == min(record.read_at + IDLE_MS, record.absolute_deadline)
            assert record.expires_at >= session.expires_at - SAME_DEADLINE_MS
            if record.expires_at == record.absolute_deadline:
                event("slide capped at the absolute deadline")
            session.expires_at = record.expires_at

    @rule(session=sessions)
    def touch(self, session: ModelSession) -> None:
        """load(touch=True), as a page load does: the idle deadline slides."""
        self.slide(session)

    @rule(session=sessions)
    def extend(self, session: ModelSession) -> None:
        """ "Stay signed in": the same sliding, never past the absolute deadline."""
        self.slide(session)

    @precondition(may_sleep)
    @rule(
        session=sessions,
        pauses=st.lists(st.integers(min_value=40, max_value=150), min_size=1, max_size=5),
    )
    def stay_busy(self, session: ModelSession, pauses: list[int]) -> None:
        """A user clicking around: touches with short pauses, which keeps the session going
        until its absolute deadline ends it whatever the activity."""
        for pause in pauses:
            self.sleep(pause)
            self.slide(session)

    @rule(session=sessions)
    def revoke(self, session: ModelSession) -> None:
        assert session.record is not None
        self.run(self.store.revoke(session.record))
        session.revoked = True
        self.assert_ended(session)

    def assert_ended(self, session: ModelSession) -> None:
        """A revoked session: no record, no index entry, and its token opens nothing."""
        assert self.run(self.redis.exists(self.record_key(session))) == 0
        bucket = self.bucket(session.user_id)
        assert self.run(self.redis.hexists(bucket, session.key_id)) == 0
        assert self.run(self.store.load(session.token, touch=True)) is None

    def count_ended(
        self, ended: int, sessions: list[ModelSession], before: int, after: int
    ) -> None:
        """``ended`` live sessions among ``sessions``: at least those surely alive."""
        expected = [self.expectation(s, before, after) for s in sessions]
        assert expected.count("alive") <= ended <= len(expected) - expected.count("dead"), (
            f"ended {ended} of {expected}"
        )

    @rule(session=sessions)
    def revoke_one(self, session: ModelSession) -> None:
        """By public id, as the sessions page does."""
        before, ended, after = self.timed(
            self.store.revoke_by_public_id(session.user_id, session.key_id[:12])
        )
        expected = self.expectation(session, before, after)
        if ended is None:
            assert expected != "alive", f"{session} was alive but not ended"
        else:
            assert expected != "dead", f"{session} was ended twice"
            assert ended == session.key_id
        session.revoked = True
        self.assert_ended(session)

    @rule(session=sessions, user_id=st.sampled_from(USER_IDS))
    def revoke_someone_elses(self, session: ModelSession, user_id: int) -> None:
        """A user never finds another user's session by its public id."""
        if user_id == session.user_id:
            return
        ended = self.run(self.store.revoke_by_public_id(user_id, session.key_id[:12]))
        assert ended is None, f"user {user_id} ended {session}"
        self.read(session)

    @rule(session=sessions)
    def revoke_others(self, session: ModelSession) -> None:
        """Sign out everywhere else: every other session of the user ends, this one stays."""
        others = [s for s in self.model if s.user_id == session.user_id and s is not session]
        before, ended, after = self.timed(self.store.revoke_others(session.user_id, session.key_id))
        self.count_ended(ended, others, before, after)
        for other in others:
            other.revoked = True
            self.assert_ended(other)
        self.read(session)

    @rule(user_id=st.sampled_from(USER_IDS))
    def revoke_all(self, user_id: int) -> None:
        mine = [s for s in self.model if s.user_id == user_id]
        before, ended, after = self.timed(self.store.revoke_all(user_id))
        self.count_ended(ended, mine, before, after)
        for session in mine:
            session.revoked = True
            self.assert_ended(session)
        assert self.index_entries(user_id) == set()

    @rule(user_id=st.sampled_from(USER_IDS))
    def list_sessions(self, user_id: int) -> None:
        """The sessions page: every live session of the user, and nothing else."""
        before, records, after = self.timed(self.store.list_sessions(user_id))
        listed = {record.key_id: record for record in records}
        assert len(listed) == len(records), "a session was listed twice"
        mine = {s.key_id: s for s in self.model if s.user_id == user_id}
        assert set(listed) <= set(mine), f"user {user_id} got others' sessions"
        for key_id, session in mine.items():
            record = listed.get(key_id)
            self.observe(session, record, before, after)
            if record is not None:
                assert abs(record.expires_at - session.expires_at) <= SAME_DEADLINE_MS
        # Pruned as it was read: the bucket now holds what was listed of this user's
        # sessions (unless the whole bucket expired since, with its last absolute deadline).
        members = self.index_entries(user_id)
        now = self.redis_now()  # after the index was read, so that "by now" covers that read
        assert members <= set(listed), f"ended sessions left in the index: {members - set(listed)}"
        for key_id in set(listed) - members:
            assert listed[key_id].absolute_deadline <= now + MARGIN_MS, f"{key_id} left the index"

    @rule(session=sessions, data=session_data)
    def save_data(self, session: ModelSession, data: dict[str, Any]) -> None:
        assert session.record is not None
        start, _, end = self.timed(self.store.save_data(session.record, data))
        key = self.record_key(session)
        if self.expectation(session, start, end) == "dead":
            # SET XX: a dead session is not written back into existence.
            assert self.run(self.redis.exists(key)) == 0, f"save_data revived {session}"
            return
        before, record, after = self.timed(self.store.load(session.token, touch=False))
        if record is None:
            expected = self.expectation(session, before, after)
            assert expected != "alive", f"save_data ended {session}"
            session.gone = True
            return
        # SET XX either wrote or found no key, and nothing brings a key back: a session that
        # is still there now was there for the write, so it holds the new data.
        session.data = json.loads(json.dumps(data))
        self.observe(session, record, before, after)
        assert abs(record.expires_at - session.expires_at) <= SAME_DEADLINE_MS, (
            f"save_data moved the deadline by {record.expires_at - session.expires_at} ms"
        )

    @precondition(may_sleep)
    @rule(milliseconds=st.integers(min_value=0, max_value=IDLE_MS + 50))
    def let_time_pass(self, milliseconds: int) -> None:
        self.sleep(milliseconds)

    @precondition(may_sleep)
    @rule()
    def wait_for_the_last_deadline(self) -> None:
        """Jump past every deadline: everything not revoked must have expired."""
        last = max((s.expires_at for s in self.model if not s.dead), default=0)
        now = self.redis_now()
        if last + MARGIN_MS > now:
            self.sleep(last + MARGIN_MS - now + 5)

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def redis_matches_the_model(self) -> None:
        if not self.model:
            return

        async def snapshot() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.time()
                for session in self.model:
                    key = self.record_key(session)
                    pipe.exists(key)
                    pipe.pttl(key)
                    pipe.pexpiretime(key)
                    pipe.hget(self.bucket(session.user_id), session.key_id)
                    pipe.pexpiretime(self.bucket(session.user_id))
                return list(await pipe.execute())

        results = self.run(snapshot())
        seconds, microseconds = results[0]
        now = int(seconds) * 1000 + int(microseconds) // 1000
        for index, session in enumerate(self.model):
            exists, pttl, expire_at, owner, index_expire_at = results[1 + 5 * index : 6 + 5 * index]
            expected = self.expectation(session, now, now)
            if not exists:
                assert expected != "alive", f"{session} vanished with time left"
                if not session.revoked:
                    session.gone = True  # from now on it must stay gone
                continue
            assert expected != "dead", (
                f"{session} is in Redis although it should be dead "
                f"(revoked={session.revoked}, gone={session.gone})"
            )
            # Its key id is in its user's bucket, owned by that user.
            assert owner is not None, f"{session} is missing from user {session.user_id}'s index"
            assert int(owner) == session.user_id
            # The key never outlives the absolute deadline, and never outlives idle time.
            assert pttl <= session.absolute_deadline - now + 1
            assert pttl <= IDLE_MS
            assert expire_at <= session.absolute_deadline
            assert abs(expire_at - session.expires_at) <= SAME_DEADLINE_MS
            # The index lives at least as long as every session in it.
            assert index_expire_at >= expire_at
        # No user ever holds more live sessions than the cap.
        for user_id in USER_IDS:
            live = [s for s in self.model if s.user_id == user_id and not s.dead]
            keys = [self.record_key(s) for s in live]
            assert (self.run(self.redis.exists(*keys)) if keys else 0) <= MAX_SESSIONS

    @invariant()
    def indexes_hold_only_their_users_sessions(self) -> None:
        """A bucket entry is a session of the user it names that was never revoked; it may
        outlive its record by idle expiry until the next listing or creation prunes it."""

        async def buckets() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                for user_id in USER_IDS:
                    pipe.hgetall(self.bucket(user_id))
                return list(await pipe.execute())

        known = {s.key_id: s for s in self.model}
        for fields in self.run(buckets()):
            for key_id, owner in fields.items():
                session = known.get(key_id.decode())
                assert session is not None, f"a bucket holds a stranger {key_id!r}"
                assert session.user_id == int(owner), f"{session} is filed under user {owner!r}"
                assert not session.revoked, f"revoked {session} is still in the index"

    @invariant()
    def no_unknown_records(self) -> None:
        """Every record key under the prefix is a session the model knows and did not end."""

        async def record_keys() -> set[str]:
            pattern = f"{self.prefix}*"
            keys = {key.decode() async for key in self.redis.scan_iter(match=pattern, count=500)}
            return {key for key in keys if "}s:" in key}  # not buckets ("}ix"), not floors

        keys = self.run(record_keys())
        known = {self.record_key(s): s for s in self.model}
        for key in keys:
            assert key in known, f"unexpected record {key}"
            assert not known[key].revoked, f"revoked {known[key]} came back"


SessionStoreMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSessionStoreMachine = SessionStoreMachine.TestCase


# -- data that JSON-in-Lua once altered, kept as exact examples ---------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"tags": []}, id="empty-array"),
        pytest.param({"visits": 12345678901234567}, id="big-int"),
    ],
)
async def test_create_keeps_data_exactly(
    raw_redis: Redis, redis_prefix: str, data: dict[str, Any]
) -> None:
    store = SessionStore(
        raw_redis, prefix=redis_prefix, idle_timeout=60, absolute_timeout=120, secret_keys=["k"]
    )
    token, record = await store.create(7, "ada@example.com", data)
    try:
        loaded = await store.load(token, touch=False)
        assert loaded is not None
        assert loaded.data == data
    finally:
        await store.revoke(record)

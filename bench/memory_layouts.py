#!/usr/bin/env python
"""Redis memory per session for the layout in use and for the layouts it replaced.

    .venv/bin/python bench/memory_layouts.py [--sessions 100000] [--redis-url ...]

Writes sessions straight into Redis (no SessionStore, no scripts) under a throwaway prefix
as long as "quartapp:", reads INFO memory used_memory before and after, and deletes them
again. The first layout is what SessionStore writes, so it should match bench/run.py's
memory figure; the others show what each part of it saves (docs/benchmarks.md):

  binary     the record as SessionStore packs it: a 16-byte head of times, the user id,
             then IP, device and email behind length bytes
  json       the record as it was: compact JSON with c, a, l, u, e, i, b
  bucket     the index as it is: users share hashes (user_id // USERS), one field per
             session, the key id, whose value is the user id
  zset       the index as it was: one sorted set per user, scored by absolute deadline

Only 127.0.0.1; the load is bounded by --sessions.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
import time
import urllib.parse
from collections.abc import Callable

import redis
from harness.memory import DEVICES, session_ip

from quartapp.sessions.store import SessionRecord
from tests.support.app_servers import delete_keys

FIRST_USER = 100_000
IDLE_MS = 600_000
ABSOLUTE_S = 8 * 3600


def json_record(n: int, uid: int, now_ms: int) -> bytes:
    body = {
        "c": now_ms,
        "a": now_ms + 1000 * ABSOLUTE_S,
        "l": 0,
        "u": str(uid),
        "e": f"user{uid}@example.com",
        "i": session_ip(n),
        "b": DEVICES[n % len(DEVICES)],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def binary_record(n: int, uid: int, now_ms: int) -> bytes:
    return SessionRecord(
        key_id="",
        tag="",
        user_id=uid,
        email=f"user{uid}@example.com",
        created_at=now_ms,
        absolute_deadline=now_ms + 1000 * ABSOLUTE_S,
        expires_at=0,
        read_at=0,
        last_active=now_ms,
        ip=session_ip(n),
        device=DEVICES[n % len(DEVICES)],
    ).to_redis()


RECORDS: dict[str, Callable[[int, int, int], bytes] | None] = {
    "json": json_record,
    "binary": binary_record,
    "none": None,
}


def used_memory(control: redis.Redis) -> int:
    """used_memory once it holds still: a keyspace table being rehashed in the background
    counts twice until the rehash ends."""
    last = -1
    for _ in range(20):
        time.sleep(0.5)
        now = int(control.info("memory")["used_memory"])
        if now == last:
            break
        last = now
    return last


def measure(
    control: redis.Redis, sessions: int, per_user: int, record: str, index: str, users: int
) -> float:
    prefix = f"qb{secrets.token_hex(3)}:"
    make_record = RECORDS[record]
    now_ms = int(time.time() * 1000)
    deadline_s = now_ms // 1000 + ABSOLUTE_S
    before = used_memory(control)
    try:
        pipe = control.pipeline(transaction=False)
        for n in range(sessions):
            uid = FIRST_USER + n // per_user
            key_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
            tag = f"{uid // users:06d}"  # six characters, as the keyed tags are
            if make_record is not None:
                name = f"{prefix}s:{key_id}" if index == "zset" else f"{prefix}{{{tag}}}s:{key_id}"
                pipe.set(name, make_record(n, uid, now_ms), px=IDLE_MS)
            if index == "zset":
                index_key = f"{prefix}u:{uid}:sessions"
                pipe.zadd(index_key, {key_id: deadline_s * 1000})
                pipe.pexpireat(index_key, deadline_s * 1000)
            elif index == "bucket":
                bucket = f"{prefix}{{{tag}}}ix"
                pipe.hset(bucket, key_id, uid)
                pipe.expireat(bucket, deadline_s)
            if len(pipe) >= 2000:
                pipe.execute()
        pipe.execute()
        return (used_memory(control) - before) / sessions
    finally:
        delete_keys(control, prefix)
        time.sleep(3.0)  # the server shrinks its tables in the background


LAYOUTS = [
    ("binary record + bucketed index, 16 users per bucket (as now)", "binary", "bucket", 16),
    ("binary record, no index", "binary", "none", 0),
    ("json record + zset index per user (before)", "json", "zset", 0),
    ("json record, no index", "json", "none", 0),
    ("json record + bucketed index, 16 users per bucket", "json", "bucket", 16),
    ("binary record + bucketed index, 128 users per bucket", "binary", "bucket", 128),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    if urllib.parse.urlsplit(args.redis_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this benchmark only runs against services on this machine")
    control = redis.Redis.from_url(args.redis_url)
    limits = control.config_get("hash-max-listpack-*")
    print(f"redis {control.info('server')['redis_version']}, {limits}")
    now_ms = int(time.time() * 1000)
    print(
        f"record value bytes: json {len(json_record(0, FIRST_USER, now_ms))},"
        f" binary {len(binary_record(0, FIRST_USER, now_ms))}"
    )
    for name, record, index, users in LAYOUTS:
        figures = [
            measure(control, args.sessions, per_user, record, index, users or 1)
            for per_user in (1, 2)
        ]
        print(f"{name:62s} 1/user {figures[0]:6.1f}  2/user {figures[1]:6.1f} bytes/session")
    control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

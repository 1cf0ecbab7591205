#!/usr/bin/env python
"""Redis memory per session for the layout in use and for layouts that are not implemented.

    .venv/bin/python bench/memory_layouts.py [--sessions 100000] [--redis-url ...]

Writes sessions straight into Redis (no SessionStore, no scripts) under a throwaway prefix
as long as "quartapp:", reads INFO memory used_memory before and after, and deletes them
again. The first layout is what SessionStore writes today, so it should match bench/run.py's
memory figure; the others are candidates for the <= 300 bytes per session target, compared
in docs/benchmarks.md:

  json       the record as today: compact JSON with c, a, l, u, e, i, b
  binary     the same fields packed: created ms, absolute deadline and last activity as
             seconds after it, user id, then IP, device and email behind length bytes
  zset       the index as today: one sorted set per user, scored by absolute deadline
  session    a bucketed index: users share hashes (user_id // USERS), one field per
             session "<user_id>:<key id>", value the absolute deadline in seconds
  user       a bucketed index with one field per user, value that user's sessions packed
             (16-byte key id and 4-byte deadline each)

Only 127.0.0.1; the load is bounded by --sessions.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import struct
import sys
import time
import urllib.parse
from collections.abc import Callable

import redis
from run import DEVICES, delete_prefix, session_ip

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
    ip = bytes(int(part) for part in session_ip(n).split("."))
    device = DEVICES[n % len(DEVICES)].encode()
    email = f"user{uid}@example.com".encode()
    head = struct.pack("<QIIQ", now_ms, ABSOLUTE_S, 0, uid)
    return b"".join(
        (head, bytes([len(ip)]), ip, bytes([len(device)]), device, bytes([len(email)]), email)
    )


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
    packed: dict[int, bytes] = {}
    before = used_memory(control)
    try:
        pipe = control.pipeline(transaction=False)
        for n in range(sessions):
            uid = FIRST_USER + n // per_user
            key_id = secrets.token_bytes(16)
            text_id = base64.urlsafe_b64encode(key_id).rstrip(b"=").decode()  # 22 characters
            if make_record is not None:
                pipe.set(f"{prefix}s:{text_id}", make_record(n, uid, now_ms), px=IDLE_MS)
            if index == "zset":
                index_key = f"{prefix}u:{uid}:sessions"
                pipe.zadd(index_key, {text_id: deadline_s * 1000})
                pipe.pexpireat(index_key, deadline_s * 1000)
            elif index == "session":
                bucket = f"{prefix}ub:{uid // users}"
                pipe.hset(bucket, f"{uid}:{text_id}", deadline_s)
                pipe.expireat(bucket, deadline_s)
            elif index == "user":
                packed[uid] = packed.get(uid, b"") + key_id + struct.pack("<I", deadline_s)
            if len(pipe) >= 2000:
                pipe.execute()
        for uid, value in packed.items():
            bucket = f"{prefix}ub:{uid // users}"
            pipe.hset(bucket, str(uid), value)
            pipe.expireat(bucket, deadline_s)
            if len(pipe) >= 2000:
                pipe.execute()
        pipe.execute()
        return (used_memory(control) - before) / sessions
    finally:
        delete_prefix(control, prefix)
        time.sleep(3.0)  # the server shrinks its tables in the background


LAYOUTS = [
    ("json record + zset index per user (as now)", "json", "zset", 0),
    ("json record, no index", "json", "none", 0),
    ("binary record, no index", "binary", "none", 0),
    ("json record + bucketed index, field per session, 128 users", "json", "session", 128),
    ("binary record + bucketed index, field per session, 128 users", "binary", "session", 128),
    ("binary record + bucketed index, field per user, 256 users", "binary", "user", 256),
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

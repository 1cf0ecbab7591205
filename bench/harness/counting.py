"""Counting Redis commands and MySQL queries per request."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

import redis

from tests.support.databases import connect
from tests.support.http import Client

MONITOR_LINE = re.compile(r'^\+?[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"(.*)$')


class RedisMonitor:
    """Records what Redis executes (MONITOR) between start() and stop().

    MONITOR shows a client's command on a line with its address and every command a Lua
    script runs on the following lines marked ``lua``, which is what tells round trips
    (what a client sent) from commands executed inside EVALSHA."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.marker = f"bench-monitor-end-{secrets.token_hex(8)}"
        self.lines: list[str] = []

    def start(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        self.sock = socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 6379), 10
        )
        self.reader = self.sock.makefile("rb")
        if parts.password:
            self.sock.sendall(f"AUTH {parts.password}\r\n".encode())
            self.reader.readline()
        db = (parts.path or "/0").lstrip("/") or "0"
        self.sock.sendall(f"SELECT {db}\r\nMONITOR\r\n".encode())
        self.reader.readline()
        if not self.reader.readline().startswith(b"+OK"):
            raise RuntimeError("MONITOR was refused")

    def stop(self, control: redis.Redis) -> list[str]:
        control.echo(self.marker)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            raw = self.reader.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if self.marker in line:
                break
            self.lines.append(line)
        self.sock.close()
        return self.lines


def attribute_commands(
    lines: list[str],
    prefix: str,
    clients: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[Counter[str], Counter[str]]:
    """(top-level commands, commands run inside scripts) sent by the app's connections.

    The app's connections are ``clients`` (their local addresses) and any that sent
    something naming a key under ``prefix``; on a shared Redis this leaves out every
    other client."""
    parsed = []
    for line in lines:
        match = MONITOR_LINE.match(line)
        if match:
            parsed.append((match.group(1), match.group(2).lower(), prefix in line))
    app_clients = {client for client, _, ours in parsed if ours and client != "lua"} | set(clients)
    top: Counter[str] = Counter()
    inner: Counter[str] = Counter()
    counting = False
    for client, command, _ in parsed:
        if client == "lua":
            if counting:
                inner[command] += 1
        else:
            counting = client in app_clients
            if counting:
                top[command] += 1
    return top, inner


def commandstats(control: redis.Redis) -> Counter[str]:
    stats = control.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


class MySQLStatus:
    def __init__(self, url: str) -> None:
        self.conn = connect(url)
        first = self.read()
        second = self.read()
        # What one status read adds to the counters itself (1 Question, 0 or 1 Com_select).
        self.overhead = {name: second[name] - first[name] for name in first}

    def read(self) -> dict[str, int]:
        with self.conn.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_select')")
            return {name.lower(): int(value) for name, value in cursor.fetchall()}

    def diff(self, before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        return {name: after[name] - before[name] - self.overhead[name] for name in before}

    def close(self) -> None:
        self.conn.close()


def tcp_traffic(pids: list[int], port: int) -> dict[str, tuple[int, int]]:
    """Per TCP connection from these processes to ``port``: (bytes sent, data segments
    sent), keyed "local address>peer address".

    MySQL's status counters are global; these are the app's own sockets, so another client
    of a shared server cannot show up in them. For Redis, the local addresses name the
    app's connections in MONITOR's output."""
    out = subprocess.run(
        ["ss", "-tinpH", "state", "established", f"( dport = :{port} )"],
        capture_output=True, text=True, timeout=10, check=False,
    ).stdout  # fmt: skip
    wanted = {f"pid={pid}," for pid in pids}
    found: dict[str, tuple[int, int]] = {}
    current: str | None = None
    for line in out.splitlines():
        if not line[:1].isspace():
            fields = line.split()
            current = f"{fields[2]}>{fields[3]}" if any(w in line for w in wanted) else None
            continue
        if current is not None:
            stats = dict(
                item.split(":", 1) for item in line.split() if ":" in item and "(" not in item
            )
            found[current] = (int(stats.get("bytes_sent", 0)), int(stats.get("data_segs_out", 0)))
    return found


def traffic_diff(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> tuple[int, int]:
    sent = segments = 0
    for conn, (b, d) in after.items():
        b0, d0 = before.get(conn, (0, 0))
        sent += b - b0
        segments += d - d0
    return sent, segments


def fire(port: int, path: str, headers: dict[str, str], total: int, workers: int = 4) -> None:
    """Exactly ``total`` requests over ``workers`` keep-alive connections; all must be 200."""
    failures: list[str] = []

    def worker(count: int) -> None:
        client = Client(port)
        try:
            for _ in range(count):
                reply = client.request("GET", path, headers)
                if reply.status != 200:
                    failures.append(f"{reply.status} {reply.text[:200]}")
        except Exception as error:  # reported below
            failures.append(repr(error))
        finally:
            client.close()

    shares = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if failures:
        raise RuntimeError(f"GET {path}: {len(failures)} failures, first: {failures[0]}")


def count_per_request(
    *,
    port: int,
    pids: list[int],
    mysql_port: int,
    path: str,
    headers: dict[str, str],
    requests: int,
    repeats: int,
    redis_url: str,
    control: redis.Redis,
    prefix: str,
    mysql: MySQLStatus,
) -> dict[str, Any]:
    fire(port, path, headers, 200)  # warm: pool connections and script cache in place
    redis_port = urllib.parse.urlsplit(redis_url).port or 6379
    runs = []
    for _ in range(repeats):
        monitor = RedisMonitor(redis_url)
        monitor.start()
        stats_before = commandstats(control)
        sql_before = mysql.read()
        sockets_before = tcp_traffic(pids, mysql_port)
        fire(port, path, headers, requests)
        sockets_after = tcp_traffic(pids, mysql_port)
        sql_after = mysql.read()
        stats_after = commandstats(control)
        clients = {conn.split(">")[0] for conn in tcp_traffic(pids, redis_port)}
        top, inner = attribute_commands(monitor.stop(control), prefix, clients)
        stats = stats_after - stats_before
        for own in ("info", "echo", "monitor", "select"):  # this function's control commands
            stats.pop(own, None)
        sql = mysql.diff(sql_before, sql_after)
        sql["app_bytes"], sql["app_segments"] = traffic_diff(sockets_before, sockets_after)
        runs.append((top, inner, stats, sql))
    # Other clients of a shared server can only add to the global counters: keep the least.
    top, inner, _, _ = min(runs, key=lambda run: sum(run[0].values()) + sum(run[1].values()))
    stats = min((run[2] for run in runs), key=lambda counts: sum(counts.values()))
    sql = min((run[3] for run in runs), key=lambda counts: counts["questions"])
    app_bytes = min(run[3]["app_bytes"] for run in runs)
    app_segments = min(run[3]["app_segments"] for run in runs)
    # Nothing went from the app to MySQL: whatever the global counters moved by was
    # someone else's. Otherwise the global count (the least of the repeats) is the answer.
    queries = 0 if app_bytes == 0 else max(0, sql["questions"])

    def per(counter: Counter[str]) -> dict[str, float]:
        return {name: round(count / requests, 3) for name, count in counter.most_common()}

    return {
        "requests": requests,
        "redis_round_trips_per_request": round(sum(top.values()) / requests, 3),
        "redis_round_trips": per(top),
        "redis_commands_in_scripts_per_request": round(sum(inner.values()) / requests, 3),
        "redis_commands_in_scripts": per(inner),
        "redis_commands_per_request": round(
            (sum(top.values()) + sum(inner.values())) / requests, 3
        ),
        "redis_commandstats_calls_per_request": round(sum(stats.values()) / requests, 3),
        "redis_commandstats": per(stats),
        "mysql_queries_per_request": round(queries / requests, 3),
        "mysql_questions_global_per_request": round(max(0, sql["questions"]) / requests, 3),
        "mysql_selects_global_per_request": round(max(0, sql["com_select"]) / requests, 3),
        "mysql_app_bytes_sent_per_request": round(app_bytes / requests, 3),
        "mysql_app_segments_sent_per_request": round(app_segments / requests, 3),
    }

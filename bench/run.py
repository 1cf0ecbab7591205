#!/usr/bin/env python
"""Benchmark quartapp against its per-request budget (README.md, docs/benchmarks.md).

    .venv/bin/python bench/run.py [--duration 10] [--connections 50] [--servers ...]

What it does, all on 127.0.0.1, every load bounded in time:
  1. creates and migrates a throwaway database, starts quartapp under granian with the
     flags script/server uses (production settings, its own Redis prefix) pinned to CPU 0,
     signs a user up and in through the real forms (with CSRF) and keeps the cookie;
  2. runs wrk pinned to CPU 1 against GET /home, GET /session/countdown, the anonymous
     sign-in page GET / and GET /sessions (with 5 live sessions), and the ceilings
     (bench/ceiling_app.py: one Redis PTTL and a fragment of the countdown's size, and the
     same fragment without Redis); with --tutorial-url, the tutorial's Node app's GET / and
     GET /home too, pinned to the app's CPU; one table puts each page beside its ceiling
     and the tutorial;
  3. counts Redis commands (round trips and commands run inside scripts, from MONITOR,
     cross-checked with INFO commandstats) and MySQL queries (SHOW GLOBAL STATUS
     Questions, and the bytes the app's own MySQL sockets sent) per request for /home and
     /session/countdown;
  4. measures the countdown's latency while sign-ins (bcrypt cost 12) run continuously;
  5. measures Redis memory per session over 100,000 sessions made by SessionStore.create
     (with an IP address and a device name, as a sign-in stores them), one and then two
     sessions per user, and what the per-user indexes take of it;
  6. serves the countdown and the ceiling under uvicorn and hypercorn too, when installed
     (--servers granian skips that).

It prints one line per figure and removes its servers, Redis keys and database at the end,
even when it fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pymysql  # type: ignore[import-untyped,unused-ignore]
import redis

from quartapp.serve import granian_argv

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
WRK_SCRIPT = BENCH / "wrk_report.lua"
APP_CPU = "0"
LOAD_CPU = "1"
SESSION_COOKIE = "quartapp_session"  # COOKIE_SECURE=false: no __Host- prefix on plain http
CSRF_COOKIE = "quartapp_csrf"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

# Reference figures (docs/benchmarks.md): the original Node.js tutorial on the same kind
# of machine, and what a bare Quart route with one Redis PTTL reached per server.
TUTORIAL_RPS = 1050
TARGET_RPS = 3 * TUTORIAL_RPS
TARGET_CEILING_SHARE = 0.80
TARGET_P99_DURING_SIGNINS_MS = 50.0
TARGET_BYTES_PER_SESSION = 300
# Every page against its bare Quart ceiling (bench/ceiling_app.py): the share it must reach.
PAGE_TARGETS = {"signin_page": 0.75, "home": 0.75, "sessions": 0.5}
LIVE_SESSIONS = 5  # GET /sessions lists this many


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: {name} is not installed")
    return found


# --------------------------------------------------------------------------------------
# HTTP, with nothing but the standard library


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for header in self.headers.get_all("Set-Cookie") or []:
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                jar[name] = morsel.value
        return jar


class Client:
    """One keep-alive connection to the app; reconnects once if the server closed it."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return Reply(response.status, response.headers, response.read())
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def form_body(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
COUNTDOWN_HEADERS = {"HX-Request": "true", "HX-Target": "session-countdown"}
HOME_HEADERS = {"Accept": "text/html,application/xhtml+xml"}


def submit_form(client: Client, page: str, action: str, fields: dict[str, str]) -> Reply:
    """Load ``page`` for its CSRF cookie and field, then post ``fields`` to ``action``."""
    page_reply = client.request("GET", page, HOME_HEADERS)
    match = CSRF_FIELD.search(page_reply.text)
    if page_reply.status != 200 or match is None:
        raise RuntimeError(f"GET {page} gave {page_reply.status} without a CSRF field")
    jar = page_reply.cookies()
    return client.request(
        "POST",
        action,
        {**FORM, "Cookie": cookie_header(jar)},
        form_body({**fields, "csrf_token": match.group(1)}),
    )


def sign_up_and_in(port: int, email: str, password: str) -> str:
    """Create the account, sign in through the real form, return the session cookie."""
    client = Client(port)
    try:
        fields = {"email": email, "password": password}
        reply = submit_form(client, "/register", "/api/v1/signup", fields)
        if reply.status != 303 or SESSION_COOKIE not in reply.cookies():
            raise RuntimeError(f"sign-up gave {reply.status}: {reply.text[:300]}")
        reply = submit_form(client, "/", "/api/v1/signin", fields)
        cookie = reply.cookies().get(SESSION_COOKIE)
        if reply.status != 303 or not cookie:
            raise RuntimeError(f"sign-in gave {reply.status}: {reply.text[:300]}")
        return cookie
    finally:
        client.close()


def sign_in_until(port: int, email: str, password: str, sessions: int) -> None:
    """Sign in through the form until ``email`` has ``sessions`` live sessions."""
    for _ in range(sessions):
        client = Client(port)
        try:
            cookie = submit_form(
                client, "/", "/api/v1/signin", {"email": email, "password": password}
            ).cookies()[SESSION_COOKIE]
            listed = client.request(
                "GET",
                "/sessions",
                {"Accept": "application/json", "Cookie": f"{SESSION_COOKIE}={cookie}"},
            )
        finally:
            client.close()
        count = len(json.loads(listed.body)["sessions"])
        if count >= sessions:
            if count > sessions:
                raise RuntimeError(f"{email} has {count} sessions, more than {sessions}")
            return
    raise RuntimeError(f"{email} did not reach {sessions} sessions")


# --------------------------------------------------------------------------------------
# The tutorial's Node app (/work/shared/tutorial-app), measured in the same run


def tutorial_sign_in(base: str, email: str, password: str) -> str:
    """Sign in to the tutorial app through its form; its ``connect.sid`` cookie."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        conn.request(
            "POST", "/api/v1/signin", form_body({"email": email, "password": password}),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        response = conn.getresponse()
        response.read()
        reply = Reply(response.status, response.headers, b"")
    finally:
        conn.close()
    cookie = reply.cookies().get("connect.sid")
    if reply.status != 302 or not reply.headers.get("Location", "").endswith("/home") or not cookie:
        raise RuntimeError(
            f"the tutorial app did not sign {email} in ({reply.status});"
            " make the user with its ./run.sh --user"
        )
    return cookie


def listener_pid(port: int) -> int:
    """The process listening on this TCP port on the loopback."""
    out = subprocess.run(
        ["ss", "-ltnpH", f"( sport = :{port} )"], capture_output=True, text=True, timeout=10,
        check=False,
    ).stdout  # fmt: skip
    found = re.search(r"pid=(\d+)", out)
    if found is None:
        raise RuntimeError(f"nothing of ours listens on port {port}")
    return int(found.group(1))


@contextlib.contextmanager
def pinned(pid: int, cpu: str) -> Iterator[None]:
    """Pin every thread of ``pid`` to ``cpu`` while measuring, as the app is; then restore."""
    tasks = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    before = {task: os.sched_getaffinity(task) for task in tasks}
    for task in tasks:
        os.sched_setaffinity(task, {int(cpu)})
    try:
        yield
    finally:
        for task, cpus in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(task, cpus)


# --------------------------------------------------------------------------------------
# Processes


class Server:
    """An ASGI server process pinned to one CPU, in its own process group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int, health: str = "/healthz", timeout: float = 45.0) -> None:
        self.port = port
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", APP_CPU, *self.argv],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                client = Client(port, timeout=2)
                try:
                    if client.request("GET", health).status == 200:
                        return
                finally:
                    client.close()
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {health} in {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def pids(self) -> list[int]:
        """The server's process and its children (workers), for py-spy and the like."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
            found += [int(pid) for pid in out.split()]
        return found

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        # The group is the one this process started (start_new_session): its id is ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def server_argv(kind: str, module: str, factory: str, port: int) -> list[str]:
    """The command line each server gets; granian's is the one ``quartapp serve`` runs."""
    if kind == "granian":
        return granian_argv(host="127.0.0.1", port=port, workers=1, app=f"{module}:{factory}")
    if kind == "uvicorn":
        return [
            tool("uvicorn"), "--factory", f"{module}:{factory}",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--lifespan", "on", "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
    if kind == "hypercorn":
        return [
            tool("hypercorn"), "--bind", f"127.0.0.1:{port}", "--worker-class", "uvloop",
            "--workers", "1", f"{module}:{factory}()",
        ]  # fmt: skip
    raise ValueError(kind)


def server_available(kind: str) -> bool:
    return (VENV_BIN / kind).exists() or shutil.which(kind) is not None


# --------------------------------------------------------------------------------------
# Whose CPU time it was: the machine may be shared, and the figures mean little when
# something else ran on the app's CPU.


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(cpu: str = "cpu") -> tuple[int, int]:
    """(busy, total) jiffies of one CPU ("cpu0") or of all of them ("cpu")."""
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == cpu:
            values = [int(v) for v in fields[1:9]]
            idle = values[3] + values[4]
            return sum(values) - idle, sum(values)
    raise RuntimeError(f"no {cpu} in /proc/stat")


def process_ticks(pids: list[int]) -> int:
    """utime + stime of these processes, all their threads included."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


class CpuMeter:
    """How much of CPU 0 the app used during a run, and how much everything else did."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def __enter__(self) -> CpuMeter:
        self.app0 = process_ticks(self.pids)
        self.busy0, self.total0 = cpu_ticks(f"cpu{APP_CPU}")
        return self

    def __exit__(self, *_: object) -> None:
        app = process_ticks(self.pids) - self.app0
        busy, total = cpu_ticks(f"cpu{APP_CPU}")
        span = max(1, total - self.total0)
        self.app_pct = round(100 * app / span, 1)
        self.other_pct = round(100 * max(0, busy - self.busy0 - app) / span, 1)


def wait_for_quiet(limit: float, threshold_pct: float = 20.0) -> float:
    """Wait (at most ``limit`` seconds) until the machine's other work takes under
    ``threshold_pct`` of one CPU; returns the last share seen."""
    deadline = time.monotonic() + limit
    while True:
        busy0, total0 = cpu_ticks()
        time.sleep(0.5)
        busy1, total1 = cpu_ticks()
        # total counts every CPU; scale to "percent of one CPU"
        share = 100 * (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
        if share < threshold_pct or time.monotonic() >= deadline:
            return round(share, 1)


# --------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    bytes: int
    app_cpu_pct: float | None = None
    other_cpu_pct: float | None = None
    busy_before_pct: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def rps_per_cpu(self) -> float | None:
        """Requests per second of CPU the app got: steadier than rps on a shared machine."""
        if not self.app_cpu_pct:
            return None
        return self.rps / (self.app_cpu_pct / 100)

    def line(self) -> str:
        text = f"rps={self.rps:.0f} p50_ms={self.p50_ms:.2f} p99_ms={self.p99_ms:.2f}"
        bad = {name: count for name, count in self.errors.items() if count}
        if bad:
            text += " errors=" + ",".join(f"{name}:{count}" for name, count in bad.items())
        if self.app_cpu_pct is not None:
            text += (
                f" (app cpu {self.app_cpu_pct:.0f}%, other on its cpu {self.other_cpu_pct:.0f}%)"
            )
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "errors": self.errors,
            "bytes_per_response": round(self.bytes / self.requests) if self.requests else 0,
            "rps_per_app_cpu_second": round(self.rps_per_cpu, 1) if self.rps_per_cpu else None,
            "app_cpu_pct": self.app_cpu_pct,
            "other_cpu_on_app_cpu_pct": self.other_cpu_pct,
            "machine_busy_before_pct": self.busy_before_pct,
        }


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    headers: dict[str, str],
    delay_ms: int | None = None,
) -> WrkResult:
    argv = [
        "taskset", "-c", LOAD_CPU, "wrk", f"-t{threads}", f"-c{connections}",
        f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s", "-s", str(WRK_SCRIPT),
    ]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    env = {k: v for k, v in os.environ.items() if k != "WRK_DELAY_MS"}
    if delay_ms:
        env["WRK_DELAY_MS"] = str(delay_ms)
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=duration + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON ") :])
            return WrkResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000,
                errors={
                    "connect": data["connect_errors"],
                    "read": data["read_errors"],
                    "write": data["write_errors"],
                    "status": data["status_errors"],
                    "timeout": data["timeouts"],
                },
                bytes=data["bytes"],
            )
    raise RuntimeError(
        f"wrk gave no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )


# --------------------------------------------------------------------------------------
# Counting Redis commands and MySQL queries per request


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
        parts = urllib.parse.urlsplit(url)
        self.conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=urllib.parse.unquote(parts.username or "root"),
            password=urllib.parse.unquote(parts.password or ""),
            autocommit=True,
        )
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


# --------------------------------------------------------------------------------------
# Sign-ins running in the background


class SignInLoad:
    """``in_flight`` clients signing in back to back (form posts with CSRF, like a browser)."""

    def __init__(self, port: int, email: str, password: str, in_flight: int = 2) -> None:
        self.port = port
        self.email = email
        self.password = password
        self.in_flight = in_flight
        self.stop_event = threading.Event()
        self.completed: list[tuple[float, float]] = []  # (finished at, seconds taken)
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(in_flight)]

    def run(self) -> None:
        client = Client(self.port)
        try:
            reply = client.request("GET", "/api/v1/csrf", {"Accept": "application/json"})
            token = json.loads(reply.body)["csrf_token"]
            headers = {**FORM, "Cookie": cookie_header(reply.cookies())}
            body = form_body({"email": self.email, "password": self.password, "csrf_token": token})
            while not self.stop_event.is_set():
                started = time.monotonic()
                reply = client.request("POST", "/api/v1/signin", headers, body)
                finished = time.monotonic()
                with self.lock:
                    if reply.status == 303 and SESSION_COOKIE in reply.cookies():
                        self.completed.append((finished, finished - started))
                    else:
                        self.failures.append(f"{reply.status} {reply.text[:200]}")
                        if len(self.failures) > 20:
                            return
        except Exception as error:  # reported by the caller
            with self.lock:
                self.failures.append(repr(error))
        finally:
            client.close()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[float]:
        with self.lock:
            return [took for finished, took in self.completed if start <= finished <= end]


def during_sign_ins(
    port: int, email: str, password: str, measure: Callable[[], WrkResult]
) -> tuple[WrkResult, dict[str, Any]]:
    load = SignInLoad(port, email, password)
    load.start()
    try:
        time.sleep(1.5)  # every client past its first request, two hashes in flight
        start = time.monotonic()
        result = measure()
        end = time.monotonic()
    finally:
        load.stop()
    if load.failures:
        raise RuntimeError(f"sign-ins failed: {load.failures[:3]}")
    took = sorted(load.between(start, end))
    stats = {
        "signins": len(took),
        "signins_per_s": round(len(took) / (end - start), 2),
        "signin_p50_ms": round(1000 * took[len(took) // 2], 1) if took else None,
        "signin_max_ms": round(1000 * took[-1], 1) if took else None,
    }
    return result, stats


# --------------------------------------------------------------------------------------
# Redis memory per session


# Realistic record fields: what a sign-in stores (quartapp/sessions/devices.py names the browser).
DEVICES = (
    "Chrome 131 on Windows",
    "Safari 18 on iOS",
    "Chrome 131 on Android",
    "Firefox 133 on Linux",
    "Edge 131 on Windows",
    "Safari 18 on macOS",
)


def session_ip(n: int) -> str:
    return f"203.0.113.{n % 250}"


async def memory_per_session(
    redis_url: str, count: int, per_user: int = 1, batch: int = 500
) -> dict[str, Any]:
    """Redis memory for ``count`` sessions, ``per_user`` to a user, each with an IP address
    and a device name as a sign-in stores them; the index buckets priced separately."""
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio import Redis as AsyncRedis

    from quartapp.sessions.store import SessionRecord, SessionStore

    # As long as the default "quartapp:", so key names cost what they cost in production.
    prefix = f"qb{secrets.token_hex(3)}:"
    control = redis.Redis.from_url(redis_url)
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=16, timeout=30)
    client = AsyncRedis(connection_pool=pool)
    store = SessionStore(
        client,
        prefix=prefix,
        idle_timeout=600,
        absolute_timeout=8 * 3600,
        secret_keys=[secrets.token_bytes(32)],
    )
    first_user = 100_000
    users = max(1, count // per_user)
    count = users * per_user
    records: list[SessionRecord] = []

    def create(n: int) -> Any:
        # Session n belongs to user n // per_user, so a user's sessions are made together.
        uid = first_user + n // per_user
        return store.create(
            uid, f"user{uid}@example.com", ip=session_ip(n), device=DEVICES[n % len(DEVICES)]
        )

    try:
        await store.create(first_user - 1, "warm@example.com")  # script cached, pool open
        delete_prefix(control, prefix)
        await asyncio.sleep(0.5)
        before = int(control.info("memory")["used_memory"])
        started = time.monotonic()
        for start in range(0, count, batch):
            made = await asyncio.gather(
                *(create(n) for n in range(start, min(count, start + batch)))
            )
            records += [record for _, record in made]
        elapsed = time.monotonic() - started
        await pool.disconnect()  # its connections' buffers are not session memory
        await asyncio.sleep(1.0)  # let incremental rehashing of the keyspace settle
        after = int(control.info("memory")["used_memory"])
        step = max(1, count // 200)
        sample = records[::step]
        record_bytes = [
            control.memory_usage(store.record_key(r.tag, r.key_id), samples=0) or 0 for r in sample
        ]
        buckets = sorted({store.bucket_index(r.tag) for r in records})
        index_bytes = [
            control.memory_usage(bucket, samples=0) or 0 for bucket in buckets[:: max(1, step)]
        ]
        values = [control.get(store.record_key(r.tag, r.key_id)) or b"" for r in sample[:10]]
        value_bytes = [len(v) for v in values]
        # What the index buckets cost on their own: drop them and look again.
        for start in range(0, len(buckets), 5000):
            control.unlink(*buckets[start : start + 5000])
        await asyncio.sleep(1.0)
        records_only = int(control.info("memory")["used_memory"])
        return {
            "sessions": count,
            "users": users,
            "sessions_per_user": per_user,
            "used_memory_delta": after - before,
            "bytes_per_session": round((after - before) / count, 1),
            "record_bytes_per_session": round((records_only - before) / count, 1),
            "index_bytes_per_session": round((after - records_only) / count, 1),
            "index_bytes_per_user": round((after - records_only) / users, 1),
            "memory_usage_record_key": round(sum(record_bytes) / len(record_bytes), 1),
            "memory_usage_index_key": round(sum(index_bytes) / len(index_bytes), 1),
            "index_buckets": len(buckets),
            "record_value_bytes": round(sum(value_bytes) / len(value_bytes), 1),
            "record_value_example": values[0].hex(),
            "record_key_example": store.record_key(records[0].tag, records[0].key_id),
            "index_key_example": buckets[0],
            "creates_per_s": round(count / elapsed),
        }
    finally:
        await client.aclose()
        await pool.disconnect()
        delete_prefix(control, prefix)
        control.close()


def delete_prefix(control: redis.Redis, prefix: str) -> int:
    deleted = 0
    batch: list[bytes] = []
    for key in control.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            deleted += int(control.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(control.unlink(*batch))
    return deleted


# --------------------------------------------------------------------------------------
# The run


@dataclass
class Bench:
    args: argparse.Namespace
    logdir: Path
    results: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    database_url: str = ""
    database_created: bool = False
    prefix: str = ""

    def figure(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    # ---- environment

    def app_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("QUARTAPP_", "GRANIAN_", "UVICORN_", "CEILING_"))
        }
        env.update(
            QUARTAPP_ENV="production",
            QUARTAPP_SECRET_KEY=f"bench-{secrets.token_urlsafe(48)}",
            QUARTAPP_COOKIE_SECURE="false",  # plain http on loopback
            QUARTAPP_DATABASE_URL=self.database_url,
            QUARTAPP_REDIS_URL=self.args.redis_url,
            QUARTAPP_REDIS_PREFIX=self.prefix,
            PYTHONPATH=str(BENCH),  # for ceiling_app; quartapp is installed in the venv
        )
        return env

    def start(self, kind: str, app: str) -> Server:
        module, factory = (
            ("quartapp", "create_app") if app == "quartapp" else ("ceiling_app", "create_app")
        )
        port = free_port()
        server = Server(
            f"{app}-{kind}", server_argv(kind, module, factory, port), self.env, self.logdir
        )
        self.servers.append(server)
        server.start(port)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def wrk(self, server: Server, path: str, headers: dict[str, str], **kw: Any) -> WrkResult:
        url = f"http://127.0.0.1:{server.port}{path}"
        options = dict(
            connections=self.args.connections, threads=self.args.threads, headers=headers
        )
        options.update(kw)
        if self.args.warmup:
            run_wrk(url, duration=self.args.warmup, **options)
        return self.measure(server, lambda: run_wrk(url, duration=self.args.duration, **options))

    def quiet(self) -> float:
        busy = wait_for_quiet(self.args.quiet_wait)
        if busy >= 20:
            log(f"the machine is busy ({busy:.0f}% of a CPU used by others); measuring anyway")
        return busy

    def measure(self, server: Server, run: Callable[[], WrkResult], wait: bool = True) -> WrkResult:
        """``run``, after waiting a little for a quiet machine, with its CPU accounting."""
        busy = self.quiet() if wait else None
        with CpuMeter(server.pids()) as meter:
            result = run()
        result.app_cpu_pct = meter.app_pct
        result.other_cpu_pct = meter.other_pct
        result.busy_before_pct = busy
        return result

    # ---- phases

    def setup(self) -> None:
        tag = secrets.token_hex(3)
        self.prefix = f"quartapp-bench:{tag}:"
        base = self.args.database_url.rsplit("/", 1)[0]
        self.database_url = f"{base}/quartapp_bench_{tag}"
        self.mysql_port = urllib.parse.urlsplit(self.database_url).port or 3306
        self.control = redis.Redis.from_url(self.args.redis_url)
        self.control.ping()
        self.env = self.app_env()
        log(f"migrating {self.database_url.split('@')[-1]}")
        self.database_created = True
        subprocess.run(
            [tool("python"), "-m", "quartapp", "migrate"],
            cwd=ROOT, env=self.env, check=True, timeout=120,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.ceiling_key = f"{self.prefix}ceiling"
        self.control.set(self.ceiling_key, "1", px=3_600_000)

    def main_app(self) -> None:
        log("starting quartapp under granian (CPU 0)")
        app = self.start("granian", "quartapp")
        self.app = app
        self.email = f"bench-{secrets.token_hex(4)}@example.com"
        self.password = f"bench password {secrets.token_hex(4)}"
        cookie = sign_up_and_in(app.port, self.email, self.password)
        self.cookie = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        client = Client(app.port)
        home = client.request("GET", "/home", {**HOME_HEADERS, **self.cookie})
        countdown = client.request(
            "GET", "/session/countdown", {**COUNTDOWN_HEADERS, **self.cookie}
        )
        client.close()
        if home.status != 200 or self.email not in home.text:
            raise RuntimeError(f"/home with the session cookie gave {home.status}")
        if countdown.status != 200 or "hx-get" not in countdown.text:
            raise RuntimeError(
                f"/session/countdown is not the live fragment: {countdown.text[:300]}"
            )
        self.fragment_bytes = len(countdown.body)
        self.results["fragment_bytes"] = {"countdown": len(countdown.body), "home": len(home.body)}
        self.figure(f"countdown fragment_bytes={self.fragment_bytes}")
        self.env["CEILING_REDIS_URL"] = self.args.redis_url
        self.env["CEILING_KEY"] = self.ceiling_key
        self.env["CEILING_BODY_BYTES"] = str(self.fragment_bytes)

        log("wrk GET /home")
        home_run = self.wrk(app, "/home", {**HOME_HEADERS, **self.cookie})
        self.results["home"] = home_run.as_dict()
        self.figure(f"home {home_run.line()}")
        log("wrk GET /session/countdown")
        countdown_run = self.wrk(app, "/session/countdown", {**COUNTDOWN_HEADERS, **self.cookie})
        self.results["countdown"] = countdown_run.as_dict()
        self.figure(f"countdown {countdown_run.line()}")
        pages = self.pages(app)
        if self.args.profile:
            self.profile(app, "/session/countdown", {**COUNTDOWN_HEADERS, **self.cookie})
            for _, path, headers in pages:
                self.profile(app, path, headers)

        ceiling, constant = self.ceiling("granian", constant=True)
        self.results["ceiling"] = ceiling.as_dict()
        self.results["ceiling_constant"] = constant.as_dict()
        self.figure(f"ceiling_constant {constant.line()}")
        self.figure(f"ceiling {ceiling.line()}")
        share = countdown_run.rps / ceiling.rps
        self.results["countdown_over_ceiling"] = round(share, 3)
        self.results["countdown_over_tutorial"] = round(countdown_run.rps / TUTORIAL_RPS, 2)
        self.figure(f"countdown/ceiling={share:.2f}")
        if countdown_run.rps_per_cpu and ceiling.rps_per_cpu:
            per_cpu = countdown_run.rps_per_cpu / ceiling.rps_per_cpu
            self.results["countdown_over_ceiling_per_cpu"] = round(per_cpu, 3)
            self.figure(
                f"countdown/ceiling per app CPU-second={per_cpu:.2f}"
                f" ({countdown_run.rps_per_cpu:.0f} vs {ceiling.rps_per_cpu:.0f}"
                " requests per CPU-second)"
            )
        self.figure(f"countdown/tutorial={countdown_run.rps / TUTORIAL_RPS:.2f}x")
        if self.args.tutorial_url:
            self.tutorial()
        self.page_table()

        self.counts(app)
        self.sign_in_latency(app, countdown_run)
        self.check_session_alive(app)

    def ceiling(self, kind: str, constant: bool = False) -> Any:
        """The ceiling's req/s, and with ``constant`` also its route without Redis."""
        log(f"wrk GET /ceiling (bare Quart under {kind})")
        server = self.start(kind, "ceiling")
        try:
            reply = Client(server.port).request("GET", "/ceiling")
            if reply.status != 200 or len(reply.body) != self.fragment_bytes:
                raise RuntimeError(f"ceiling gave {reply.status}, {len(reply.body)} bytes")
            result = self.wrk(server, "/ceiling", {})
            if not constant:
                return result
            log(f"wrk GET /constant (bare Quart under {kind}, no Redis)")
            return result, self.wrk(server, "/constant", {})
        finally:
            self.stop(server)

    # ---- every page against its ceiling and the tutorial

    def pages(self, app: Server) -> list[tuple[str, str, dict[str, str]]]:
        """wrk the sign-in page (anonymous) and /sessions (with LIVE_SESSIONS sessions)."""
        sign_in_until(app.port, self.email, self.password, LIVE_SESSIONS)
        pages = [
            ("signin_page", "/", HOME_HEADERS),
            ("sessions", "/sessions", {**HOME_HEADERS, **self.cookie}),
        ]
        client = Client(app.port)
        try:
            page = client.request("GET", "/", HOME_HEADERS)
            if page.status != 200 or not CSRF_FIELD.search(page.text) or not page.cookies():
                raise RuntimeError(f"GET / gave {page.status} without its CSRF field and cookie")
            listed = client.request("GET", "/sessions", {**HOME_HEADERS, **self.cookie})
            if listed.status != 200 or listed.text.count("data-session=") != LIVE_SESSIONS:
                raise RuntimeError(f"GET /sessions does not list {LIVE_SESSIONS} sessions")
        finally:
            client.close()
        for name, path, headers in pages:
            log(f"wrk GET {path}")
            run = self.wrk(app, path, headers)
            self.results[name] = run.as_dict()
            self.figure(f"{name} {run.line()}")
        return pages

    def tutorial(self) -> None:
        """The tutorial's sign-in page and /home, its process pinned to the app's CPU."""
        base = self.args.tutorial_url.rstrip("/")
        parts = urllib.parse.urlsplit(base)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError("the tutorial app must run on this machine")
        email, _, password = self.args.tutorial_login.partition(":")
        cookie = tutorial_sign_in(base, email, password)
        pid = listener_pid(parts.port or 80)
        server = Server("tutorial", [], {}, self.logdir)  # for its pid and CPU accounting
        server.port = parts.port or 80
        server.pids = lambda: [pid]  # type: ignore[method-assign]
        self.results["tutorial"] = {}
        with pinned(pid, APP_CPU):
            for name, path, headers in (
                ("signin_page", "/", HOME_HEADERS),
                ("home", "/home", {**HOME_HEADERS, "Cookie": f"connect.sid={cookie}"}),
            ):
                log(f"wrk tutorial GET {path} (CPU {APP_CPU})")
                run = self.wrk(server, path, headers)
                if run.errors.get("status"):
                    raise RuntimeError(f"the tutorial's {path} answered non-2xx: {run.errors}")
                self.results["tutorial"][name] = run.as_dict()
                self.figure(f"tutorial_{name} {run.line()}")

    def page_table(self) -> None:
        """One table: each route, its ceiling, the ratio, the tutorial, and the p99s."""
        r = self.results
        tutorial = r.get("tutorial", {})
        rows = [
            ("GET / (sign-in page)", "signin_page", "ceiling_constant"),
            ("GET /home", "home", "ceiling"),
            (f"GET /sessions ({LIVE_SESSIONS} sessions)", "sessions", "ceiling"),
            ("GET /session/countdown", "countdown", "ceiling"),
        ]
        head = (
            f"{'route':<32} {'app req/s':>9} {'ceiling':>8} {'ratio':>6} {'tutorial':>9}"
            f" {'app p99':>8} {'tut. p99':>8}"
        )
        self.figure(head)
        r["table"] = []
        for label, name, ceiling in rows:
            if name not in r or ceiling not in r:
                continue
            app, top = r[name], r[ceiling]
            ratio = app["rps"] / top["rps"]
            tut = tutorial.get(name)
            r["table"].append({
                "route": label, "name": name, "app_rps": app["rps"], "ceiling": ceiling,
                "ceiling_rps": top["rps"], "ratio": round(ratio, 3),
                "tutorial_rps": tut["rps"] if tut else None, "app_p99_ms": app["p99_ms"],
                "tutorial_p99_ms": tut["p99_ms"] if tut else None,
            })  # fmt: skip
            self.figure(
                f"{label:<32} {app['rps']:>9.0f} {top['rps']:>8.0f} {ratio:>6.2f}"
                f" {(format(tut['rps'], '.0f') if tut else '-'):>9}"
                f" {app['p99_ms']:>8.1f} {(format(tut['p99_ms'], '.1f') if tut else '-'):>8}"
            )

    def counts(self, app: Server) -> None:
        mysql = MySQLStatus(self.database_url)
        try:
            for name, path, headers in (
                ("home", "/home", {**HOME_HEADERS, **self.cookie}),
                ("countdown", "/session/countdown", {**COUNTDOWN_HEADERS, **self.cookie}),
            ):
                log(f"counting Redis commands and MySQL queries for {path}")
                counts = count_per_request(
                    port=app.port, pids=app.pids(), mysql_port=self.mysql_port,
                    path=path, headers=headers,
                    requests=self.args.count_requests, repeats=2,
                    redis_url=self.args.redis_url, control=self.control,
                    prefix=self.prefix, mysql=mysql,
                )  # fmt: skip
                self.results[f"{name}_counts"] = counts
                trips = ", ".join(f"{k} {v:.2f}" for k, v in counts["redis_round_trips"].items())
                inner = ", ".join(
                    f"{k} {v:.2f}" for k, v in counts["redis_commands_in_scripts"].items()
                )
                trips_per_request = counts["redis_round_trips_per_request"]
                self.figure(
                    f"{name} redis_round_trips_per_request={trips_per_request:.2f} ({trips})"
                )
                self.figure(
                    f"{name} redis_commands_in_scripts_per_request="
                    f"{counts['redis_commands_in_scripts_per_request']:.2f} ({inner})"
                )
                self.figure(
                    f"{name} redis_commands_per_request={counts['redis_commands_per_request']:.2f}"
                    f" (commandstats: {counts['redis_commandstats_calls_per_request']:.2f})"
                )
                self.figure(
                    f"{name} mysql_queries_per_request={counts['mysql_queries_per_request']:.2f}"
                    f" (app's MySQL sockets sent {counts['mysql_app_bytes_sent_per_request']:.2f}"
                    " bytes/request; global Questions"
                    f" {counts['mysql_questions_global_per_request']:.3f})"
                )
        finally:
            mysql.close()

    def sign_in_latency(self, app: Server, baseline: WrkResult) -> None:
        path = "/session/countdown"
        headers = {**COUNTDOWN_HEADERS, **self.cookie}
        url = f"http://127.0.0.1:{app.port}{path}"
        options = dict(
            connections=self.args.connections, threads=self.args.threads, headers=headers
        )

        log("wrk GET /session/countdown while sign-ins run (2 in flight)")
        quiet = self.quiet()
        busy, signins = during_sign_ins(
            app.port, self.email, self.password,
            lambda: self.measure(
                app, lambda: run_wrk(url, duration=self.args.duration, **options), wait=False
            ),
        )  # fmt: skip
        busy.busy_before_pct = quiet
        self.results["countdown_during_signins"] = {**busy.as_dict(), **signins}
        self.figure(f"countdown_during_signins {busy.line()}")
        self.figure(f"countdown p99_during_signins_ms={busy.p99_ms:.2f}")
        self.figure(
            f"signins_per_s={signins['signins_per_s']:.2f} (p50 {signins['signin_p50_ms']} ms)"
        )

        # The same at a paced rate near the tutorial's whole capacity, so the p99 is latency,
        # not queueing behind a saturating closed loop.
        delay = self.args.paced_delay_ms
        log(f"paced wrk GET /session/countdown ({delay} ms between requests per connection)")
        paced = self.measure(
            app, lambda: run_wrk(url, duration=self.args.duration, delay_ms=delay, **options)
        )
        self.results["countdown_paced"] = paced.as_dict()
        self.figure(f"countdown_paced {paced.line()}")
        log("paced wrk GET /session/countdown while sign-ins run")
        quiet = self.quiet()
        paced_busy, paced_signins = during_sign_ins(
            app.port, self.email, self.password,
            lambda: self.measure(
                app,
                lambda: run_wrk(url, duration=self.args.duration, delay_ms=delay, **options),
                wait=False,
            ),
        )  # fmt: skip
        paced_busy.busy_before_pct = quiet
        self.results["countdown_paced_during_signins"] = {**paced_busy.as_dict(), **paced_signins}
        self.figure(f"countdown_paced_during_signins {paced_busy.line()}")
        self.figure(f"signins_per_s_paced={paced_signins['signins_per_s']:.2f}")

    def check_session_alive(self, app: Server) -> None:
        client = Client(app.port)
        reply = client.request("GET", "/session/countdown", {**COUNTDOWN_HEADERS, **self.cookie})
        client.close()
        if reply.status != 200 or "hx-get" not in reply.text:
            raise RuntimeError("the benchmark session died during the run; figures are not valid")

    def profile(self, app: Server, path: str, headers: dict[str, str]) -> None:
        """py-spy over the worker while wrk loads ``path`` (--profile DIR)."""
        pyspy = tool("py-spy")
        outdir = Path(self.args.profile)
        outdir.mkdir(parents=True, exist_ok=True)
        worker = app.pids()[-1]
        name = path.strip("/").replace("/", "_")
        log(f"py-spy on pid {worker} while wrk loads {path}")
        seconds = max(3, round(self.args.duration))
        spy = subprocess.Popen(
            [
                "taskset",
                "-c",
                LOAD_CPU,
                pyspy,
                "record",
                "--pid",
                str(worker),
                "--duration",
                str(seconds),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(outdir / f"{name}.folded"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            run_wrk(
                f"http://127.0.0.1:{app.port}{path}", duration=seconds + 1,
                connections=self.args.connections, threads=self.args.threads, headers=headers,
            )  # fmt: skip
        finally:
            spy.wait(timeout=seconds + 60)

    def memory(self) -> None:
        count = self.args.sessions
        self.results["memory"] = {}
        for per_user, name in ((1, "one_per_user"), (2, "two_per_user")):
            log(f"creating {count:,} sessions through SessionStore.create, {per_user} per user")
            memory = asyncio.run(memory_per_session(self.args.redis_url, count, per_user))
            self.results["memory"][name] = memory
            tag = f"{per_user}_per_user"
            self.figure(f"redis_bytes_per_session_{tag}={memory['bytes_per_session']:.0f}")
            self.figure(
                f"redis_bytes_per_session_{tag}_record={memory['record_bytes_per_session']:.0f}"
                f" index={memory['index_bytes_per_session']:.0f}"
                f" (index per user {memory['index_bytes_per_user']:.0f})"
            )
            self.figure(
                f"redis_memory_usage_{tag} record_key={memory['memory_usage_record_key']:.0f}"
                f" index_bucket_key={memory['memory_usage_index_key']:.0f}"
                f" record_value_bytes={memory['record_value_bytes']:.0f}"
            )

    def compare_servers(self) -> None:
        kinds = [k for k in self.args.servers if k != "granian"]
        comparison = {
            "granian": {
                "countdown": self.results["countdown"],
                "ceiling": self.results["ceiling"],
            }
        }
        for kind in kinds:
            if not server_available(kind):
                self.figure(f"server={kind} not installed, skipped")
                continue
            log(f"quartapp under {kind} (CPU 0)")
            app = self.start(kind, "quartapp")
            try:
                cookie = sign_up_and_in(
                    app.port, f"bench-{secrets.token_hex(4)}@example.com", self.password
                )
                countdown = self.wrk(
                    app, "/session/countdown",
                    {**COUNTDOWN_HEADERS, "Cookie": f"{SESSION_COOKIE}={cookie}"},
                )  # fmt: skip
            finally:
                self.stop(app)
            ceiling = self.ceiling(kind)
            comparison[kind] = {"countdown": countdown.as_dict(), "ceiling": ceiling.as_dict()}
            self.figure(f"server={kind} countdown {countdown.line()}")
            self.figure(f"server={kind} ceiling {ceiling.line()}")
            self.figure(f"server={kind} countdown/ceiling={countdown.rps / ceiling.rps:.2f}")
        self.results["servers"] = comparison

    def verdicts(self) -> None:
        r = self.results
        checks = []
        if "countdown" in r and "ceiling" in r:
            checks.append((
                "countdown >= 80% of ceiling",
                r["countdown_over_ceiling"] >= TARGET_CEILING_SHARE,
                f"{100 * r['countdown_over_ceiling']:.0f}%",
            ))  # fmt: skip
            checks.append((
                f"countdown >= 3x tutorial ({TARGET_RPS} req/s)",
                r["countdown"]["rps"] >= TARGET_RPS,
                f"{r['countdown']['rps']:.0f} req/s",
            ))  # fmt: skip
        for row in r.get("table", []):
            share = PAGE_TARGETS.get(row["name"])
            if share is not None:
                checks.append((
                    f"{row['route']} >= {share:.2f} of its ceiling",
                    row["ratio"] >= share, f"{row['ratio']:.2f}",
                ))  # fmt: skip
            if row["tutorial_p99_ms"] is not None:
                checks.append((
                    f"{row['route']} p99 below the tutorial's",
                    row["app_p99_ms"] < row["tutorial_p99_ms"],
                    f"{row['app_p99_ms']:.1f} ms against {row['tutorial_p99_ms']:.1f} ms",
                ))  # fmt: skip
        if "countdown_during_signins" in r:
            p99 = r["countdown_during_signins"]["p99_ms"]
            checks.append((
                "countdown p99 < 50 ms during sign-ins",
                p99 < TARGET_P99_DURING_SIGNINS_MS,
                f"{p99:.1f} ms (paced: {r['countdown_paced_during_signins']['p99_ms']:.1f} ms)",
            ))  # fmt: skip
        for name in ("home", "countdown"):
            counts = r.get(f"{name}_counts")
            if counts:
                checks.append((
                    f"{name}: 1 Redis round trip, 0 MySQL queries",
                    round(counts["redis_round_trips_per_request"], 2) <= 1.0
                    and round(counts["mysql_queries_per_request"], 2) == 0,
                    f"{counts['redis_round_trips_per_request']:.2f} round trips, "
                    f"{counts['mysql_queries_per_request']:.2f} queries",
                ))  # fmt: skip
        if "memory" in r:
            one, two = r["memory"]["one_per_user"], r["memory"]["two_per_user"]
            checks.append((
                "<= 300 bytes of Redis per session (one session per user)",
                one["bytes_per_session"] <= TARGET_BYTES_PER_SESSION,
                f"{one['bytes_per_session']:.0f} bytes"
                f" (two per user: {two['bytes_per_session']:.0f})",
            ))  # fmt: skip
        r["targets"] = [{"target": t, "met": met, "measured": m} for t, met, m in checks]
        for target, met, measured in checks:
            self.figure(f"target {'MET   ' if met else 'MISSED'} {target}: {measured}")

    def cleanup(self) -> None:
        for server in list(reversed(self.servers)):
            with contextlib.suppress(Exception):
                server.stop()
        self.servers.clear()
        with contextlib.suppress(Exception):
            if self.prefix:
                removed = remove_keys(self.args.redis_url, self.prefix)
                log(f"removed {removed} Redis keys under {self.prefix}")
        if self.database_created:
            try:
                log(f"dropped database {drop_database(self.database_url, 'quartapp_bench_')}")
            except Exception as error:
                log(f"could not drop the bench database: {error!r}")


def remove_keys(redis_url: str, prefix: str) -> int:
    """Delete every Redis key under ``prefix``; how many there were."""
    control = redis.Redis.from_url(redis_url)
    try:
        return delete_prefix(control, prefix)
    finally:
        control.close()


def drop_database(url: str, prefix: str) -> str:
    """Drop the scratch database ``url`` names; returns its name. Only a name made by a
    benchmark (``prefix`` and six hex digits) is ever dropped."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(re.escape(prefix) + r"[0-9a-f]{6}", name):
        raise ValueError(f"{name!r} is not a scratch database of this benchmark")
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or "root"),
        password=urllib.parse.unquote(parts.password or ""),
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()
    return name


def default_database_url() -> str:
    saved = ROOT / ".venv" / "quartapp-database-url"
    if saved.exists():
        return saved.read_text().strip()
    return "mysql://root:@127.0.0.1:3306/quartapp"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    parser.add_argument(
        "--warmup", type=float, default=2, help="seconds of wrk before each measured run (2)"
    )
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1; wrk has one CPU)")
    parser.add_argument(
        "--count-requests", type=int, default=2000, help="requests per Redis/MySQL count (2000)"
    )
    parser.add_argument(
        "--sessions", type=int, default=100_000, help="sessions for each memory figure (100000)"
    )
    parser.add_argument(
        "--paced-delay-ms", type=int, default=40, help="per-connection pause in the paced runs (40)"
    )
    parser.add_argument(
        "--servers", default="granian,uvicorn,hypercorn",
        help="servers to compare on the countdown and the ceiling ('granian' alone: no comparison)",
    )  # fmt: skip
    parser.add_argument(
        "--quiet-wait", type=float, default=10,
        help="seconds to wait before each measured run for other work on the machine to stop (10)",
    )  # fmt: skip
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--database-url", default=default_database_url(), help="any URL on the MySQL server to use"
    )
    parser.add_argument("--json", help="also write every figure to this JSON file")
    parser.add_argument(
        "--profile",
        help="record py-spy profiles of the countdown and the pages into this directory",
    )
    parser.add_argument(
        "--tutorial-url",
        help="also measure the tutorial's Node app here (e.g. http://127.0.0.1:4301), pinned"
        " to the app's CPU; without it, pages are compared with their ceilings only",
    )
    parser.add_argument(
        "--tutorial-login", default="bench@example.com:benchpass",
        help="EMAIL:PASSWORD of a user of the tutorial app (its ./run.sh --user makes one)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for host in (
        urllib.parse.urlsplit(args.tutorial_url or "http://127.0.0.1").hostname,
        urllib.parse.urlsplit(args.redis_url).hostname,
        urllib.parse.urlsplit(args.database_url).hostname,
    ):
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("this benchmark only runs against services on this machine")
    return args


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": sys.version.split()[0]}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 2**20, 1)
    return info


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """SIGTERM ends the run through the same clean-up as Ctrl-C or an error."""

    def on_term(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for command in ("wrk", "taskset"):
        if shutil.which(command) is None:
            raise SystemExit(f"bench: {command} is not installed")
    with contextlib.suppress(OSError):  # this process's own work stays off the app's CPU
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    logdir = Path(tempfile.mkdtemp(prefix="quartapp-bench-"))
    bench = Bench(args, logdir)
    status = 0
    started = time.monotonic()
    with terminate_cleanly():
        try:
            bench.results["machine"] = machine()
            bench.setup()
            control = bench.control
            bench.results["machine"]["redis"] = control.info("server")["redis_version"]
            status_conn = MySQLStatus(bench.database_url)
            with status_conn.conn.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                bench.results["machine"]["mysql"] = cursor.fetchone()[0]
            status_conn.close()
            bench.main_app()
            bench.stop(bench.app)
            if "memory" not in args.skip:
                bench.memory()
            if len(args.servers) > 1 or args.servers[:1] != ["granian"]:
                bench.compare_servers()
            bench.verdicts()
        except Exception as error:
            status = 1
            print(f"bench: failed: {error}", file=sys.stderr)
            for server in bench.servers:
                print(
                    f"--- {server.name} log ({server.log_path}):\n{server.tail()}", file=sys.stderr
                )
        finally:
            bench.cleanup()
    bench.results["elapsed_s"] = round(time.monotonic() - started, 1)
    log(f"done in {bench.results['elapsed_s']:.0f}s; server logs in {logdir}")
    if args.json:
        Path(args.json).write_text(json.dumps(bench.results, indent=2) + "\n")
    if status == 0:
        shutil.rmtree(logdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

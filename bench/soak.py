#!/usr/bin/env python
"""Soak quartapp at scale: two instances behind nginx under a mixed load, for a set time.

    .venv/bin/python bench/soak.py [--seconds 60] [--users 16] [--skip workers]

What it does, all on 127.0.0.1, every load bounded in time:
  1. creates and migrates a throwaway database, and starts two app instances the way
     script/server does (granian, one worker each, production settings, bcrypt cost 12),
     sharing the secret key, the Redis prefix and the database, with nginx in front of
     them (round-robin, keep-alive to the upstreams, its own config and files in a
     temporary directory);
  2. signs up --users accounts through nginx, then runs that many simulated users for
     --seconds, each on one keep-alive connection to nginx, in a closed loop (no pause
     unless --pause-ms): sign in through the real form (CSRF cookie and field), then 100
     to 300 steps, every 20th a /home and the others countdown polls, then sign out and
     check that a copy of the old cookie is dead; and again. Every answer is checked
     (status and content) and timed; it prints the requests, the wrong answers by kind
     and status, p50/p99 per kind, how many requests each instance served, and the CPU
     the apps, nginx and the load generator used;
  3. measures with wrk (as bench/run.py does: wrk pinned to CPU 1) the countdown through
     nginx in front of both instances, then the countdown poll and /home served by one
     granian worker process (pinned to CPU 0, as bench/run.py) and by two (unpinned).

It prints one line per figure, and removes its processes, Redis keys and database at the
end, even when it fails or is interrupted. It needs wrk, taskset and nginx
(``apt-get install wrk util-linux nginx-light``) besides what script/bootstrap sets up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from run import (
    COUNTDOWN_HEADERS,
    CSRF_FIELD,
    HOME_HEADERS,
    ROOT,
    SESSION_COOKIE,
    WrkResult,
    cpu_ticks,
    default_database_url,
    drop_database,
    free_port,
    log,
    process_ticks,
    remove_keys,
    run_wrk,
    sign_up_and_in,
    terminate_cleanly,
    tool,
    wait_for_quiet,
)

from quartapp.serve import granian_argv

PASSWORD = f"soak password {secrets.token_hex(6)}"
NGINX = "/usr/sbin/nginx"


# --------------------------------------------------------------------------------------
# Processes: app instances and nginx


class Process:
    """A server process in its own process group, with its output in a log file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str] | None, logdir: Path
    ) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for(self, port: int, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.tail()}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 1).close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {port} in {timeout:.0f}s")

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError):
            return [self.proc.pid, *(int(pid) for pid in children.read_text().split())]
        return [self.proc.pid]

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # The group is the one this process started (start_new_session).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def nginx_config(binary: str, directory: Path, port: int, upstreams: list[int]) -> str:
    """The documented configuration, with every file in ``directory``."""
    servers = "\n".join(
        f"        server 127.0.0.1:{upstream} max_fails=1 fail_timeout=5s;"
        for upstream in upstreams
    )
    # Run as root, nginx would hand its workers to "nobody", who cannot use this directory.
    user = "user root;" if os.geteuid() == 0 else ""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False).stderr
    temp = "\n    ".join(
        f"{kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        if f"--without-http_{kind}_module" not in built
    )
    return f"""\
daemon off;
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {temp}
    upstream quartapp {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://quartapp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


# --------------------------------------------------------------------------------------
# An HTTP/1.1 client on asyncio streams: one keep-alive connection per simulated user


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            answer = await self._read()
        except BaseException:
            self.close()
            raise
        if (answer.header("connection") or "").lower() == "close":
            self.close()
        return answer

    async def _read(self) -> Answer:
        assert self.reader is not None
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, list[str]] = defaultdict(list)
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()].append(value.strip())
        if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            body = b""
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                body += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"][-1]))
        else:
            body = await self.reader.read()
        return Answer(status, dict(headers), body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --------------------------------------------------------------------------------------
# The simulated users


@dataclass
class Tally:
    """Every answer's time per kind of request, and what was wrong."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    wrong: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    upstreams: Counter[str] = field(default_factory=Counter)


class User:
    """One browser: signs in, browses and polls, signs out, checks its old cookie is dead."""

    def __init__(self, port: int, email: str, tally: Tally, rng: random.Random) -> None:
        self.connection = Connection(port)
        self.email = email
        self.tally = tally
        self.rng = rng
        self.cookies: dict[str, str] = {}

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        headers: dict[str, str],
        expect: Callable[[Answer], bool],
        form: dict[str, str] | None = None,
    ) -> Answer | None:
        sent = dict(headers)
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            answer = await asyncio.wait_for(
                self.connection.request(method, path, sent, body), timeout=30
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            self.tally.wrong[kind][type(error).__name__] += 1
            self.tally.statuses[kind][type(error).__name__] += 1
            return None
        self.tally.times[kind].append(time.perf_counter() - started)
        self.tally.statuses[kind][str(answer.status)] += 1
        if upstream := answer.header("x-upstream"):
            self.tally.upstreams[upstream] += 1
        for header in answer.headers.get("set-cookie", []):
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            if not value or "max-age=0" in attributes.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if not expect(answer):
            self.tally.wrong[kind][str(answer.status)] += 1
        return answer

    def home_ok(self, answer: Answer) -> bool:
        return answer.status == 200 and self.email in answer.text

    @staticmethod
    def page_ok(answer: Answer) -> bool:
        return answer.status == 200

    @staticmethod
    def poll_ok(answer: Answer) -> bool:
        return answer.status == 200 and "hx-get" in answer.text

    @staticmethod
    def to_home(answer: Answer) -> bool:
        return answer.status == 303 and answer.header("location") == "/home"

    @staticmethod
    def to_sign_in(answer: Answer) -> bool:
        # A sign-out lands on the sign-in page saying so; a dead cookie on the plain one.
        return answer.status == 303 and answer.header("location") in ("/", "/?signed_out=1")

    async def life(self, deadline: float, pause: float) -> None:
        """Sessions one after another until ``deadline``."""
        try:
            while time.monotonic() < deadline:
                self.cookies.clear()
                page = await self.call("sign-in page", "GET", "/", HOME_HEADERS, self.page_ok)
                token = CSRF_FIELD.search(page.text) if page else None
                if token is None:
                    continue
                fields = {"email": self.email, "password": PASSWORD, "csrf_token": token[1]}
                signed_in = await self.call(
                    "sign-in", "POST", "/api/v1/signin", {}, self.to_home, fields
                )
                if signed_in is None or not self.to_home(signed_in):
                    continue
                session = self.cookies.get(SESSION_COOKIE)
                home_token = None
                for step in range(self.rng.randint(100, 300)):
                    if time.monotonic() >= deadline:
                        break
                    if step % 20 == 0:
                        home = await self.call("home", "GET", "/home", HOME_HEADERS, self.home_ok)
                        if home and (found := CSRF_FIELD.search(home.text)):
                            home_token = found[1]
                    else:
                        await self.call(
                            "countdown",
                            "GET",
                            "/session/countdown",
                            COUNTDOWN_HEADERS,
                            self.poll_ok,
                        )
                    if pause:
                        await asyncio.sleep(pause)
                if home_token is None:
                    continue
                await self.call(
                    "sign-out", "POST", "/logout", {}, self.to_sign_in, {"csrf_token": home_token}
                )
                if session:
                    self.cookies[SESSION_COOKIE] = session  # a copy of the old cookie
                    await self.call("old cookie", "GET", "/home", HOME_HEADERS, self.to_sign_in)
        finally:
            self.connection.close()


async def soak(port: int, emails: list[str], seconds: float, pause: float) -> tuple[Tally, float]:
    tally = Tally()
    rng = random.Random(7)
    users = [User(port, email, tally, random.Random(rng.random())) for email in emails]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(user.life(deadline, pause) for user in users))
    return tally, time.monotonic() - started


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


# --------------------------------------------------------------------------------------
# The run


@dataclass
class Soak:
    args: argparse.Namespace
    logdir: Path
    processes: list[Process] = field(default_factory=list)
    database_url: str = ""
    database_created: bool = False
    prefix: str = ""

    def figure(self, line: str) -> None:
        print(line, flush=True)

    def setup(self) -> None:
        tag = secrets.token_hex(3)
        self.prefix = f"quartapp-soak:{tag}:"
        base = self.args.database_url.rsplit("/", 1)[0]
        self.database_url = f"{base}/quartapp_soak_{tag}"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("QUARTAPP_", "GRANIAN_"))
        }
        self.env.update(
            QUARTAPP_ENV="production",
            QUARTAPP_SECRET_KEY=f"soak-{secrets.token_urlsafe(48)}",
            QUARTAPP_COOKIE_SECURE="false",  # plain http on loopback
            QUARTAPP_DATABASE_URL=self.database_url,
            QUARTAPP_REDIS_URL=self.args.redis_url,
            QUARTAPP_REDIS_PREFIX=self.prefix,
            QUARTAPP_BCRYPT_ROUNDS=str(self.args.bcrypt_rounds),
            # Every simulated user signs up and in from 127.0.0.1.
            QUARTAPP_THROTTLE_SIGN_UP_PER_IP="null",
            QUARTAPP_THROTTLE_PASSWORD_STRENGTH_PER_IP="null",  # noqa: S106 (a setting)
            QUARTAPP_THROTTLE_SIGN_IN_PER_IP="null",
            QUARTAPP_TRUSTED_PROXIES='["127.0.0.1"]',
        )
        redis.Redis.from_url(self.args.redis_url).ping()
        log(f"migrating {self.database_url.split('@')[-1]}")
        self.database_created = True
        subprocess.run(
            [tool("python"), "-m", "quartapp", "migrate"],
            cwd=ROOT, env=self.env, check=True, timeout=120, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def app(self, name: str, workers: int = 1, pin: str | None = None) -> tuple[Process, int]:
        port = free_port()
        argv = granian_argv(host="127.0.0.1", port=port, workers=workers)
        if pin is not None:
            argv = ["taskset", "-c", pin, *argv]
        process = Process(name, argv, self.env, self.logdir)
        self.processes.append(process)
        process.wait_for(port)
        return process, port

    def nginx(self, upstreams: list[int]) -> tuple[Process, int]:
        binary = NGINX if os.access(NGINX, os.X_OK) else shutil.which("nginx")
        if binary is None:
            raise SystemExit("soak: nginx is not installed")
        directory = self.logdir / "nginx"
        directory.mkdir()
        port = free_port()
        (directory / "nginx.conf").write_text(nginx_config(binary, directory, port, upstreams))
        argv = [binary, "-p", str(directory), "-c", str(directory / "nginx.conf")]
        argv += ["-e", str(directory / "error.log")]
        process = Process("nginx", argv, None, self.logdir)
        self.processes.append(process)
        process.wait_for(port)
        return process, port

    def stop(self, process: Process) -> None:
        process.stop(signal.SIGQUIT if process.name == "nginx" else signal.SIGTERM)
        self.processes.remove(process)

    def run_soak(self) -> None:
        a, a_port = self.app("app-a")
        b, b_port = self.app("app-b")
        nginx, port = self.nginx([a_port, b_port])
        self.figure(f"soak setup instances=127.0.0.1:{a_port},127.0.0.1:{b_port} nginx={port}")
        log(f"signing up {self.args.users} users through nginx")
        emails = [f"soak-{i}-{secrets.token_hex(3)}@example.com" for i in range(self.args.users)]
        for email in emails:
            sign_up_and_in(port, email, PASSWORD)
        log(f"soak: {self.args.users} users for {self.args.seconds:.0f}s")
        busy = wait_for_quiet(self.args.quiet_wait)
        ticks = os.sysconf("SC_CLK_TCK")
        apps_before = process_ticks(a.pids() + b.pids())
        nginx_before = process_ticks(nginx.pids())
        busy0, total0 = cpu_ticks()
        own0 = resource.getrusage(resource.RUSAGE_SELF)
        tally, elapsed = asyncio.run(
            soak(port, emails, self.args.seconds, self.args.pause_ms / 1000)
        )
        busy1, total1 = cpu_ticks()
        own1 = resource.getrusage(resource.RUSAGE_SELF)
        generator = (own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime) / elapsed
        apps = (process_ticks(a.pids() + b.pids()) - apps_before) / ticks / elapsed
        proxy = (process_ticks(nginx.pids()) - nginx_before) / ticks / elapsed
        machine = (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
        total = sum(len(times) for times in tally.times.values())
        errors = sum(sum(counter.values()) for counter in tally.wrong.values())
        self.figure(
            f"soak seconds={elapsed:.1f} users={self.args.users} requests={total}"
            f" rps={total / elapsed:.0f} wrong={errors}"
        )
        self.figure(
            f"soak cpu apps={apps:.2f} nginx={proxy:.2f} load_generator={generator:.2f}"
            f" machine={machine:.2f} of"
            f" {os.cpu_count()} CPUs (other work before the run: {busy:.0f}% of a CPU)"
        )
        for kind in ("sign-in page", "sign-in", "home", "countdown", "sign-out", "old cookie"):
            times = sorted(tally.times.get(kind, []))
            statuses = ",".join(f"{s}:{n}" for s, n in sorted(tally.statuses[kind].items()))
            self.figure(
                f"soak kind={kind.replace(' ', '-')} requests={len(times)}"
                f" p50_ms={1000 * percentile(times, 0.50):.1f}"
                f" p99_ms={1000 * percentile(times, 0.99):.1f}"
                f" max_ms={1000 * (times[-1] if times else 0):.1f} statuses={statuses or '-'}"
            )
        for kind, counter in sorted(tally.wrong.items()):
            for status, count in sorted(counter.items()):
                self.figure(
                    f"soak wrong kind={kind.replace(' ', '-')} status={status} count={count}"
                )
        self.figure(f"soak errors total={errors}")
        for upstream, count in sorted(tally.upstreams.items()):
            self.figure(f"soak upstream {upstream} served={count}")
        nginx_errors = (self.logdir / "nginx" / "error.log").read_text(errors="replace")
        self.figure(f"soak nginx error_log_lines={len(nginx_errors.splitlines())}")

        cookie = sign_up_and_in(port, f"soak-wrk-{secrets.token_hex(3)}@example.com", PASSWORD)
        self.nginx_wrk = self.wrk(
            "countdown via nginx, 2 instances x 1 worker",
            port,
            "/session/countdown",
            {**COUNTDOWN_HEADERS, "Cookie": f"{SESSION_COOKIE}={cookie}"},
            [a, b, nginx],
        )
        for process in (nginx, a, b):
            self.stop(process)

    def wrk(
        self, label: str, port: int, path: str, headers: dict[str, str], watched: list[Process]
    ) -> WrkResult:
        url = f"http://127.0.0.1:{port}{path}"
        connections = self.args.connections
        run_wrk(url, duration=self.args.warmup, connections=connections, threads=1, headers=headers)
        busy = wait_for_quiet(self.args.quiet_wait)
        pids = [pid for process in watched for pid in process.pids()]
        before = {pid: process_ticks([pid]) for pid in pids}
        started = time.monotonic()
        result = run_wrk(
            url, duration=self.args.duration, connections=connections, threads=1, headers=headers
        )
        elapsed = time.monotonic() - started
        ticks = os.sysconf("SC_CLK_TCK")
        used = {pid: (process_ticks([pid]) - before[pid]) / ticks / elapsed for pid in pids}
        per_process = "+".join(f"{used[pid]:.2f}" for pid in pids if used[pid] >= 0.01)
        self.figure(
            f"workers {label}: {result.line()} cpu={sum(used.values()):.2f} ({per_process})"
            f" other_work_before={busy:.0f}%"
        )
        return result

    def run_workers(self) -> None:
        """One granian worker process, then two, on the same two-CPU machine."""
        results: dict[tuple[int, str], WrkResult] = {}
        for workers in (1, 2):
            # One worker on CPU 0, as bench/run.py; two are free to use both CPUs.
            app, port = self.app(f"app-{workers}w", workers, pin="0" if workers == 1 else None)
            email = f"soak-w{workers}-{secrets.token_hex(3)}@example.com"
            cookie = {"Cookie": f"{SESSION_COOKIE}={sign_up_and_in(port, email, PASSWORD)}"}
            for name, path, headers in (
                ("countdown", "/session/countdown", COUNTDOWN_HEADERS),
                ("home", "/home", HOME_HEADERS),
            ):
                results[workers, name] = self.wrk(
                    f"{name} {workers} worker{'s' if workers > 1 else ''}",
                    port, path, {**headers, **cookie}, [app],
                )  # fmt: skip
            self.stop(app)
        for name in ("countdown", "home"):
            one, two = results[1, name].rps, results[2, name].rps
            self.figure(f"workers {name} 2/1 workers={two / one:.2f}x ({one:.0f} -> {two:.0f} rps)")

    def cleanup(self) -> None:
        for process in list(reversed(self.processes)):
            with contextlib.suppress(Exception):
                self.stop(process)
        with contextlib.suppress(Exception):
            if self.prefix:
                removed = remove_keys(self.args.redis_url, self.prefix)
                log(f"removed {removed} Redis keys under {self.prefix}")
        if self.database_created:
            try:
                log(f"dropped database {drop_database(self.database_url, 'quartapp_soak_')}")
            except Exception as error:
                log(f"could not drop the soak database: {error!r}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60, help="length of the soak (60)")
    parser.add_argument("--users", type=int, default=16, help="simulated users (16)")
    parser.add_argument(
        "--pause-ms", type=float, default=0, help="each user's pause after a page or poll (0)"
    )
    parser.add_argument(
        "--bcrypt-rounds", type=int, default=12, help="bcrypt cost, as in production (12)"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of wrk before each (2)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument(
        "--quiet-wait", type=float, default=5,
        help="seconds to wait before each measured run for other work to stop (5)",
    )  # fmt: skip
    parser.add_argument("--skip", default="", help="comma-separated: soak, workers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--database-url", default=default_database_url(), help="any URL on the MySQL server to use"
    )
    args = parser.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for host in (
        urllib.parse.urlsplit(args.redis_url).hostname,
        urllib.parse.urlsplit(args.database_url).hostname,
    ):
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("this soak only runs against services on this machine")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for command in ("wrk", "taskset"):
        if shutil.which(command) is None:
            raise SystemExit(f"soak: {command} is not installed")
    logdir = Path(tempfile.mkdtemp(prefix="quartapp-soak-"))
    run = Soak(args, logdir)
    status = 0
    started = time.monotonic()
    with terminate_cleanly():
        try:
            run.setup()
            if "soak" not in args.skip:
                run.run_soak()
            if "workers" not in args.skip:
                run.run_workers()
        except Exception as error:
            status = 1
            print(f"soak: failed: {error}", file=sys.stderr)
            for process in run.processes:
                print(
                    f"--- {process.name} ({process.log_path}):\n{process.tail()}", file=sys.stderr
                )
        finally:
            run.cleanup()
    log(f"done in {time.monotonic() - started:.0f}s; logs in {logdir}")
    if status == 0:
        shutil.rmtree(logdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

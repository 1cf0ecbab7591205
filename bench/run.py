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
     GET /home too, pinned to the app's CPU. Every route is measured --rounds times (3),
     all of them in turn in each round, so that a page and its ceiling are measured close
     together in time; each figure is the median of its rounds, and a page's share of its
     ceiling the median of the rounds' shares. One table puts each page beside its ceiling
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
import json
import os
import secrets
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from harness.core import (
    APP_CPU,
    BENCH,
    LOAD_CPU,
    LOCAL_HOSTS,
    Run,
    add_run_options,
    add_wrk_options,
    execute,
    log,
    machine,
    new_run,
    parse_args,
    remove_logs,
    tool,
)
from harness.counting import MySQLStatus, count_per_request
from harness.cpu import CpuMeter, wait_for_quiet
from harness.memory import memory_per_session
from harness.pages import page_checks, page_table, table_lines
from harness.servers import server_argv, server_available
from harness.sign_ins import during_sign_ins, sign_in_until
from harness.tutorial import (
    TUTORIAL_COOKIE,
    TUTORIAL_LOGIN,
    Listener,
    pinned,
    tutorial_listener,
    tutorial_sign_in,
)
from harness.wrk import WrkResult, run_wrk

from quartapp.serve import APP
from tests.support.app_servers import AppServer, launch
from tests.support.http import (
    COUNTDOWN_HEADERS,
    CSRF_FIELD,
    PAGE_HEADERS,
    SESSION_COOKIE,
    Client,
    sign_up_and_in,
)
from tests.support.processes import free_port

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


def median_run(runs: list[WrkResult]) -> WrkResult:
    """The run with the median req/s (of an even number of runs, the lower of the two)."""
    return sorted(runs, key=lambda run: run.rps)[(len(runs) - 1) // 2]


class Bench(Run):
    """The run: one app under granian, the ceiling, the counts, sign-ins, memory, and
    the other servers."""

    def start(self, kind: str, app: str) -> AppServer:
        """``app`` ("quartapp" or "ceiling") under the server ``kind``, pinned to CPU 0."""
        # quartapp as ``quartapp serve`` runs it (quartapp.serve.APP); the ceiling as a bare app.
        module, factory = APP.split(":") if app == "quartapp" else ("ceiling_app", "create_app")
        port = free_port()
        name = f"{app}-{kind}"
        argv = ["taskset", "-c", APP_CPU, *server_argv(kind, module, factory, port)]
        server = launch(
            name, argv, port=port, env=self.env, log=self.logdir / f"{name}.log", timeout=45.0
        )
        self.processes.append(server)
        return server

    def wrk(
        self, server: AppServer | Listener, path: str, headers: dict[str, str], **kw: Any
    ) -> WrkResult:
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

    def measure(
        self, server: AppServer | Listener, run: Callable[[], WrkResult], wait: bool = True
    ) -> WrkResult:
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
        self.prepare({}, drop=("GRANIAN_", "UVICORN_", "CEILING_"))
        self.env["PYTHONPATH"] = str(BENCH)  # for ceiling_app; quartapp is installed in the venv
        self.mysql_port = urllib.parse.urlsplit(self.database_url).port or 3306
        self.control = redis.Redis.from_url(self.args.redis_url)
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
        # The sign-ins that run beside the countdown are another person's: signing in as
        # the measured user again and again would end its oldest session, the measured
        # one, at SESSION_MAX_PER_USER.
        self.other_email = f"bench-other-{secrets.token_hex(4)}@example.com"
        sign_up_and_in(app.port, self.other_email, self.password)
        client = Client(app.port)
        home = client.request("GET", "/home", {**PAGE_HEADERS, **self.cookie})
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

        # The pages and their ceilings, measured in turn, --rounds times: a page and its
        # ceiling are never far apart in time, so a slow spell of a shared machine falls on
        # both, and each figure is the median of its rounds.
        signed_in = {**PAGE_HEADERS, **self.cookie}
        routes: list[tuple[str, AppServer | Listener, str, dict[str, str]]] = [
            ("home", app, "/home", signed_in),
            ("countdown", app, "/session/countdown", {**COUNTDOWN_HEADERS, **self.cookie}),
            *((name, app, path, headers) for name, path, headers in self.pages(app)),
        ]
        ceiling = self.start_ceiling("granian")
        routes += [
            ("ceiling", ceiling, "/ceiling", {}),
            ("ceiling_constant", ceiling, "/constant", {}),
        ]
        with contextlib.ExitStack() as tutorial_pinned:
            if self.args.tutorial_url:
                tutorial, cookie = self.tutorial()
                tutorial_pinned.enter_context(pinned(tutorial.pid, APP_CPU))
                routes += [
                    ("tutorial_signin_page", tutorial, "/", PAGE_HEADERS),
                    ("tutorial_home", tutorial, "/home", {**PAGE_HEADERS, "Cookie": cookie}),
                ]
            runs = self.rounds(routes)
        self.stop(ceiling)
        for name, measured in runs.items():
            median = median_run(measured)
            figures = {**median.as_dict(), "rounds_rps": [round(run.rps) for run in measured]}
            if name.startswith("tutorial_"):
                self.results.setdefault("tutorial", {})[name.removeprefix("tutorial_")] = figures
            else:
                self.results[name] = figures
            self.figure(f"{name} {median.line()} (median of {len(measured)} rounds)")
        countdown_run, ceiling_run = median_run(runs["countdown"]), median_run(runs["ceiling"])
        if self.args.profile:
            for _, server, path, headers in routes:
                if server is app:
                    self.profile(app, path, headers)

        share = countdown_run.rps / ceiling_run.rps
        self.results["countdown_over_ceiling"] = round(share, 3)
        self.results["countdown_over_tutorial"] = round(countdown_run.rps / TUTORIAL_RPS, 2)
        self.figure(f"countdown/ceiling={share:.2f}")
        if countdown_run.rps_per_cpu and ceiling_run.rps_per_cpu:
            per_cpu = countdown_run.rps_per_cpu / ceiling_run.rps_per_cpu
            self.results["countdown_over_ceiling_per_cpu"] = round(per_cpu, 3)
            self.figure(
                f"countdown/ceiling per app CPU-second={per_cpu:.2f}"
                f" ({countdown_run.rps_per_cpu:.0f} vs {ceiling_run.rps_per_cpu:.0f}"
                " requests per CPU-second)"
            )
        self.figure(f"countdown/tutorial={countdown_run.rps / TUTORIAL_RPS:.2f}x")
        self.results["table"] = page_table(self.results, LIVE_SESSIONS)
        for line in table_lines(self.results["table"]):
            self.figure(line)

        self.counts(app)
        self.sign_in_latency(app, countdown_run)
        self.check_session_alive(app)

    def ceiling(self, kind: str) -> WrkResult:
        """The ceiling's run under the server ``kind``."""
        log(f"wrk GET /ceiling (bare Quart under {kind})")
        server = self.start_ceiling(kind)
        try:
            return self.wrk(server, "/ceiling", {})
        finally:
            self.stop(server)

    def pages(self, app: AppServer) -> list[tuple[str, str, dict[str, str]]]:
        """The sign-in page (anonymous) and /sessions (with LIVE_SESSIONS sessions), once
        each is known to answer as it should: (name, path, headers)."""
        sign_in_until(app.port, self.email, self.password, LIVE_SESSIONS)
        signed_in = {**PAGE_HEADERS, **self.cookie}
        with Client(app.port) as client:
            page = client.request("GET", "/", PAGE_HEADERS)
            if page.status != 200 or not CSRF_FIELD.search(page.text) or not page.cookies():
                raise RuntimeError(f"GET / gave {page.status} without its CSRF field and cookie")
            listed = client.request("GET", "/sessions", signed_in)
            if listed.status != 200 or listed.text.count("data-session=") != LIVE_SESSIONS:
                raise RuntimeError(f"GET /sessions does not list {LIVE_SESSIONS} sessions")
        return [("signin_page", "/", PAGE_HEADERS), ("sessions", "/sessions", signed_in)]

    def start_ceiling(self, kind: str) -> AppServer:
        """The ceiling app under ``kind``, once its routes answer the countdown's size."""
        server = self.start(kind, "ceiling")
        with Client(server.port) as client:
            for path in ("/ceiling", "/constant"):
                reply = client.request("GET", path)
                if reply.status != 200 or len(reply.body) != self.fragment_bytes:
                    raise RuntimeError(f"{path} gave {reply.status}, {len(reply.body)} bytes")
        return server

    def rounds(
        self, routes: list[tuple[str, AppServer | Listener, str, dict[str, str]]]
    ) -> dict[str, list[WrkResult]]:
        """Each route measured --rounds times, every route in turn in each round."""
        runs: dict[str, list[WrkResult]] = {name: [] for name, *_ in routes}
        for number in range(1, self.args.rounds + 1):
            for name, server, path, headers in routes:
                log(f"wrk GET {path} ({name}, round {number} of {self.args.rounds})")
                run = self.wrk(server, path, headers)
                if run.errors.get("status"):
                    raise RuntimeError(f"{name}: {path} answered non-2xx: {run.errors}")
                runs[name].append(run)
                self.figure(f"{name} round {number} {run.line()}")
        return runs

    def tutorial(self) -> tuple[Listener, str]:
        """The tutorial's Node app, and the Cookie header of a signed-in user of it."""
        base = self.args.tutorial_url.rstrip("/")
        email, _, password = self.args.tutorial_login.partition(":")
        cookie = tutorial_sign_in(base, email, password)
        return tutorial_listener(base), f"{TUTORIAL_COOKIE}={cookie}"

    def counts(self, app: AppServer) -> None:
        mysql = MySQLStatus(self.database_url)
        try:
            for name, path, headers in (
                ("home", "/home", {**PAGE_HEADERS, **self.cookie}),
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

    def sign_in_latency(self, app: AppServer, baseline: WrkResult) -> None:
        path = "/session/countdown"
        headers = {**COUNTDOWN_HEADERS, **self.cookie}
        url = f"http://127.0.0.1:{app.port}{path}"
        options = dict(
            connections=self.args.connections, threads=self.args.threads, headers=headers
        )

        log("wrk GET /session/countdown while sign-ins run (2 in flight)")
        quiet = self.quiet()
        busy, signins = during_sign_ins(
            app.port, self.other_email, self.password,
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
            app.port, self.other_email, self.password,
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

    def check_session_alive(self, app: AppServer) -> None:
        client = Client(app.port)
        reply = client.request("GET", "/session/countdown", {**COUNTDOWN_HEADERS, **self.cookie})
        client.close()
        if reply.status != 200 or "hx-get" not in reply.text:
            raise RuntimeError("the benchmark session died during the run; figures are not valid")

    def profile(self, app: AppServer, path: str, headers: dict[str, str]) -> None:
        """py-spy over the worker while wrk loads ``path`` (--profile DIR)."""
        pyspy = tool("py-spy")
        outdir = Path(self.args.profile)
        outdir.mkdir(parents=True, exist_ok=True)
        worker = app.pids()[-1]
        name = path.strip("/").replace("/", "_") or "signin_page"
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
        checks += page_checks(r.get("table", []), PAGE_TARGETS)
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


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_wrk_options(parser, "seconds of wrk before each measured run (2)")
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="times each page and ceiling is measured, in turn; figures are medians (3)",
    )  # fmt: skip
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
    add_run_options(
        parser,
        quiet_wait=10,
        quiet_help="seconds to wait before each measured run for other work on the machine to"
        " stop (10)",
        skip_help="comma-separated phases to skip: memory",
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
        "--tutorial-login", default=TUTORIAL_LOGIN,
        help=f"EMAIL:PASSWORD of a user of the tutorial app ({TUTORIAL_LOGIN}; its"
        " ./run.sh --user makes one)",
    )  # fmt: skip
    args = parse_args(parser, argv, "benchmark")
    if args.tutorial_url and urllib.parse.urlsplit(args.tutorial_url).hostname not in LOCAL_HOSTS:
        parser.error("the tutorial app must run on this machine")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    with contextlib.suppress(OSError):  # this process's own work stays off the app's CPU
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    base = new_run("bench", args)
    bench = Bench(base.name, args, base.logdir)

    def phases() -> None:
        bench.results["machine"] = machine()
        bench.setup()
        bench.results["machine"]["redis"] = bench.control.info("server")["redis_version"]
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

    status = execute(bench, phases)
    bench.results["elapsed_s"] = bench.elapsed
    if args.json:
        Path(args.json).write_text(json.dumps(bench.results, indent=2) + "\n")
    remove_logs(bench, status)
    return status


if __name__ == "__main__":
    sys.exit(main())

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
import os
import resource
import secrets
import sys
import time

from harness.core import (
    Run,
    add_run_options,
    add_wrk_options,
    execute,
    log,
    new_run,
    parse_args,
    remove_logs,
)
from harness.cpu import machine_ticks, wait_for_quiet
from harness.users import percentile, soak
from harness.wrk import WrkResult, run_wrk

from quartapp.serve import granian_argv
from tests.support.app_servers import launch
from tests.support.http import COUNTDOWN_HEADERS, PAGE_HEADERS, SESSION_COOKIE, sign_up_and_in
from tests.support.nginx import start_nginx
from tests.support.processes import Process, free_port
from tests.support.processes import cpu_ticks as process_ticks

PASSWORD = f"soak password {secrets.token_hex(6)}"


class Soak(Run):
    def setup(self) -> None:
        self.prepare(
            {
                "BCRYPT_ROUNDS": self.args.bcrypt_rounds,
                # Every simulated user signs up and in from 127.0.0.1.
                "THROTTLE_SIGN_UP_PER_IP": None,
                "THROTTLE_PASSWORD_STRENGTH_PER_IP": None,
                "THROTTLE_PASSWORD_STRENGTH_PER_ACCOUNT": None,
                "THROTTLE_SIGN_IN_PER_IP": None,
                "TRUSTED_PROXIES": ["127.0.0.1"],
            },
            drop=("GRANIAN_",),
        )

    def app(self, name: str, workers: int = 1, pin: str | None = None) -> tuple[Process, int]:
        port = free_port()
        argv = granian_argv(host="127.0.0.1", port=port, workers=workers)
        if pin is not None:
            argv = ["taskset", "-c", pin, *argv]
        process = launch(name, argv, port=port, env=self.env, log=self.logdir / f"{name}.log")
        self.processes.append(process)
        return process, port

    def nginx(self, upstreams: list[int]) -> tuple[Process, int]:
        nginx = start_nginx(
            self.logdir / "nginx", upstreams, keepalive=64, worker_connections=4096,
            access_log=False,
        )  # fmt: skip
        self.processes.append(nginx)
        return nginx, nginx.port

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
        busy0, total0 = machine_ticks()
        own0 = resource.getrusage(resource.RUSAGE_SELF)
        tally, elapsed = asyncio.run(
            soak(port, emails, PASSWORD, self.args.seconds, self.args.pause_ms / 1000)
        )
        busy1, total1 = machine_ticks()
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
                ("home", "/home", PAGE_HEADERS),
            ):
                results[workers, name] = self.wrk(
                    f"{name} {workers} worker{'s' if workers > 1 else ''}",
                    port, path, {**headers, **cookie}, [app],
                )  # fmt: skip
            self.stop(app)
        for name in ("countdown", "home"):
            one, two = results[1, name].rps, results[2, name].rps
            self.figure(f"workers {name} 2/1 workers={two / one:.2f}x ({one:.0f} -> {two:.0f} rps)")


def options(argv: list[str] | None) -> argparse.Namespace:
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
    add_wrk_options(parser, "seconds of wrk before each (2)")
    add_run_options(
        parser,
        quiet_wait=5,
        quiet_help="seconds to wait before each measured run for other work to stop (5)",
        skip_help="comma-separated: soak, workers",
    )
    return parse_args(parser, argv, "soak")


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    base = new_run("soak", args)
    run = Soak(base.name, args, base.logdir)

    def phases() -> None:
        run.setup()
        if "soak" not in args.skip:
            run.run_soak()
        if "workers" not in args.skip:
            run.run_workers()

    status = execute(run, phases)
    remove_logs(run, status)
    return status


if __name__ == "__main__":
    sys.exit(main())

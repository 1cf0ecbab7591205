#!/usr/bin/env python
"""Instructions per request of each page, counted by valgrind, with no server and no load.

    .venv/bin/python bench/instructions.py                      # every route, 200 requests each
    .venv/bin/python bench/instructions.py --routes home,signin --requests 500
    .venv/bin/python bench/instructions.py --cpu                # CPU time instead, no valgrind

wrk's requests per second move with whatever else runs on the machine; instruction counts do
not. This calls the app's ASGI entry point directly, for each route in a process of its own:
a warm-up, then the measured requests between callgrind's client requests (instrumentation
is off everywhere else), so the count is the app's own work per request, Redis client
included, and neither the server's nor Redis's. It compares changes, not servers: the
ceiling routes of bench/ceiling_app.py are measured the same way for scale. Counted one
after another in one process (--one-process), a route pays for collecting the garbage the
routes before it left (GET / counted 771k instructions after /home, 594k alone).

Routes: home (GET /home signed in), signin (GET /, anonymous), sessions (GET /sessions
with 5 live sessions), poll (GET /session/countdown from htmx), password (GET
/account/password signed in: a light page that goes through Quart, as every page does but
the front door's), healthz (the app's lightest route: its request cycle with no Redis and
no template), ceiling (one Redis PTTL) and constant (no Redis). Needs valgrind and a C
compiler (a 3-line helper issues the client requests), Redis and MariaDB as
script/bootstrap sets them up.

The app is made as ``quartapp serve`` makes it (``quartapp.serve.served_app``: its heap
settled once it serves), unless --stock-gc; with --concurrency 50 the requests are in flight
together, as under wrk, and the collector's work shows as it does in a served worker.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
ROUTES = ("home", "signin", "sessions", "poll", "password", "healthz", "ceiling", "constant")
HELPER = """
#include <valgrind/callgrind.h>
void start(void) {
  CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT;
}
void stop(const char *name) {
  CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT(name); CALLGRIND_STOP_INSTRUMENTATION;
}
"""


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


async def call(app: Any, request: dict[str, Any]) -> tuple[int, bytes]:
    """One request through the ASGI app; its status and body."""
    received = False
    status = 0
    body: list[bytes] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # As a server says once the response is complete: Quart 0.23 waits for this
        # message before its request's task group ends.
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(dict(request), receive, send)
    return status, b"".join(body)


async def load(app: Any, request: dict[str, Any], requests: int, concurrency: int) -> None:
    """``requests`` calls, ``concurrency`` of them in flight at a time."""

    async def one_after_another(count: int) -> None:
        for _ in range(count):
            await call(app, request)

    if concurrency == 1:
        await one_after_another(requests)
        return
    await asyncio.gather(*(one_after_another(requests // concurrency) for _ in range(concurrency)))


async def measure(args: argparse.Namespace, helper: Any) -> None:
    import ceiling_app
    import harness  # noqa: F401 - puts the checkout's root on sys.path, for tests.support
    from quart.testing.app import TestApp
    from redis.asyncio import Redis

    from quartapp import create_app
    from tests.support.http import COUNTDOWN_HEADERS
    from tests.support.settings import PUBLIC_URL

    prefix = f"quartapp-instructions:{secrets.token_hex(4)}:"
    # As a server worker runs it (its heap settled when it starts serving), unless asked
    # for the app alone.
    if args.stock_gc:
        factory = create_app
    else:
        from quartapp.serve import served_app as factory
    app = factory(
        {
            "ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "COOKIE_SECURE": False,
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "REDIS_PREFIX": prefix,
            # Under valgrind the app runs about fifty times slower: with 50 requests in
            # flight, a reply can wait longer than the 2-second default for its turn.
            "REDIS_TIMEOUT": 60.0,
            # Required in production; no mail is sent (nothing here signs up).
            "PUBLIC_URL": PUBLIC_URL,
            "MAIL_URL": "smtp://127.0.0.1:9",
        }
    )
    os.environ.update(
        CEILING_REDIS_URL=args.redis_url, CEILING_KEY=f"{prefix}ceiling", CEILING_BODY_BYTES="368"
    )
    control = Redis.from_url(args.redis_url)
    await control.set(f"{prefix}ceiling", "1", px=3_600_000)
    ceiling = ceiling_app.create_app()
    try:
        # Starting up under valgrind on a busy machine can outlast the 6 seconds Quart's
        # test app allows by default.
        async with (
            TestApp(app, startup_timeout=300),
            TestApp(ceiling, startup_timeout=300),
        ):
            sessions = app.extensions["quartapp.sessions"]
            tokens = [
                (await sessions.store.create(4242, "bench@example.com", ip="203.0.113.7"))[0]
                for _ in range(5)
            ]
            cookie = (
                b"cookie",
                f"quartapp_session={sessions._serializer.dumps(tokens[0])}".encode(),
            )
            accept = (b"accept", b"text/html,application/xhtml+xml")
            # What the page's widget sends (tests.support.http.COUNTDOWN_HEADERS).
            htmx = [
                (name.lower().encode(), value.encode()) for name, value in COUNTDOWN_HEADERS.items()
            ]
            requests = {
                "home": (app, scope("/home", [accept, cookie])),
                "signin": (app, scope("/", [accept])),
                "sessions": (app, scope("/sessions", [accept, cookie])),
                "password": (app, scope("/account/password", [accept, cookie])),
                "poll": (app, scope("/session/countdown", [cookie, *htmx])),
                "healthz": (app, scope("/healthz", [])),
                "ceiling": (ceiling, scope("/ceiling", [accept])),
                "constant": (ceiling, scope("/constant", [accept])),
            }
            for name in args.routes:
                target, request = requests[name]
                status, body = await call(target, request)
                if status != 200:
                    raise RuntimeError(f"{name} answered {status}: {body[:200]!r}")
                await load(target, request, args.warmup, args.concurrency)
                if helper is not None:
                    helper.start()
                    await load(target, request, args.requests, args.concurrency)
                    helper.stop(name.encode())
                    continue
                best = float("inf")
                for _ in range(5):
                    started = time.process_time()
                    await load(target, request, args.requests, args.concurrency)
                    best = min(best, (time.process_time() - started) / args.requests)
                print(f"{name:<9} {best * 1e6:9.1f} µs of CPU per request (least of 5 rounds)")
    finally:
        keys = [key async for key in control.scan_iter(match=f"{prefix}*")]
        if keys:
            await control.delete(*keys)
        await control.aclose()


def common_options(args: argparse.Namespace) -> list[str]:
    """The options a child process is given besides its routes."""
    return [
        "--requests", str(args.requests), "--warmup", str(args.warmup),
        "--concurrency", str(args.concurrency), *(["--stock-gc"] if args.stock_gc else []),
        "--database-url", args.database_url, "--redis-url", args.redis_url,
    ]  # fmt: skip


def batches(args: argparse.Namespace) -> list[list[str]]:
    """The routes each process counts: one each, or all in one with --one-process."""
    return [args.routes] if args.one_process else [[name] for name in args.routes]


def cpu_per_process(args: argparse.Namespace) -> int:
    """--cpu, each batch of routes timed by a child process that prints its own lines."""
    for routes in batches(args):
        argv = [sys.executable, __file__, "--cpu", "--one-process", "--routes", ",".join(routes)]
        subprocess.run([*argv, *common_options(args)], check=True)
    return 0


def under_valgrind(args: argparse.Namespace) -> int:
    for tool in ("valgrind", "cc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench/instructions.py: {tool} is not installed (or use --cpu)")
    for routes in batches(args):
        counts = count_instructions(args, routes)
        for name in routes:
            print(f"{name:<9} {counts[name] / args.requests:12,.0f} instructions per request")
            sys.stdout.flush()
    return 0


def count_instructions(args: argparse.Namespace, routes: list[str]) -> dict[str, int]:
    """Instructions of ``requests`` requests to each of ``routes``, all in one process."""
    with tempfile.TemporaryDirectory(prefix="quartapp-instructions-") as tmp:
        work = Path(tmp)
        (work / "helper.c").write_text(HELPER)
        helper = work / "helper.so"
        compile_helper = [
            "cc",
            "-O2",
            "-shared",
            "-fPIC",
            "-o",
            str(helper),
            str(work / "helper.c"),
        ]
        subprocess.run(compile_helper, check=True)
        argv = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no", "-q",
            f"--callgrind-out-file={work}/out.%p", sys.executable, __file__, "--inside",
            str(helper), "--routes", ",".join(routes), *common_options(args),
        ]  # fmt: skip
        subprocess.run(argv, check=True)
        counts: dict[str, int] = {}
        for out in work.glob("out.*"):
            lines = out.read_text().splitlines()
            trigger = next((line for line in lines if line.startswith("desc: Trigger:")), "")
            name = trigger.rsplit(" ", 1)[-1]
            total = next(
                (line.split()[1] for line in lines if line.startswith(("summary:", "totals:"))), "0"
            )
            if name in routes:
                counts[name] = int(total)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma-separated (all)")
    parser.add_argument("--requests", type=int, default=200, help="measured per route (200)")
    parser.add_argument("--warmup", type=int, default=200, help="requests before measuring (200)")
    parser.add_argument("--cpu", action="store_true", help="CPU time per request, no valgrind")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="requests in flight at once (1); at 50, as wrk's connections keep them, the"
        " garbage collector's share shows",
    )
    parser.add_argument(
        "--stock-gc", action="store_true",
        help="the app as create_app makes it, without the serving worker's collector settings",
    )  # fmt: skip
    parser.add_argument(
        "--one-process", action="store_true",
        help="count every route in one process, one after another (each route in a process of"
        " its own otherwise, so none pays for the garbage of the routes before it)",
    )  # fmt: skip
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    saved = ROOT / ".venv" / "quartapp-database-url"
    parser.add_argument(
        "--database-url",
        default=saved.read_text().strip() if saved.exists() else "mysql://root:@127.0.0.1:3306/quartapp",
    )  # fmt: skip
    parser.add_argument("--inside", help=argparse.SUPPRESS)  # the helper, under valgrind
    args = parser.parse_args()
    args.routes = [r for r in args.routes.split(",") if r]
    unknown = set(args.routes) - set(ROUTES)
    if unknown:
        parser.error(f"unknown routes: {', '.join(sorted(unknown))}")
    if args.concurrency < 1 or args.requests % args.concurrency:
        parser.error("--requests must be a multiple of --concurrency")
    import uvloop

    if args.cpu:
        if not args.one_process and len(args.routes) > 1:
            return cpu_per_process(args)
        uvloop.run(measure(args, None))
        return 0
    if args.inside:
        uvloop.run(measure(args, ctypes.CDLL(args.inside)))
        return 0
    return under_valgrind(args)


if __name__ == "__main__":
    sys.exit(main())

"""A benchmark run's skeleton: its scratch database and Redis prefix, the processes it
started, its figures, and the clean-up that follows any end (success, an error, Ctrl-C or
SIGTERM). Only services on this machine are ever used."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.support.app_servers import app_environment, delete_redis_keys
from tests.support.databases import drop_database, migrate
from tests.support.processes import ROOT, Process

BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
APP_CPU = "0"
LOAD_CPU = "1"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: {name} is not installed")
    return found


def default_database_url() -> str:
    saved = ROOT / ".venv" / "quartapp-database-url"
    if saved.exists():
        return saved.read_text().strip()
    return "mysql://root:@127.0.0.1:3306/quartapp"


def add_wrk_options(parser: argparse.ArgumentParser, warmup_help: str) -> None:
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=float, default=2, help=warmup_help)
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")


def add_run_options(
    parser: argparse.ArgumentParser, *, quiet_wait: float, quiet_help: str, skip_help: str
) -> None:
    """--quiet-wait, --skip, and the services: --redis-url and --database-url."""
    parser.add_argument("--quiet-wait", type=float, default=quiet_wait, help=quiet_help)
    parser.add_argument("--skip", default="", help=skip_help)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--database-url", default=default_database_url(), help="any URL on the MySQL server to use"
    )


def parse_args(
    parser: argparse.ArgumentParser, argv: list[str] | None, what: str
) -> argparse.Namespace:
    """The options, ``--skip`` as a set; refuses services on other machines."""
    args = parser.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for url in (args.redis_url, args.database_url):
        if urllib.parse.urlsplit(url).hostname not in LOCAL_HOSTS:
            parser.error(f"this {what} only runs against services on this machine")
    return args


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


def drop_scratch_database(url: str, prefix: str) -> str:
    """Drop the scratch database ``url`` names; returns its name. Only a name made by a
    run (``prefix`` and six hex digits) is ever dropped."""
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    if not re.fullmatch(re.escape(prefix) + r"[0-9a-f]{6}", name):
        raise ValueError(f"{name!r} is not a scratch database of this benchmark")
    return drop_database(url)


@dataclass
class Run:
    """One run of a benchmark script called ``name`` ("bench", "soak")."""

    name: str
    args: argparse.Namespace
    logdir: Path
    processes: list[Process] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    database_url: str = ""
    database_created: bool = False
    prefix: str = ""
    elapsed: float = 0.0

    def figure(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def prepare(self, settings: dict[str, Any], drop: tuple[str, ...] = ()) -> None:
        """A Redis prefix and a database of the run's own, migrated, and the apps'
        environment (production settings, then ``settings``)."""
        tag = secrets.token_hex(3)
        self.prefix = f"quartapp-{self.name}:{tag}:"
        base = self.args.database_url.rsplit("/", 1)[0]
        self.database_url = f"{base}/quartapp_{self.name}_{tag}"
        self.env = app_environment(
            self.database_url,
            secret_key=f"{self.name}-{secrets.token_urlsafe(48)}",
            redis_prefix=self.prefix,
            redis_url=self.args.redis_url,
            settings=settings,
            drop=drop,
        )
        with redis.Redis.from_url(self.args.redis_url) as control:
            control.ping()
        log(f"migrating {self.database_url.split('@')[-1]}")
        self.database_created = True
        migrate(self.database_url, self.env)

    def stop(self, process: Process) -> None:
        process.stop()
        self.processes.remove(process)

    def cleanup(self) -> None:
        for process in list(reversed(self.processes)):
            with contextlib.suppress(Exception):
                self.stop(process)
        with contextlib.suppress(Exception):
            if self.prefix:
                removed = delete_redis_keys(self.prefix, self.args.redis_url)
                log(f"removed {removed} Redis keys under {self.prefix}")
        if self.database_created:
            try:
                dropped = drop_scratch_database(self.database_url, f"quartapp_{self.name}_")
                log(f"dropped database {dropped}")
            except Exception as error:
                log(f"could not drop the {self.name} database: {error!r}")


def new_run(name: str, args: argparse.Namespace) -> Run:
    """A run with a fresh log directory, once wrk and taskset are known to be there."""
    for command in ("wrk", "taskset"):
        if shutil.which(command) is None:
            raise SystemExit(f"{name}: {command} is not installed")
    return Run(name, args, Path(tempfile.mkdtemp(prefix=f"quartapp-{name}-")))


def execute(run: Run, phases: Callable[[], None]) -> int:
    """``phases``, then the clean-up, whatever happens; the exit status. A failure prints
    the end of every process's log, and the logs are kept."""
    status = 0
    started = time.monotonic()
    with terminate_cleanly():
        try:
            phases()
        except Exception as error:
            status = 1
            print(f"{run.name}: failed: {error}", file=sys.stderr)
            for process in run.processes:
                print(f"--- {process.name} log ({process.log}):\n{process.tail()}", file=sys.stderr)
        finally:
            run.cleanup()
    run.elapsed = round(time.monotonic() - started, 1)
    log(f"done in {run.elapsed:.0f}s; logs in {run.logdir}")
    return status


def remove_logs(run: Run, status: int) -> None:
    if status == 0:
        shutil.rmtree(run.logdir, ignore_errors=True)


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

"""``python -m quartapp serve``: the app under Granian.

``granian_argv`` is the one place that says how the app is served. script/server, the
Docker image, the tests and the benchmarks all start it through here, so what they run is
what a deployment runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

APP = "quartapp:create_app"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4300
# Seconds granian lets a worker finish its requests on a stop (SIGTERM) before killing it.
WORKERS_KILL_TIMEOUT = 10


def granian_argv(*, host: str, port: int, workers: int = 1, app: str = APP) -> list[str]:
    """Granian's command line for ``app`` (a factory, ``module:function``).

    It runs with this interpreter, so it serves the quartapp installed beside it. No
    websockets (the app has none), uvloop, and a graceful stop bounded in time."""
    return [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--factory", app,
        "--host", host,
        "--port", str(port),
        "--loop", "uvloop",
        "--workers", str(workers),
        "--no-ws",
        "--workers-kill-timeout", str(WORKERS_KILL_TIMEOUT),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port`` and ``--workers``, defaulting to HOST, PORT, QUARTAPP_WORKERS."""
    parser.add_argument(
        "--host",
        default=os.environ.get("HOST", DEFAULT_HOST),
        help=f"address to listen on (default: $HOST or {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("PORT", str(DEFAULT_PORT)),
        help=f"TCP port (default: $PORT or {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.environ.get("QUARTAPP_WORKERS", "1"),
        help="worker processes (default: $QUARTAPP_WORKERS or 1)",
    )


def serve(*, host: str, port: int, workers: int) -> NoReturn:
    """Replace this process with granian: signals from a process manager (SIGTERM for a
    graceful stop) then reach granian itself, as with ``exec granian`` in a shell."""
    argv = granian_argv(host=host, port=port, workers=workers)
    os.execv(argv[0], argv)  # noqa: S606 - a fixed command line, this interpreter

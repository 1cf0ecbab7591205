"""``python -m quartapp serve``: the app under Granian.

``granian_argv`` is the one place that says how the app is served. script/server, the
Docker image, the tests and the benchmarks all start it through here, so what they run is
what a deployment runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from quartapp.engine.quart_request_cycle import Application

APP = "quartapp.serve:served_app"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4300
# Seconds granian lets a worker finish its requests on a stop (SIGTERM) before killing it.
WORKERS_KILL_TIMEOUT = 10


# Allocations (less deallocations) between two collections of the youngest generation;
# Python's default is 700. See ``settle_heap``.
YOUNG_COLLECTION_THRESHOLD = 10_000


def served_app(overrides: Mapping[str, Any] | None = None) -> Application:
    """The app as each server worker runs it: ``create_app``, and the worker's heap settled
    once it starts serving (``settle_heap``)."""
    from quartapp import create_app

    app = create_app(overrides)
    app.before_serving(settle_heap)
    return app


async def settle_heap() -> None:
    """Tune the garbage collector for serving, once the worker is up.

    Everything alive now (modules, the app, its routes and templates, open pools) lives as
    long as the process: it is frozen out of the collector's generations, so no collection
    walks it again. And a request makes a few hundred container objects, nearly all gone
    when its answer is sent; with 50 requests in flight, Python's default young threshold
    (700) collected several times per request batch and moved whatever was in flight to
    the older generations, whose collections then walked it again. At 10,000 most of a
    request's objects are freed by reference counting before any collection sees them.
    Only reference cycles wait for the collector, and each request leaves about 15 objects
    of those."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


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

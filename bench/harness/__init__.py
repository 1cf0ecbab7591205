"""What the benchmark scripts in bench/ are built from.

``core`` is a run's skeleton (a scratch database and Redis prefix, its processes, the
clean-up that follows any end, the options every script takes); ``servers`` the ASGI
servers it compares; ``wrk`` the load; ``cpu`` whose CPU time it was; ``counting`` the
Redis commands and MySQL queries per request; ``sign_ins`` sign-ins in the background,
or until a user has so many sessions; ``memory`` Redis memory per session;
``async_http`` one keep-alive connection per simulated user; ``tutorial`` the tutorial's
Node app, measured beside quartapp; ``pages`` the table of pages against their ceilings.
Processes, HTTP, nginx and databases come from ``tests/support``, which the tests use
too: this package puts the checkout's root on ``sys.path`` for it.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(1, _ROOT)

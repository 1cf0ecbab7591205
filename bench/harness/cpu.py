"""Whose CPU time it was: the machine may be shared, and the figures mean little when
something else ran on the app's CPU."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.support.processes import cpu_ticks as process_ticks

from .core import APP_CPU

TICKS = os.sysconf("SC_CLK_TCK")


def machine_ticks(cpu: str = "cpu") -> tuple[int, int]:
    """(busy, total) jiffies of one CPU ("cpu0") or of all of them ("cpu")."""
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == cpu:
            values = [int(v) for v in fields[1:9]]
            idle = values[3] + values[4]
            return sum(values) - idle, sum(values)
    raise RuntimeError(f"no {cpu} in /proc/stat")


class CpuMeter:
    """How much of CPU 0 the app used during a run, and how much everything else did."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def __enter__(self) -> CpuMeter:
        self.app0 = process_ticks(self.pids)
        self.busy0, self.total0 = machine_ticks(f"cpu{APP_CPU}")
        return self

    def __exit__(self, *_: object) -> None:
        app = process_ticks(self.pids) - self.app0
        busy, total = machine_ticks(f"cpu{APP_CPU}")
        span = max(1, total - self.total0)
        self.app_pct = round(100 * app / span, 1)
        self.other_pct = round(100 * max(0, busy - self.busy0 - app) / span, 1)


def wait_for_quiet(limit: float, threshold_pct: float = 20.0) -> float:
    """Wait (at most ``limit`` seconds) until the machine's other work takes under
    ``threshold_pct`` of one CPU; returns the last share seen."""
    deadline = time.monotonic() + limit
    while True:
        busy0, total0 = machine_ticks()
        time.sleep(0.5)
        busy1, total1 = machine_ticks()
        # total counts every CPU; scale to "percent of one CPU"
        share = 100 * (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
        if share < threshold_pct or time.monotonic() >= deadline:
            return round(share, 1)

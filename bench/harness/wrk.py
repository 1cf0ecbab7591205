"""wrk, pinned to the load generator's CPU, with bench/wrk_report.lua's JSON report."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from .core import BENCH, LOAD_CPU

WRK_SCRIPT = BENCH / "wrk_report.lua"


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

"""The ASGI servers a benchmark compares, each pinned to the app's CPU."""

from __future__ import annotations

import shutil

from quartapp.serve import granian_argv

from .core import VENV_BIN, tool


def server_argv(kind: str, module: str, factory: str, port: int) -> list[str]:
    """The command line each server gets; granian's is the one ``quartapp serve`` runs."""
    if kind == "granian":
        return granian_argv(host="127.0.0.1", port=port, workers=1, app=f"{module}:{factory}")
    if kind == "uvicorn":
        return [
            tool("uvicorn"), "--factory", f"{module}:{factory}",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--lifespan", "on", "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
    if kind == "hypercorn":
        return [
            tool("hypercorn"), "--bind", f"127.0.0.1:{port}", "--worker-class", "uvloop",
            "--workers", "1", f"{module}:{factory}()",
        ]  # fmt: skip
    raise ValueError(kind)


def server_available(kind: str) -> bool:
    return (VENV_BIN / kind).exists() or shutil.which(kind) is not None

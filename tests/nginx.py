"""nginx in front of app instances, started by a test: its own config, port and files.

It runs in the foreground (``daemon off;``) from a temporary directory that holds its
config, pid file, logs and temporary files, so it touches nothing of a system nginx.
The proxy settings are the ones the documentation recommends (round-robin upstream with
keep-alive connections, passive health checks, X-Forwarded-For); each answer also says
which instance gave it (``X-Upstream``), for the tests. An instance that refuses
connections (stopped, restarting) is skipped: the request goes to the other one, and the
instance gets none for ``fail_timeout``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .app_servers import free_port, status_of

NGINX = "/usr/sbin/nginx"


def nginx_binary() -> str:
    found = NGINX if os.access(NGINX, os.X_OK) else shutil.which("nginx")
    if found is None:
        pytest.fail("nginx is not installed: run BOOTSTRAP_SERVERS=1 script/bootstrap")
    return found


def _compiled_without(binary: str) -> set[str]:
    """The optional modules this nginx was built without (its temp paths must not be set)."""
    done = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False)  # noqa: S603
    flags = (done.stdout + done.stderr).split()
    return {flag.removeprefix("--without-") for flag in flags if flag.startswith("--without-")}


def nginx_config(
    directory: Path,
    port: int,
    upstreams: Sequence[int],
    *,
    binary: str = NGINX,
    fail_timeout: str = "2s",
) -> str:
    without = _compiled_without(binary)
    temp_paths = [
        f"client_body_temp_path {directory}/client_body;",
        f"proxy_temp_path {directory}/proxy;",
    ]
    for module in ("fastcgi", "uwsgi", "scgi"):
        if f"http_{module}_module" not in without:
            temp_paths.append(f"{module}_temp_path {directory}/{module};")
    servers = "\n".join(
        f"        server 127.0.0.1:{upstream} max_fails=1 fail_timeout={fail_timeout};"
        for upstream in upstreams
    )
    # Run as root, nginx would hand its workers to "nobody", who cannot use this directory.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n    ".join(temp_paths)
    return f"""\
daemon off;
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    log_format upstream '$remote_addr "$request" $status $upstream_addr $upstream_status';
    access_log {directory}/access.log upstream;
    {temp}

    upstream quartapp {{
{servers}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64k;

        location / {{
            proxy_pass http://quartapp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def access_log(self) -> str:
        return (self.directory / "access.log").read_text(errors="replace")

    def error_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "error.log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        """SIGQUIT: nginx finishes the requests it has, then exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def run_nginx(directory: Path, upstreams: Sequence[int], **options: str) -> Iterator[Nginx]:
    """nginx on a free port of 127.0.0.1 in front of the apps on ``upstreams``."""
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, port, upstreams, binary=binary, **options))
    output = directory / "stderr.log"
    with output.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - a fixed command line
            [binary, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    nginx = Nginx(port, directory, process)
    try:
        deadline = time.monotonic() + 10
        while status_of(port, "/healthz") is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"nginx did not start (exit code {process.poll()}):\n"
                    f"{output.read_text(errors='replace')}\n{nginx.error_log()}"
                )
            time.sleep(0.05)
        yield nginx
    finally:
        nginx.stop()

"""nginx in front of app instances: its own config, port and files.

It runs in the foreground (``daemon off;``) from a directory that holds its config, pid
file, logs and temporary files, so it touches nothing of a system nginx. The proxy
settings are the ones docs/deployment.md recommends (round-robin upstream with keep-alive
connections, passive health checks, X-Forwarded-For), without TLS; each answer also says
which instance gave it (``X-Upstream``). An instance that refuses connections (stopped,
restarting) is skipped: the request goes to another one, and the instance gets none for
``fail_timeout``. The scale-out tests and bench/soak.py both run it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .http import status_of
from .processes import Process, ProcessError, free_port

NGINX = "/usr/sbin/nginx"


def nginx_binary() -> str:
    found = NGINX if os.access(NGINX, os.X_OK) else shutil.which("nginx")
    if found is None:
        raise ProcessError("nginx is not installed: run BOOTSTRAP_SERVERS=1 script/bootstrap")
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
    fail_timeout: str = "5s",
    keepalive: int = 32,
    worker_connections: int = 1024,
    access_log: bool = True,
) -> str:
    """The documented configuration for ``upstreams`` on 127.0.0.1, listening on ``port``,
    with every file in ``directory``."""
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
    log = f"access_log {directory}/access.log upstream;" if access_log else "access_log off;"
    return f"""\
daemon off;
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;

events {{
    worker_connections {worker_connections};
}}

http {{
    log_format upstream '$remote_addr "$request" $status $upstream_addr $upstream_status';
    {log}
    {temp}

    upstream quartapp {{
{servers}
        keepalive {keepalive};
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
class Nginx(Process):
    port: int = 0
    directory: Path = Path()

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

    def stop(self, how: int = signal.SIGQUIT, timeout: float = 10) -> int:
        """SIGQUIT: nginx finishes the requests it has, then exits."""
        return super().stop(how, timeout)


def start_nginx(
    directory: Path,
    upstreams: Sequence[int],
    *,
    fail_timeout: str = "5s",
    keepalive: int = 32,
    worker_connections: int = 1024,
    access_log: bool = True,
) -> Nginx:
    """nginx on a free port of 127.0.0.1 in front of the apps on ``upstreams``, answering
    (the caller stops it); the options are ``nginx_config``'s."""
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(
        nginx_config(
            directory, port, upstreams, binary=binary, fail_timeout=fail_timeout,
            keepalive=keepalive, worker_connections=worker_connections, access_log=access_log,
        )
    )  # fmt: skip
    argv = [binary, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
    started = Process.start("nginx", argv, log=directory / "stderr.log")
    nginx = Nginx(started.name, started.process, started.log, port=port, directory=directory)
    try:
        nginx.wait_until("an answer", lambda: status_of(port) is not None, 10)
    except ProcessError as error:
        nginx.kill()
        raise ProcessError(f"{error}\n{nginx.error_log()}") from None
    return nginx


@contextlib.contextmanager
def run_nginx(
    directory: Path, upstreams: Sequence[int], fail_timeout: str = "5s"
) -> Iterator[Nginx]:
    """``start_nginx`` until the block ends."""
    nginx = start_nginx(directory, upstreams, fail_timeout=fail_timeout)
    try:
        yield nginx
    finally:
        nginx.stop()

"""Sign-ins: running in the background while something else is measured, and made one
after another until a user has so many live sessions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.support.http import (
    FORM_HEADERS,
    HOST,
    SESSION_COOKIE,
    Browser,
    Client,
    cookie_header,
    form_body,
)

from .wrk import WrkResult


class SignInLoad:
    """``in_flight`` clients signing in back to back (form posts with CSRF, like a browser)."""

    def __init__(self, port: int, email: str, password: str, in_flight: int = 2) -> None:
        self.port = port
        self.email = email
        self.password = password
        self.in_flight = in_flight
        self.stop_event = threading.Event()
        self.completed: list[tuple[float, float]] = []  # (finished at, seconds taken)
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(in_flight)]

    def run(self) -> None:
        client = Client(self.port)
        try:
            reply = client.request("GET", "/api/v1/csrf", {"Accept": "application/json"})
            token = json.loads(reply.body)["csrf_token"]
            cookie = cookie_header(reply.cookies())
            headers = {**FORM_HEADERS, "Accept": "text/html", "Cookie": cookie}
            body = form_body({"email": self.email, "password": self.password, "csrf_token": token})
            while not self.stop_event.is_set():
                started = time.monotonic()
                reply = client.request("POST", "/api/v1/signin", headers, body)
                finished = time.monotonic()
                with self.lock:
                    if reply.status == 303 and SESSION_COOKIE in reply.cookies():
                        self.completed.append((finished, finished - started))
                    else:
                        self.failures.append(f"{reply.status} {reply.text[:200]}")
                        if len(self.failures) > 20:
                            return
        except Exception as error:  # reported by the caller
            with self.lock:
                self.failures.append(repr(error))
        finally:
            client.close()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[float]:
        with self.lock:
            return [took for finished, took in self.completed if start <= finished <= end]


def during_sign_ins(
    port: int, email: str, password: str, measure: Callable[[], WrkResult]
) -> tuple[WrkResult, dict[str, Any]]:
    load = SignInLoad(port, email, password)
    load.start()
    try:
        time.sleep(1.5)  # every client past its first request, two hashes in flight
        start = time.monotonic()
        result = measure()
        end = time.monotonic()
    finally:
        load.stop()
    if load.failures:
        raise RuntimeError(f"sign-ins failed: {load.failures[:3]}")
    took = sorted(load.between(start, end))
    stats = {
        "signins": len(took),
        "signins_per_s": round(len(took) / (end - start), 2),
        "signin_p50_ms": round(1000 * took[len(took) // 2], 1) if took else None,
        "signin_max_ms": round(1000 * took[-1], 1) if took else None,
    }
    return result, stats


def sign_in_until(port: int, email: str, password: str, sessions: int) -> None:
    """Sign in through the form (a fresh browser each time) until ``email`` has
    ``sessions`` live sessions; more than that is an error."""
    base = f"http://{HOST}:{port}"
    for _ in range(sessions):
        browser = Browser()
        reply = browser.sign_in(base, email, password)
        if reply.status != 303 or SESSION_COOKIE not in reply.cookies():
            raise RuntimeError(f"sign-in gave {reply.status}: {reply.text[:300]}")
        listed = browser.get(f"{base}/sessions", Accept="application/json")
        count = len(json.loads(listed.body)["sessions"])
        if count >= sessions:
            if count > sessions:
                raise RuntimeError(f"{email} has {count} sessions, more than {sessions}")
            return
    raise RuntimeError(f"{email} did not reach {sessions} sessions")

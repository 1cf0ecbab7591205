"""Simulated users for the soak: each signs in through the form, browses and polls,
signs out, and checks that a copy of its old cookie is refused; every answer is checked
and timed."""

from __future__ import annotations

import asyncio
import random
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.http import COUNTDOWN_HEADERS, CSRF_FIELD, PAGE_HEADERS, SESSION_COOKIE

from .async_http import Answer, Connection


@dataclass
class Tally:
    """Every answer's time per kind of request, and what was wrong."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    wrong: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    upstreams: Counter[str] = field(default_factory=Counter)


class User:
    """One browser: signs in, browses and polls, signs out, checks its old cookie is dead."""

    def __init__(
        self, port: int, email: str, password: str, tally: Tally, rng: random.Random
    ) -> None:
        self.connection = Connection(port)
        self.email = email
        self.password = password
        self.tally = tally
        self.rng = rng
        self.cookies: dict[str, str] = {}

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        headers: dict[str, str],
        expect: Callable[[Answer], bool],
        form: dict[str, str] | None = None,
    ) -> Answer | None:
        sent = dict(headers)
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            answer = await asyncio.wait_for(
                self.connection.request(method, path, sent, body), timeout=30
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            self.tally.wrong[kind][type(error).__name__] += 1
            self.tally.statuses[kind][type(error).__name__] += 1
            return None
        self.tally.times[kind].append(time.perf_counter() - started)
        self.tally.statuses[kind][str(answer.status)] += 1
        if upstream := answer.header("x-upstream"):
            self.tally.upstreams[upstream] += 1
        for header in answer.headers.get("set-cookie", []):
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            if not value or "max-age=0" in attributes.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if not expect(answer):
            self.tally.wrong[kind][str(answer.status)] += 1
        return answer

    def home_ok(self, answer: Answer) -> bool:
        return answer.status == 200 and self.email in answer.text

    @staticmethod
    def page_ok(answer: Answer) -> bool:
        return answer.status == 200

    @staticmethod
    def poll_ok(answer: Answer) -> bool:
        return answer.status == 200 and "hx-get" in answer.text

    @staticmethod
    def to_home(answer: Answer) -> bool:
        return answer.status == 303 and answer.header("location") == "/home"

    @staticmethod
    def to_sign_in(answer: Answer) -> bool:
        # A sign-out lands on the sign-in page saying so; a dead cookie on the plain one.
        return answer.status == 303 and answer.header("location") in ("/", "/?signed_out=1")

    async def life(self, deadline: float, pause: float) -> None:
        """Sessions one after another until ``deadline``."""
        try:
            while time.monotonic() < deadline:
                self.cookies.clear()
                page = await self.call("sign-in page", "GET", "/", PAGE_HEADERS, self.page_ok)
                token = CSRF_FIELD.search(page.text) if page else None
                if token is None:
                    continue
                fields = {"email": self.email, "password": self.password, "csrf_token": token[1]}
                signed_in = await self.call(
                    "sign-in", "POST", "/api/v1/signin", {}, self.to_home, fields
                )
                if signed_in is None or not self.to_home(signed_in):
                    continue
                session = self.cookies.get(SESSION_COOKIE)
                home_token = None
                for step in range(self.rng.randint(100, 300)):
                    if time.monotonic() >= deadline:
                        break
                    if step % 20 == 0:
                        home = await self.call("home", "GET", "/home", PAGE_HEADERS, self.home_ok)
                        if home and (found := CSRF_FIELD.search(home.text)):
                            home_token = found[1]
                    else:
                        await self.call(
                            "countdown",
                            "GET",
                            "/session/countdown",
                            COUNTDOWN_HEADERS,
                            self.poll_ok,
                        )
                    if pause:
                        await asyncio.sleep(pause)
                if home_token is None:
                    continue
                await self.call(
                    "sign-out", "POST", "/logout", {}, self.to_sign_in, {"csrf_token": home_token}
                )
                if session:
                    self.cookies[SESSION_COOKIE] = session  # a copy of the old cookie
                    await self.call("old cookie", "GET", "/home", PAGE_HEADERS, self.to_sign_in)
        finally:
            self.connection.close()


async def soak(
    port: int, emails: list[str], password: str, seconds: float, pause: float
) -> tuple[Tally, float]:
    tally = Tally()
    rng = random.Random(7)
    users = [User(port, email, password, tally, random.Random(rng.random())) for email in emails]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(user.life(deadline, pause) for user in users))
    return tally, time.monotonic() - started


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]

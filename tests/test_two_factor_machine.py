"""The second factor against a model of the account, through the real routes, with real
Redis and MySQL.

A hypothesis state machine enrols, signs in with codes of steps around now (and replays the
last one), uses recovery codes (unused, used, in any letter case and spacing), makes new
ones, turns the factor off and on again, and moves the server's clock, in any order. The
model keeps what the account must be: on or off, its secret, its unused recovery codes and
the step of the last code used; after each step the account's own answer
(``GET /account/two-factor``) and the rows in MySQL must agree with it.
"""

from __future__ import annotations

from typing import Any

import pyotp
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test
from quart import Quart
from quart.testing import QuartClient

from quartapp import create_app
from quartapp.accounts import two_factor
from quartapp.accounts.models import RecoveryCode, User

from . import conftest
from .conftest import PASSWORD, Auth, csrf_from
from .support.redis_machine import RedisMachine
from .support.settings import REDIS_URL
from .test_two_factor import RECOVERY_ELEMENT, SECRET_ELEMENT, T0

JSON = {"Accept": "application/json"}
DATABASE = {"url": ""}


def spelled(code: str, style: int) -> str:
    """A recovery code as someone might type it: in another case, without dashes, spaced."""
    if style == 1:
        return code.lower()
    if style == 2:
        return code.replace("-", "")
    if style == 3:
        return " " + code.replace("-", " ").lower() + " "
    return code


class TwoFactorMachine(RedisMachine):
    def __init__(self) -> None:
        super().__init__(REDIS_URL, "two-factor-machine")
        self.now = T0
        self._real_now = two_factor.now
        two_factor.now = lambda: self.now
        self.app: Quart = create_app(conftest.test_config(DATABASE["url"], self.prefix))
        self.context = self.app.test_app()
        self.run(self.context.__aenter__())
        self.owner = self.app.test_client()
        self.run(Auth(self.owner).sign_up())
        # The model.
        self.enabled = False
        self.secret: str | None = None
        self.unused: set[str] = set()
        self.used: set[str] = set()
        self.last_step: int | None = None

    def teardown(self) -> None:
        try:
            self.run(User.all().delete())
            self.run(self.context.__aexit__(None, None, None))
        finally:
            two_factor.now = self._real_now
            super().teardown()

    # -- helpers -----------------------------------------------------------------------

    def step(self) -> int:
        return two_factor.step_at(self.now)

    def code(self, step: int) -> str:
        assert self.secret is not None
        return pyotp.TOTP(self.secret).at(step * two_factor.STEP_SECONDS)

    def post(self, path: str, data: dict[str, str], client: QuartClient | None = None) -> Any:
        async def go() -> Any:
            return await Auth(client or self.owner).post(path, data)

        return self.run(go())

    def sign_in(self) -> tuple[QuartClient, Any]:
        client = self.app.test_client()
        return client, self.run(Auth(client).sign_in())

    def second_step(self, client: QuartClient, code: str) -> Any:
        async def go() -> Any:
            token = await csrf_from(client, "/")
            return await client.post("/signin/two-factor", form={"code": code, "csrf_token": token})

        return self.run(go())

    def fresh_step(self) -> None:
        """Move the clock on to a step whose code has not been used (the last one used may
        be the step after now: a code one step ahead is accepted)."""
        self.now += two_factor.STEP_SECONDS
        while self.last_step is not None and self.step() <= self.last_step:
            self.now += two_factor.STEP_SECONDS

    def accept_step(self, step: int) -> bool:
        return abs(step - self.step()) <= 1 and (self.last_step is None or step > self.last_step)

    # -- rules ---------------------------------------------------------------------------

    @rule(steps=st.integers(0, 3))
    def clock_moves(self, steps: int) -> None:
        self.now += steps * two_factor.STEP_SECONDS

    @rule()
    def enrol(self) -> None:
        begun = self.post("/account/two-factor", {"password": PASSWORD})
        if self.enabled:
            assert begun.status_code == 409
            return
        assert begun.status_code == 200
        match = SECRET_ELEMENT.search(self.run(begun.get_data(as_text=True)))
        assert match
        self.secret = match.group(1)
        self.last_step = None  # a new secret: no code of it used yet
        confirmed = self.post("/account/two-factor/confirm", {"code": self.code(self.step())})
        assert confirmed.status_code == 200
        codes = RECOVERY_ELEMENT.findall(self.run(confirmed.get_data(as_text=True)))
        assert len(codes) == two_factor.RECOVERY_CODE_COUNT
        self.enabled = True
        self.used |= self.unused
        self.unused = set(codes)
        self.last_step = self.step()

    @rule(offset=st.integers(-2, 2))
    def sign_in_with_a_code(self, offset: int) -> None:
        client, answer = self.sign_in()
        if not self.enabled:
            assert answer.headers["Location"] == "/home"
            return
        assert answer.headers["Location"] == "/signin/two-factor"
        step = self.step() + offset
        done = self.second_step(client, self.code(step))
        if self.accept_step(step):
            assert done.headers.get("Location") == "/home", done.status_code
            self.last_step = step
        else:
            assert done.status_code == 401

    @precondition(lambda self: self.enabled and self.last_step is not None)
    @rule()
    def replay_the_last_code(self) -> None:
        assert self.last_step is not None
        client, _ = self.sign_in()
        assert self.second_step(client, self.code(self.last_step)).status_code == 401

    @precondition(lambda self: self.unused or self.used)
    @rule(data=st.data(), style=st.integers(0, 3))
    def use_a_recovery_code(self, data: st.DataObject, style: int) -> None:
        code = data.draw(st.sampled_from(sorted(self.unused | self.used)))
        client, answer = self.sign_in()
        if not self.enabled:
            assert answer.headers["Location"] == "/home"
            return
        done = self.second_step(client, spelled(code, style))
        if code in self.unused:
            assert done.headers.get("Location") == "/account/two-factor?done=recovery_code"
            self.unused.remove(code)
            self.used.add(code)
        else:
            assert done.status_code == 401

    @rule(with_code=st.booleans())
    def new_recovery_codes(self, with_code: bool) -> None:
        proof = PASSWORD
        if with_code and self.enabled:
            self.fresh_step()
            proof = self.code(self.step())
        made = self.post("/account/two-factor/recovery-codes", {"password": proof})
        if not self.enabled:
            assert made.status_code == 409
            return
        assert made.status_code == 200
        if with_code:
            self.last_step = self.step()
        codes = RECOVERY_ELEMENT.findall(self.run(made.get_data(as_text=True)))
        assert len(set(codes)) == two_factor.RECOVERY_CODE_COUNT
        self.used |= self.unused
        self.unused = set(codes)

    @rule(recovery=st.booleans())
    def turn_off(self, recovery: bool) -> None:
        if not self.enabled:
            off = self.post("/account/two-factor/off", {"password": PASSWORD, "code": "123456"})
            assert off.status_code == 409
            return
        if recovery and self.unused:
            code = sorted(self.unused)[0]
        else:
            self.fresh_step()
            code = self.code(self.step())
        off = self.post("/account/two-factor/off", {"password": PASSWORD, "code": code})
        assert off.headers.get("Location") == "/account/two-factor?done=off", off.status_code
        self.enabled, self.secret, self.last_step = False, None, None
        self.used |= self.unused
        self.unused = set()

    # -- what the account must say --------------------------------------------------------

    @invariant()
    def the_account_agrees_with_the_model(self) -> None:
        async def read() -> tuple[Any, int, User]:
            answer = await (await self.owner.get("/account/two-factor", headers=JSON)).get_json()
            user = await User.get(email="ada@example.com")
            rows = await RecoveryCode.filter(user_id=user.id).count()
            return answer, rows, user

        answer, rows, user = self.run(read())
        assert answer == {
            "two_factor_enabled": self.enabled,
            "recovery_codes_left": len(self.unused) if self.enabled else 0,
        }
        assert rows == len(self.unused)
        assert user.totp_last_step == self.last_step
        assert (user.totp_secret is None) == (not self.enabled)


def test_the_second_factor_against_its_model(database: str) -> None:
    DATABASE["url"] = database
    run_state_machine_as_test(
        TwoFactorMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

"""Fixtures for the real-browser tests: the app served by granian, and headless Chromium.

Each server is a granian subprocess started the way the product is served
(``tests/support/app_servers.py``), against the test database (built by the ``database`` fixture)
and Redis under a key prefix of its own, which is deleted when the browser tests are done.
Chromium is Debian's (``/usr/bin/chromium``); no browser is ever downloaded.

Every browser context is watched for Content Security Policy problems (console reports,
``securitypolicyviolation`` events, a missing or permissive policy header) and for
uncaught page errors; a test that caused any of them fails at teardown.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Response,
    WebError,
    expect,
    sync_playwright,
)
from playwright.sync_api import (
    Error as PlaywrightError,
)

from ..conftest import PASSWORD
from ..support.app_servers import ARTIFACTS as ALL_ARTIFACTS
from ..support.app_servers import ROOT, serve
from ..support.app_servers import AppServer as Server
from ..support.processes import free_port

ARTIFACTS = ALL_ARTIFACTS / "e2e"
DOCS_IMAGES = ROOT / "docs" / "images"
AXE_SOURCE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1000, "height": 700}
# Long enough for a loaded machine, short enough that a real failure shows up quickly.
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


# --- the app, served -----------------------------------------------------------------


@pytest.fixture(scope="package")
def server(database: str) -> Iterator[Server]:
    """The app with its production settings."""
    with serve(database, "default") as running:
        yield running


@pytest.fixture(scope="package")
def short_idle_server(database: str) -> Iterator[Server]:
    """Sessions end after 5 idle seconds, so a test can watch one expire."""
    with serve(database, "short-idle", SESSION_IDLE_TIMEOUT=5) as running:
        yield running


@pytest.fixture(scope="package")
def warning_server(database: str) -> Iterator[Server]:
    """The warning threshold is above the idle timeout: "Stay signed in" shows at once."""
    with serve(database, "warning", SESSION_WARNING_AT=600) as running:
        yield running


@pytest.fixture(scope="package")
def threshold_server(database: str) -> Iterator[Server]:
    """Sessions end after 10 idle seconds and warn from 6: a test sees every phase."""
    with serve(database, "threshold", SESSION_IDLE_TIMEOUT=10, SESSION_WARNING_AT=6) as running:
        yield running


@pytest.fixture(scope="package")
def past_ten_server(database: str) -> Iterator[Server]:
    """Sessions start with a few seconds more than ten minutes: the clock drops below 10:00."""
    with serve(database, "past-ten", SESSION_IDLE_TIMEOUT=604) as running:
        yield running


@pytest.fixture(scope="package")
def passkey_server(database: str) -> Iterator[Server]:
    """The app reached as http://localhost:<port>, its public URL: WebAuthn refuses IP
    addresses as relying party ids (Chromium: "invalid domain"), so passkeys need a name."""
    port = free_port()
    public_url = f"http://localhost:{port}"
    with serve(database, "passkeys", port=port, PUBLIC_URL=public_url) as running:
        running.host = "localhost"
        yield running


# --- accounts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    email: str
    password: str = PASSWORD


def new_email(label: str = "e2e", digits: int = 10) -> str:
    return f"{label}.{uuid.uuid4().hex[:digits]}@example.com"


@pytest.fixture(scope="package")
def created_emails(database: str) -> Iterator[set[str]]:
    """Every account the browser tests make; they are deleted when the tests are done."""
    emails: set[str] = set()
    yield emails
    if not emails:
        return
    parts = urlsplit(database)
    connection = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/"),
        autocommit=True,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM users WHERE email IN %s", (sorted(emails),))
    finally:
        connection.close()


@pytest.fixture
def fresh_email(created_emails: set[str]) -> Callable[..., str]:
    """A new, unique email address, remembered for the clean-up."""

    def make(label: str = "e2e", digits: int = 10) -> str:
        email = new_email(label, digits)
        created_emails.add(email)
        return email

    return make


@pytest.fixture
def make_account(playwright: Playwright, fresh_email: Callable[..., str]) -> Callable[..., Account]:
    """An account made through the JSON API, for tests about what comes after sign-up."""

    def make(server: Server, label: str = "e2e", digits: int = 10) -> Account:
        account = Account(fresh_email(label, digits))
        api = playwright.request.new_context(base_url=server.base_url)
        try:
            token = api.get("/api/v1/csrf").json()["csrf_token"]
            response = api.post(
                "/api/v1/signup",
                data={"email": account.email, "password": account.password},
                headers={"X-CSRF-Token": token},
            )
            assert response.status == 201, response.text()
        finally:
            api.dispose()
        return account

    return make


# --- the browser ---------------------------------------------------------------------


@pytest.fixture(scope="package")
def playwright(database: str) -> Iterator[Playwright]:
    # Playwright's sync API keeps an event loop of its own running in this thread, and
    # while it does, pytest-asyncio cannot run anything: the async ``database`` fixture
    # is built first, and Playwright stops when the browser tests are done (package
    # scope), before any async test elsewhere runs.
    manager = sync_playwright().start()
    yield manager
    manager.stop()


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


# Reports every violation through the console, where the monitor below collects it.
# An init script runs through the DevTools protocol, so the page's own CSP does not block it.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`securitypolicyviolation: ${event.violatedDirective} blocked `
    + `${event.blockedURI || "inline code"} at ${event.sourceFile}:${event.lineNumber}`);
});
"""
PERMISSIVE_SOURCES = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*")


# Chromium logs every 4xx answer to a request, though the app answers a refused form with
# a 4xx on purpose (htmx swaps it in). Those are expected; a missing asset is not.
FAILED_RESOURCE = re.compile(
    r"^Failed to load resource: the server responded with a status of 4\d\d"
)


def expected_answer(text: str, url: str) -> bool:
    return bool(FAILED_RESOURCE.match(text)) and "/static/" not in url


@dataclass
class PageMonitor:
    """What went wrong while pages were shown: CSP reports, bad policies, page errors."""

    base_url: str
    problems: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        where = message.page.url if message.page else message.location.get("url")
        if message.type == "error" and expected_answer(text, message.location.get("url", "")):
            return
        if message.type == "error":
            # Any error at all: htmx reports its problems (a selector that matches nothing,
            # a swap that failed) here, and so does the browser.
            self.problems.append(f"console error on {where}: {text}")
        elif message.type == "warning" and (
            "Content Security Policy" in text or "securitypolicyviolation" in text
        ):
            self.problems.append(f"console warning on {where}: {text}")

    def on_response(self, response: Response) -> None:
        if response.request.resource_type != "document":
            return
        if not response.url.startswith(self.base_url):
            return
        self.documents.append(response.url)
        policy = response.headers.get("content-security-policy")
        if not policy:
            self.problems.append(f"no Content-Security-Policy on {response.url}")
            return
        for directive in filter(str.strip, policy.split(";")):
            name, *sources = directive.split()
            permissive = [s for s in sources if s in PERMISSIVE_SOURCES]
            if permissive:
                self.problems.append(
                    f"Content-Security-Policy of {response.url} allows {permissive} in {name}"
                )

    def on_web_error(self, error: WebError) -> None:
        page = error.page.url if error.page else "?"
        self.problems.append(f"uncaught error on {page}: {error.error}")

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems


class Browse:
    """Opens pages in fresh browser contexts, each watched by a ``PageMonitor``."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[tuple[BrowserContext, PageMonitor]] = []

    def __call__(self, server: Server, *, javascript: bool = True, **options: Any) -> Page:
        """A page in a new context; ``options`` go to Playwright's ``new_context`` (a
        ``timezone_id``, a ``color_scheme``, another ``viewport``)."""
        options.setdefault("viewport", VIEWPORT)
        context = self.browser.new_context(
            base_url=server.base_url, java_script_enabled=javascript, **options
        )
        context.set_default_timeout(TIMEOUT_MS)
        monitor = PageMonitor(server.base_url)
        context.add_init_script(script=REPORT_VIOLATIONS)
        context.on("console", monitor.on_console)
        context.on("response", monitor.on_response)
        context.on("weberror", monitor.on_web_error)
        self.contexts.append((context, monitor))
        return context.new_page()

    def monitor(self, page: Page) -> PageMonitor:
        for context, monitor in self.contexts:
            if page.context is context:
                return monitor
        raise LookupError("this page was not opened by browse()")

    def pages(self) -> Iterator[Page]:
        for context, _ in self.contexts:
            yield from context.pages

    def close(self) -> list[str]:
        problems: list[str] = []
        for context, monitor in self.contexts:
            context.close()
            problems.extend(monitor.take())
        self.contexts.clear()
        return problems


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def browse(browser: Browser, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Browse]:
    """``browse(server)`` opens a page; CSP problems or page errors fail the test.
    When the test failed, every page it left open is saved as a screenshot."""
    opened = Browse(browser)
    yield opened
    if request.node.stash.get(CALL_FAILED, False):
        for number, page in enumerate(opened.pages(), start=1):
            with suppress(PlaywrightError):  # a crashed page has nothing to show
                capture(page, artifacts / f"failure-{number}.png", full_page=True)
    problems = opened.close()
    if problems:
        pytest.fail("pages reported problems:\n" + "\n".join(problems), pytrace=False)


# --- screenshots ---------------------------------------------------------------------


def capture(page: Page, path: Path, *, full_page: bool = False) -> None:
    # caret="initial": hiding the caret leaves an empty style attribute on the focused
    # input, which htmx copies onto the swapped-in input with setAttribute, and the CSP
    # (rightly) blocks and reports that: a false alarm made by the screenshot.
    page.screenshot(path=path, full_page=full_page, caret="initial")


def update_docs() -> bool:
    return os.environ.get("QUARTAPP_UPDATE_DOCS_SCREENSHOTS") == "1"


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's folder under test-artifacts/e2e/, emptied of an earlier run's images."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


@pytest.fixture
def screenshot(artifacts: Path) -> Callable[..., Path]:
    """``screenshot(page, "name")`` saves into test-artifacts/e2e/<test>/; with
    ``docs="x.png"`` and QUARTAPP_UPDATE_DOCS_SCREENSHOTS=1 also into docs/images/ (the
    viewport, or the whole page with ``docs_full_page=True``)."""
    taken = 0

    def take(
        page: Page, name: str, *, docs: str | None = None, docs_full_page: bool = False
    ) -> Path:
        nonlocal taken
        taken += 1
        path = artifacts / f"{taken:02d}-{name}.png"
        capture(page, path, full_page=True)
        if docs and update_docs():
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            capture(page, DOCS_IMAGES / docs, full_page=docs_full_page)
        return path

    return take

"""The Content Security Policy: strict, and nothing on our pages runs into it.

Every browser test is watched for CSP reports (see ``PageMonitor`` in conftest.py); this
file checks the policy itself, walks the pages with htmx at work, and proves that the
watching would catch a violation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from .conftest import Account, Browse, Server
from .pages import fill_credentials, sign_in

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in filter(str.strip, policy.split(";")):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def policy_of(page: Page, path: str) -> dict[str, list[str]]:
    response = page.goto(path)
    assert response is not None
    assert response.ok, f"{path}: {response.status}"
    header = response.headers.get("content-security-policy")
    assert header, f"{path} has no Content-Security-Policy"
    return directives(header)


def test_pages_send_a_strict_policy_and_never_break_it(
    browse: Browse,
    server: Server,
    make_account: Callable[..., Account],
    screenshot: Screenshot,
) -> None:
    page = browse(server)
    for path in ("/", "/register"):
        policy = policy_of(page, path)
        assert policy["script-src"] == ["'self'"], policy
        assert policy["style-src"] == ["'self'"], policy
        assert policy["default-src"] == ["'none'"], policy
        for name, sources in policy.items():
            assert "'unsafe-inline'" not in sources, f"{path}: {name} allows 'unsafe-inline'"
            assert "'unsafe-eval'" not in sources, f"{path}: {name} allows 'unsafe-eval'"

    # htmx at work: an inline error swap, a sign-in, polling, the confirm page.
    fill_credentials(page, "not-an-email", "x")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".field-error").first).to_be_visible()
    sign_in(page, make_account(server))
    with page.expect_response(lambda r: r.url.endswith("/session/countdown")):
        pass
    policy = policy_of(page, "/logout")
    assert "'unsafe-inline'" not in policy["script-src"]
    screenshot(page, "sign-out-confirm")

    monitor = browse.monitor(page)
    visited = {document.removeprefix(server.base_url) for document in monitor.documents}
    assert {"/", "/register", "/home", "/logout"} <= visited, visited


def test_the_policy_watch_catches_violations(
    browse: Browse, server: Server, screenshot: Screenshot
) -> None:
    """A page under our origin that breaks a strict policy must be reported, or the
    watching over every other test would prove nothing."""
    page = browse(server)

    def offending_page(route: Route) -> None:
        route.fulfill(
            status=200,
            content_type="text/html",
            headers={"Content-Security-Policy": "script-src 'self'; style-src 'self'"},
            body="<!doctype html><title>probe</title>"
            '<p style="color: red">inline style</p><script>document.title = "ran"</script>',
        )

    page.route("**/e2e-policy-probe", offending_page)
    page.goto("/e2e-policy-probe")
    expect(page).to_have_title("probe")  # the inline script was blocked
    screenshot(page, "probe")
    monitor = browse.monitor(page)

    def caught() -> bool:
        reports = [p for p in monitor.problems if "Content Security Policy" in p]
        events = [p for p in monitor.problems if "securitypolicyviolation" in p]
        return (
            any("script-src" in p for p in reports)
            and any("style-src" in p for p in reports)
            and len(events) >= 2
        )

    for _ in range(40):  # console reports may arrive just after the load
        if caught():
            break
        page.wait_for_timeout(50)
    assert caught(), f"the violations were not all reported: {monitor.problems}"
    monitor.take()


def test_the_api_reference_renders_under_the_same_policy(browse: Browse, server: Server) -> None:
    """/api/docs: Swagger UI, vendored, shows every described operation with no CSP report
    and no console error (the watching fails the test otherwise), under exactly the policy
    every other page has, sent once."""
    page = browse(server)
    response = page.goto("/api/docs")
    assert response is not None
    assert response.ok
    policies = [
        header["value"]
        for header in response.headers_array()
        if header["name"].lower() == "content-security-policy"
    ]
    assert policies == [page.request.get("/").headers["content-security-policy"]]
    document = page.request.get("/openapi.json").json()
    operations = page.locator(".opblock")
    expect(operations).to_have_count(sum(len(methods) for methods in document["paths"].values()))
    operations.nth(1).locator(".opblock-summary").click()
    expect(page.get_by_text("Example Value").first).to_be_visible()
    for asset in page.evaluate(
        "[...document.querySelectorAll('[src],[href]')].map(e => e.src || e.href)"
    ):
        assert asset.startswith(server.base_url), f"{asset} is not served by the app"

"""One house style, as a picky user sees it in a real browser: the same navigation on every
signed-in page (the same links in the same order, laid out alike on a phone), error pages
included, in a header as tall as the signed-out one (but for the phone's row of links),
a "Skip to content" link that the first Tab shows and that takes the keyboard to the
page's main element, the account page's forms reached by keyboard alone, no page
scrolling sideways at 390 and 320 px in either scheme, page titles on one line at
1280 px, and a long address wrapping inside its box on a phone."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import Account, Browse, Server
from .pages import assert_fits, contrast, path_of, sign_in

pytestmark = pytest.mark.e2e

# Every page a signed-in user can open without a mailed token (the pages of mailed links
# are represented by the "forgot" page and a dead link's page, which share their frame).
# Not the sign-out confirmation (GET /logout): a question with one button, the one the
# navigation would show again.
SIGNED_IN_PAGES = (
    "/home",
    "/sessions",
    "/account",
    "/account/password",
    "/account/email",
    "/account/delete",
    "/account/passkeys",
    "/password/forgot",
    "/email/verify/not-a-link",
    "/no-such-page",  # a 404
    "/email/verify/resend",  # a 405: the address takes only a POST
)
ERROR_PAGES = {"/no-such-page": 404, "/email/verify/resend": 405, "/email/verify/not-a-link": 410}
SIGNED_OUT_PAGES = ("/", "/register", "/password/forgot", "/email/verify/not-a-link", "/nope")
NAVIGATION = [
    ["a", "Home", "/home"],
    ["a", "Sessions", "/sessions"],
    ["a", "Account", "/account"],
    ["button", "Sign out", None],
]
PHONES = (390, 320)
SCHEMES = ("light", "dark")
DESKTOP = {"width": 1280, "height": 800}

# Each control of the navigation: what it is, what it says, where it leads, and where it
# lies on the screen.
NAV_ITEMS = """() => [...document.querySelectorAll("#account-nav a, #account-nav button")]
  .map((element) => {
    const box = element.getBoundingClientRect();
    return {
      what: [element.localName, element.textContent.trim(), element.getAttribute("href")],
      current: element.getAttribute("aria-current"),
      box: [box.x, box.y, box.width, box.height].map(Math.round),
    };
  })"""

# Headings taller than one of their lines (a little slack for rounding).
WRAPPED_HEADINGS = """() => [...document.querySelectorAll("main h1, main h2")].filter((h) => {
  const line = parseFloat(getComputedStyle(h).lineHeight);
  return h.getBoundingClientRect().height > line * 1.25;
}).map((h) => h.textContent.trim())"""


# The lines an element's text lies on (read letter by letter), and whether every one of
# them lies within the element's card.
WRAPPING = """(element) => {
  const box = element.closest("article").getBoundingClientRect();
  const lines = [];
  let inside = true;
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const letter = range.getBoundingClientRect();
      if (letter.left < box.left || letter.right > box.right) inside = false;
      const last = lines[lines.length - 1];
      if (!last || letter.top > last.top + letter.height / 2) {
        lines.push({top: letter.top, text: node.data[i]});
      } else {
        last.text += node.data[i];
      }
    }
  }
  return {lines: lines.map((line) => line.text), inside};
}"""


def navigation(page: Page) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = page.evaluate(NAV_ITEMS)
    return items


@pytest.fixture
def signed_in(server: Server, browse: Browse, make_account: Callable[..., Account]) -> Page:
    page = browse(server)
    sign_in(page, make_account(server, "ada", digits=4))
    return page


def test_every_signed_in_page_has_the_same_navigation(signed_in: Page) -> None:
    page = signed_in
    layouts = {}
    for path in SIGNED_IN_PAGES:
        page.set_viewport_size(DESKTOP)
        page.goto(path)
        items = navigation(page)
        assert [item["what"] for item in items] == NAVIGATION, path
        current = {item["what"][1]: item["current"] for item in items if item["current"]}
        expected = {
            "/home": {"Home": "page"},
            "/sessions": {"Sessions": "page"},
            "/account": {"Account": "page"},
            "/account/password": {"Account": "true"},
            "/account/email": {"Account": "true"},
            "/account/delete": {"Account": "true"},
            "/account/passkeys": {"Account": "true"},
        }.get(path, {})
        assert current == expected, path
        page.set_viewport_size({"width": 320, "height": 740})
        assert_fits(page, f"{path} at 320 px")
        layouts[path] = [item["box"] for item in navigation(page)]
    # On a phone too, the navigation lies the same on every page.
    assert len({repr(boxes) for boxes in layouts.values()}) == 1, layouts
    # The name and Sign out on the first line, the links on the second.
    home, sessions, account, sign_out = layouts["/home"]
    assert home[1] == sessions[1] == account[1] > sign_out[1]


def test_the_account_page_leads_to_its_forms_by_keyboard_alone(signed_in: Page) -> None:
    page = signed_in
    forms = {
        "Change your email address": ("/account/email", "Change your email address"),
        "Change your password": ("/account/password", "Change your password"),
        "Delete your account": ("/account/delete", "Delete your account"),
        "Add a passkey": ("/account/passkeys", "Passkeys"),
    }
    for link, (path, heading) in forms.items():
        page.goto("/home")
        tab_to(page, "Account")
        page.keyboard.press("Enter")
        page.wait_for_url("**/account")
        tab_to(page, link)
        page.keyboard.press("Enter")
        page.wait_for_url(f"**{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        assert path_of(page) == path


def tab_to(page: Page, text: str) -> None:
    """Press Tab until the link or button saying ``text`` has the focus."""
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.textContent.trim()")
        if focused == text:
            return
    raise AssertionError(f"Tab never reached {text!r} on {page.url}")


# The skip link as drawn: where it lies, whether it is clipped, and its colours.
SKIP_LINK = """() => {
  const link = document.querySelector("body > a.skip-link");
  const box = link.getBoundingClientRect();
  const style = getComputedStyle(link);
  return {
    first: document.querySelector("a[href], button, input, select, textarea") === link,
    box: [box.left, box.top, box.right, box.bottom],
    viewport: [document.documentElement.clientWidth, innerHeight],
    clipped: style.clipPath !== "none",
    colour: style.color,
    background: style.backgroundColor,
  };
}"""


def rgb(colour: str) -> list[float]:
    return [float(part) for part in colour[colour.index("(") + 1 : -1].split(",")[:3]]


def test_the_first_tab_reaches_the_skip_link_and_enter_the_content(
    server: Server, browse: Browse, signed_in: Page
) -> None:
    visitor = browse(server)
    for page, path in ((visitor, "/"), (signed_in, "/home")):
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            for width in (DESKTOP["width"], 390):
                where = f"{path} at {width} px ({scheme})"
                page.set_viewport_size({"width": width, "height": 740})
                page.goto(path)
                link = page.get_by_role("link", name="Skip to content")
                hidden = page.evaluate(SKIP_LINK)
                assert hidden["first"], where
                left, top, right, bottom = hidden["box"]
                assert max(right - left, bottom - top) <= 1, where
                assert hidden["clipped"], where

                page.keyboard.press("Tab")
                expect(link, where).to_be_focused()
                shown = page.evaluate(SKIP_LINK)
                left, top, right, bottom = shown["box"]
                assert not shown["clipped"], where
                assert bottom - top >= 24, where  # a target to hit, a line of text
                assert right - left >= 100, where
                assert min(left, top) >= 0, where  # on the screen, where the page starts
                assert right <= shown["viewport"][0], where
                assert bottom <= shown["viewport"][1], where
                assert contrast(rgb(shown["colour"]), rgb(shown["background"])) >= 4.5, where
                assert_fits(page, where)

                page.keyboard.press("Enter")
                expect(page.locator("main"), where).to_be_focused()
                expect(link, where).not_to_be_focused()
                # The keyboard goes on from the content, past the navigation.
                page.keyboard.press("Tab")
                inside = "() => document.querySelector('main').contains(document.activeElement)"
                assert page.evaluate(inside), where


def test_no_page_scrolls_sideways_on_a_phone(
    server: Server, browse: Browse, signed_in: Page
) -> None:
    visitor = browse(server)
    for page, paths in ((signed_in, SIGNED_IN_PAGES), (visitor, SIGNED_OUT_PAGES)):
        for path in paths:
            page.goto(path)
            for scheme in SCHEMES:
                page.emulate_media(color_scheme=scheme)
                for width in PHONES:
                    page.set_viewport_size({"width": width, "height": 740})
                    assert_fits(page, f"{path} at {width} px ({scheme})")


def test_page_titles_fit_one_line_on_a_desktop(
    server: Server, browse: Browse, signed_in: Page
) -> None:
    visitor = browse(server, viewport=DESKTOP)
    signed_in.set_viewport_size(DESKTOP)
    for page, paths in ((signed_in, SIGNED_IN_PAGES), (visitor, SIGNED_OUT_PAGES)):
        for path in paths:
            page.goto(path)
            expect(page.locator("main h1")).to_have_count(1)
            assert page.evaluate(WRAPPED_HEADINGS) == [], f"headings wrap on {path}"


def test_a_long_address_wraps_inside_its_box_on_a_phone(
    server: Server, browse: Browse, make_account: Callable[..., Account]
) -> None:
    # 60 characters, as a real one can be: long parts, dots, a hyphen.
    account = make_account(server, "ada.lovelace.countess-of-lovelace.analyst", digits=6)
    email = account.email
    assert len(email) == 60, email
    page = browse(server, viewport={"width": 320, "height": 740})
    sign_in(page, account)
    for path in ("/home", "/account", "/account/email", "/account/delete"):
        page.goto(path)
        address = page.locator("main .email").first
        expect(address).to_have_text(email)  # <wbr> adds no characters
        assert_fits(page, f"{path} at 320 px")
        wrapped = address.evaluate(WRAPPING)
        lines = wrapped["lines"]
        assert len(lines) > 1, f"the address does not wrap on {path}"
        assert wrapped["inside"], f"the address runs out of its box on {path}: {lines}"
        # It breaks after the @ or before a dot (or at a hyphen), never inside a word.
        for line, next_line in itertools.pairwise(lines):
            assert line.endswith(("@", "-")) or next_line.startswith("."), (path, lines)


def test_error_pages_show_the_navigation_to_a_signed_in_visitor_only(
    server: Server, browse: Browse, signed_in: Page
) -> None:
    visitor = browse(server)
    for path, status in ERROR_PAGES.items():
        for page, signed in ((signed_in, True), (visitor, False)):
            response = page.goto(path)
            assert response is not None
            assert response.status == status, path
            if signed:
                assert [item["what"] for item in navigation(page)] == NAVIGATION, path
            else:
                expect(page.locator("#account-nav"), path).to_have_count(0)
            if status != 410:  # a dead link's page offers the steps that fit the link
                start = page.get_by_role("link", name="Go to the start page")
                back = page.get_by_role("link", name="Back home")
                expect(back if signed else start, path).to_be_visible()
                expect(start if signed else back, path).to_have_count(0)


# The header's parts, as laid out: the header, its first row (the app's name, and Sign
# out when signed in) and the row of links under it on a phone.
HEADER_PARTS = {
    "header": "body > header",
    "name": "header nav > ul:first-child",
    "links": "#account-nav",
    "sign out": "#account-nav .sign-out button",
}


def header_boxes(page: Page) -> dict[str, dict[str, float]]:
    boxes = {}
    for part, selector in HEADER_PARTS.items():
        element = page.locator(selector)
        if element.count():
            box = element.bounding_box()
            assert box is not None, part
            boxes[part] = box
    return boxes


def test_the_header_is_as_tall_signed_in_as_signed_out(
    server: Server, browse: Browse, signed_in: Page
) -> None:
    """Sign out is a button, bigger than a line of text: it must not make the row taller.
    On a desktop the whole header is one row; on a phone the links add a row of their own,
    and nothing else."""
    visitor = browse(server)
    signed_in.goto("/home")
    visitor.goto("/")
    for scheme in SCHEMES:
        for width in (390, DESKTOP["width"]):
            measured = []
            for page in (signed_in, visitor):
                page.emulate_media(color_scheme=scheme)
                page.set_viewport_size({"width": width, "height": 800})
                measured.append(header_boxes(page))
            inside, outside = measured
            where = f"at {width} px ({scheme})"
            assert inside["name"] == pytest.approx(outside["name"], abs=0.5), where
            row = inside["name"]
            button = inside["sign out"]
            assert button["y"] >= row["y"], where
            assert button["y"] + button["height"] <= row["y"] + row["height"], where
            added = inside["links"]["height"] if width < DESKTOP["width"] else 0
            if added:  # the links' row is under the first one
                assert inside["links"]["y"] >= row["y"] + row["height"] - 0.5, where
            assert inside["header"]["height"] == pytest.approx(
                outside["header"]["height"] + added, abs=0.5
            ), where


def test_every_password_form_names_its_account_for_password_managers(
    signed_in: Page,
) -> None:
    """Chromium looks for a username in every form with a password field (to save or fill
    the password for it) and says so in the console when there is none."""
    page = signed_in
    complaints: list[str] = []
    page.on(
        "console",
        lambda message: (
            complaints.append(f"{page.url}: {message.text}")
            if "username fields" in message.text
            else None
        ),
    )
    email = page.locator("h1 .email").inner_text()
    for path in (
        "/account/password",
        "/account/email",
        "/account/delete",
        "/account/passkeys",
        "/account/two-factor",
    ):
        page.goto(path)
        username = page.locator("form input[autocomplete=username]")
        expect(username, path).to_have_count(1)
        expect(username, path).to_have_value(email)
        expect(username, path).to_be_hidden()
        page.wait_for_timeout(300)  # console messages may arrive just after the load
    assert complaints == []

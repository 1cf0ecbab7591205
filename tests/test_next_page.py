"""Back to where you were going: a signed-out visit to a page behind sign-in signs in and
lands on that page (quartapp/web/next_page.py), and only ever on a page of this site."""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from quart.testing import QuartClient

from quartapp.web.next_page import safe_next

from .conftest import PASSWORD, Auth, csrf_from

HTMX = {"HX-Request": "true"}
ORIGIN = "https://app.test"

# --- the path check --------------------------------------------------------------------------


def browser_target(value: str) -> tuple[str, str]:
    """Where a browser goes for ``Location: value`` on ORIGIN, as the URL standard reads it:
    C0 controls and spaces around it dropped, tabs and newlines anywhere dropped, and a
    backslash read as a slash (http and https are "special" schemes)."""
    cleaned = value.strip("".join(map(chr, range(0x21))))
    cleaned = cleaned.replace("\t", "").replace("\n", "").replace("\r", "")
    cleaned = cleaned.replace("\\", "/")
    parts = urlsplit(urljoin(ORIGIN + "/somewhere", cleaned))
    return parts.scheme, parts.netloc


# Pieces attackers put together, and any text at all.
PIECES = [
    "/", "\\", "//", "/\\", ":", "@", ".", "?", "#", "%", "%2F", "%2f", "%5C", "%5c", "%25",
    "%0a", "%00", "\t", "\n", "\r", " ", "\x00", "\x7f", "javascript:", "data:", "http:",
    "https:", "evil.test", "sessions", "home", "\u3002", "\uff0f",
]  # fmt: skip
crafted = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


@given(st.text() | crafted)
@example("//evil.test")
@example("/\\evil.test")
@example("/%5Cevil.test")
@example("/%2F/evil.test")
@example("https://evil.test/sessions")
@example("javascript:alert(1)")
@example("/\t/evil.test")
@example("\n//evil.test")
def test_a_next_page_is_never_another_site(value: str) -> None:
    kept = safe_next(value)
    if kept is None:
        return
    assert kept == value
    assert kept.startswith("/")
    assert not kept.startswith(("//", "/\\"))
    assert browser_target(kept) == ("https", "app.test")
    # Decoded once more on the way (a proxy that decodes, say), still this site.
    assert browser_target(kept.replace("%5C", "\\").replace("%5c", "\\")) == ("https", "app.test")
    assert not any(ord(c) < 0x20 or c == "\x7f" for c in kept)


segments = st.from_regex(r"[A-Za-z0-9._~-]{1,12}", fullmatch=True).filter(
    lambda part: part not in (".", "..")
)


@given(
    st.lists(segments, max_size=5),
    st.none() | st.from_regex(r"[a-z]{1,8}=[0-9]{1,4}", fullmatch=True),
)
def test_a_plain_path_of_the_site_is_kept(parts: list[str], query: str | None) -> None:
    path = "/" + "/".join(parts) + (f"?{query}" if query else "")
    assert safe_next(path) == path


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sessions",
        "//evil.test",
        "///evil.test",
        "/\\evil.test",
        "/%5Cevil.test",
        "/%5cevil.test",
        "/%2F%2Fevil.test",
        "/%252F/evil.test",
        "https://evil.test/",
        "http:evil.test",
        "javascript:alert(1)",
        "/ses\nsions",
        "/sessions\x00",
        "/%0d%0aSet-Cookie:x=1",
        "/a b",
        "/" + "a" * 2000,
    ],
)
def test_refused_next_pages(value: str) -> None:
    assert safe_next(value) is None


# --- through the routes ----------------------------------------------------------------------


def next_of(location: str) -> str | None:
    values = parse_qs(urlsplit(location).query).get("next")
    return values[0] if values else None


async def sign_in_form(client: QuartClient, location: str, password: str, **headers: str) -> object:
    """Open the sign-in page at ``location`` and post its form as it is, the hidden fields
    included (``next`` among them, if the page has one)."""
    page = await (await client.get(location)).get_data(as_text=True)
    token = await csrf_from(client, location)
    form = {"email": "ada@example.com", "password": password, "csrf_token": token}
    if 'name="next"' in page:
        start = page.index('name="next" value="') + len('name="next" value="')
        form["next"] = page[start : page.index('"', start)].replace("&amp;", "&")
    return await client.post("/", form=form, headers=headers)


async def signed_out_visit(client: QuartClient, auth: Auth, path: str = "/sessions") -> str:
    await auth.sign_up()
    await auth.post("/logout")
    response = await client.get(path)
    assert response.status_code == 303
    return response.headers["Location"]


async def test_a_signed_out_visit_signs_in_and_lands_on_its_page(
    client: QuartClient, auth: Auth
) -> None:
    location = await signed_out_visit(client, auth, "/sessions")
    assert next_of(location) == "/sessions"
    page = await (await client.get(location)).get_data(as_text=True)
    assert '<input type="hidden" name="next" value="/sessions">' in page

    response = await sign_in_form(client, location, PASSWORD)
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["Location"] == "/sessions"  # type: ignore[attr-defined]
    assert (await client.get("/sessions")).status_code == 200


async def test_the_next_page_survives_a_wrong_password(client: QuartClient, auth: Auth) -> None:
    location = await signed_out_visit(client, auth, "/account/password?changed=1")
    assert next_of(location) == "/account/password?changed=1"

    wrong = await sign_in_form(client, location, "not the password")
    assert wrong.status_code == 401  # type: ignore[attr-defined]
    again = await wrong.get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'name="next" value="/account/password?changed=1"' in again

    token = await csrf_from(client, "/")
    right = await client.post(
        "/",
        form={
            "email": "ada@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/account/password?changed=1",
        },
    )
    assert right.status_code == 303
    assert right.headers["Location"] == "/account/password?changed=1"


async def test_htmx_sign_in_goes_to_the_next_page(client: QuartClient, auth: Auth) -> None:
    await signed_out_visit(client, auth)
    # An htmx request of a page behind sign-in is sent to sign in the htmx way.
    polled = await client.get("/sessions", headers=HTMX)
    assert polled.status_code == 204
    assert next_of(polled.headers["HX-Redirect"]) == "/sessions"

    token = await csrf_from(client, "/?next=/sessions")
    wrong = await client.post(
        "/api/v1/signin",
        form={
            "email": "ada@example.com",
            "password": "nope",
            "csrf_token": token,
            "next": "/sessions",
        },
        headers=HTMX,
    )
    assert wrong.status_code == 401
    assert 'name="next" value="/sessions"' in await wrong.get_data(as_text=True)
    right = await client.post(
        "/api/v1/signin",
        form={
            "email": "ada@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/sessions",
        },
        headers=HTMX,
    )
    assert right.status_code == 204
    assert right.headers["HX-Redirect"] == "/sessions"


async def test_json_clients_are_unaffected(client: QuartClient, auth: Auth) -> None:
    await signed_out_visit(client, auth)
    refused = await client.get("/sessions", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    assert await refused.get_json() == {"code": "unauthenticated", "message": "Sign in first."}
    token = (await (await client.get("/api/v1/csrf")).get_json())["csrf_token"]
    response = await client.post(
        "/api/v1/signin",
        json={"email": "ada@example.com", "password": PASSWORD, "next": "/sessions"},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["message"] == "signed in"
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "target",
    ["//evil.test/x", "/\\evil.test", "/%5Cevil.test", "https://evil.test", "javascript:alert(1)"],
)
async def test_a_foreign_next_page_lands_on_home(
    client: QuartClient, auth: Auth, target: str
) -> None:
    await auth.sign_up()
    await auth.post("/logout")
    page = await (await client.get("/", query_string={"next": target})).get_data(as_text=True)
    assert 'name="next"' not in page
    token = await csrf_from(client, "/")
    response = await client.post(
        "/",
        form={
            "email": "ada@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": target,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/home"
    # Signed in now: the sign-in page sends on to a safe next page, and home for the rest.
    assert (await client.get("/", query_string={"next": target})).headers["Location"] == "/home"
    sent_on = await client.get("/", query_string={"next": "/sessions"})
    assert sent_on.headers["Location"] == "/sessions"


async def test_home_goes_to_plain_sign_in(client: QuartClient, auth: Auth) -> None:
    location = await signed_out_visit(client, auth, "/home")
    assert location == "/"  # /home is where a sign-in goes anyway

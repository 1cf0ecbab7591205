"""The sessions page stays current: its list polls GET /sessions/list, which answers 204
while the list it shows is still true, and the list as it is now once a session started or
ended elsewhere; polling is no activity."""

from __future__ import annotations

import re

import pytest
from quart import Quart

from .test_account import CHROME, HTMX, Device, device, store_of

VERSION = re.compile(r'"X-Sessions-Shown": "([0-9a-f]{16})"')


@pytest.fixture
async def ada(app: Quart) -> Device:
    """Ada, signed up from Firefox on Linux."""
    return await device(app, sign_up=True)


async def shown_version(ada: Device, path: str = "/sessions", **headers: str) -> tuple[str, str]:
    response = await ada.get(path, **headers)
    assert response.status_code == 200
    html: str = await response.get_data(as_text=True)
    match = VERSION.search(html)
    assert match, html
    return match.group(1), html


async def poll(ada: Device, version: str) -> tuple[int, str]:
    response = await ada.get("/sessions/list", **HTMX, **{"X-Sessions-Shown": version})
    return response.status_code, await response.get_data(as_text=True)


async def test_the_list_polls_and_changes_only_when_the_sessions_do(
    app: Quart, ada: Device
) -> None:
    version, page = await shown_version(ada)
    assert 'hx-get="/sessions/list" hx-trigger="every 10s" hx-swap="outerHTML"' in page
    # Unchanged: nothing to swap.
    assert await poll(ada, version) == (204, "")

    laptop = await device(app, agent=CHROME)  # a new session elsewhere
    status, fragment = await poll(ada, version)
    assert status == 200
    assert fragment.lstrip().startswith('<section id="sessions"')
    assert f'data-session="{laptop.public_id}"' in fragment
    assert "<html" not in fragment
    # A poll is no action: no focus moved to the heading, nothing announced.
    assert "autofocus" not in fragment
    assert 'role="status"' not in fragment
    assert "aria-live" not in fragment
    assert "sessions-status" not in fragment
    new_version = VERSION.search(fragment).group(1)  # type: ignore[union-attr]
    assert new_version != version
    assert await poll(ada, new_version) == (204, "")

    ended = await ada.post(f"/sessions/{laptop.public_id}/revoke")
    assert ended.status_code == 303
    status, fragment = await poll(ada, new_version)
    assert status == 200
    assert f'data-session="{laptop.public_id}"' not in fragment


async def test_every_control_of_the_list_has_an_id_for_htmx_to_keep_the_focus(
    app: Quart, ada: Device
) -> None:
    laptop = await device(app, agent=CHROME)
    _, page = await shown_version(ada)
    section = page[page.index('<section id="sessions"') : page.index("</section>")]
    buttons = re.findall(r"<button\b[^>]*>", section)
    assert len(buttons) == 3  # this one, the laptop, everywhere else
    ids = [re.search(r'\bid="([^"]+)"', button) for button in buttons]
    assert all(ids), buttons
    assert f'id="end-{laptop.public_id}"' in section
    assert len({match.group(1) for match in ids if match}) == 3


async def test_polling_the_list_is_no_activity(app: Quart, ada: Device) -> None:
    store = store_of(app)
    version, _ = await shown_version(ada)  # a page load, which is activity
    before = await store.load(ada.token, touch=False)
    assert before is not None
    for _ in range(3):
        await poll(ada, version)
        await poll(ada, "")
    after = await store.load(ada.token, touch=False)
    assert after is not None
    assert after.expires_at == before.expires_at


async def test_the_list_route_outside_a_poll(app: Quart, ada: Device) -> None:
    plain = await ada.get("/sessions/list")
    assert (plain.status_code, plain.headers["Location"]) == (303, "/sessions")
    await ada.post("/logout", page="/home")
    signed_out = await ada.get("/sessions/list", **HTMX)
    assert signed_out.status_code == 204
    assert signed_out.headers["HX-Redirect"] == "/?next=/sessions/list"

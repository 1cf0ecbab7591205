"""Where a sign-in goes next: the page a signed-out visitor asked for, if it is on this site.

A signed-out visit to a page behind sign-in (a link in a security mail to ``/sessions``, a
bookmark) is sent to sign in with the page in ``?next=``, the sign-in form carries it as a
hidden field, and a successful sign-in goes there instead of ``/home``. The value comes from
the address bar, so anyone can write one: only a plain path of this site is followed, never
another site (``https://evil.example``, ``//evil.example``, ``/\\evil.example``, which
browsers read as ``//evil.example``, or its percent-encoded forms), a ``javascript:`` URL,
or anything with control characters, which browsers drop before they read the address.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from quart import url_for

from quartapp.engine.quart_context import current_request
from quartapp.sessions.extension import request_session

FIELD = "next"
# The page a sign-in goes to when there is no next page.
HOME = "/home"
# Longer addresses are not links anyone follows; refused rather than carried around.
LONGEST = 1024
# A path and an optional query, in the characters RFC 3986 allows unencoded (and "%" for
# what is encoded): no spaces, no backslashes, no control characters, nothing else.
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?")


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path (and query) on this site, else None."""
    if not value or len(value) > LONGEST or not _PATH.fullmatch(value):
        return None
    # "//host" is another site, and so is "/\\host" (browsers read "\\" as "/"); their
    # encoded forms ("/%2F", "/%5C") are refused too, in case something decodes them on
    # the way, and so is anything that decodes to a control character.
    path = value.split("?", 1)[0]
    for form in (path, unquote(path), unquote(unquote(path))):
        if form[:2] in ("//", "/\\") or any(ord(c) < 0x20 or c == "\x7f" for c in form):
            return None
    return value


def here() -> str | None:
    """This request's page as a next page for sign-in: a GET of a path on this site (a POST
    cannot be repeated by a redirect), and not /home, where a sign-in goes anyway."""
    this = current_request()
    if this.method not in ("GET", "HEAD"):
        return None
    path = this.root_path + this.path
    if this.query_string:
        path += "?" + this.query_string.decode("latin-1")
    if path == this.root_path + HOME:
        return None
    return safe_next(path)


def sign_in_url(**flags: Any) -> str:
    """The sign-in page, with this request's page as the next one when it is worth one, and
    why the session ended when another session or an account change ended it."""
    ended = request_session().ended
    if ended is not None:
        flags["ended"] = ended
    target = here()
    if target is not None:
        flags[FIELD] = target
    return url_for("auth.sign_in_page", **flags)

"""quart-auth: the request's user read from ``g`` itself, and no template context processor.

Replaces:

- ``QuartAuth.load_user`` (``SessionAuth``): quart-auth's after-request hook asks for the
  user on every request through Quart's ``g`` proxy; each read through a proxy first fails
  on the proxy itself (an AttributeError made and dropped) before it reaches ``g``. Here
  ``g`` is read as the object (``quart_context.app_globals``). The user is the same either
  way: the session hook always sets it first.
- the template context processor quart-auth registers (``without_template_context``): it
  offers ``current_user`` to templates through a synchronous processor, which Quart runs
  in a worker thread on every render through Quart's ``render_template``. The app renders
  with ``web.templating`` (no context processors), so this only keeps Quart's own renders
  (none on the pages) from that hop; the templates never use ``current_user``.

Private names read: ``QuartAuth._template_context``; ``QuartAuth.attribute_name`` and
``resolve_user`` are public.

Buys: counted per route in docs/benchmarks.md ("What each override buys").

Delete when: it buys under 3 % of a page on the Docker image's Python (3.13).
"""

from __future__ import annotations

from quart import Quart, has_request_context
from quart_auth import AuthUser, QuartAuth

from quartapp.engine.quart_context import app_globals


class SessionAuth(QuartAuth):
    """quart-auth, reading the request's user from ``g`` directly.

    Its after-request hook asks for the user on every request, through Quart's ``g`` proxy:
    each read through the proxy first fails on the proxy itself (an AttributeError made and
    dropped) before it reaches ``g``. The user is the same either way; the session hook
    always sets it first."""

    def load_user(self) -> AuthUser:
        if not has_request_context():
            return super().load_user()
        g = app_globals()
        user: AuthUser | None = g.get(self.attribute_name)
        if user is None:
            user = self.resolve_user()
            setattr(g, self.attribute_name, user)
        return user


def without_template_context(auth: QuartAuth, app: Quart) -> None:
    """Take quart-auth's template context processor (``current_user``) off ``app``."""
    app.template_context_processors[None].remove(auth._template_context)

"""quart-auth: its template context processor taken off the app.

Replaces: the template context processor quart-auth registers (``without_template_context``):
it offers ``current_user`` to templates through a synchronous processor, which Quart runs
in a worker thread on every render through Quart's ``render_template``. The app renders
with ``web.templating`` (no context processors); the templates never use ``current_user``.

Private names read: ``QuartAuth._template_context``.

Buys: counted per route in docs/benchmarks.md ("What each override buys").

Delete when: it buys under 3 % of a page on the Docker image's Python (3.13).
"""

from __future__ import annotations

from quart import Quart
from quart_auth import QuartAuth


def without_template_context(auth: QuartAuth, app: Quart) -> None:
    """Take quart-auth's template context processor (``current_user``) off ``app``."""
    app.template_context_processors[None].remove(auth._template_context)

"""The shape every piece of the app that holds connections or threads takes: built with
``init_app`` (the Flask way), registered in ``app.extensions``, opened when the app starts
serving and closed when it stops."""

from __future__ import annotations

from typing import ClassVar

from quart import Quart


class ServingExtension:
    """Subclasses name themselves (``EXTENSION``) and open and close what they hold."""

    EXTENSION: ClassVar[str]

    def __init__(self, app: Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Read settings here (a subclass extends it); connections wait for ``open``."""
        app.extensions[self.EXTENSION] = self
        app.before_serving(self.open)
        app.after_serving(self.close)

    async def open(self) -> None:
        """Connect, or start threads: the app is about to serve."""

    async def close(self) -> None:
        """Let go of what ``open`` took."""

"""MarkupSafe: autoescaped values written as escaped text, not made a Markup first.

Replaces: what a compiled template calls for an autoescaped ``{{ value }}`` (Jinja's
``escape``, which makes a ``Markup`` of every value: a second Python call, to
``Markup.__new__``). ``escape_output`` gives the escaped text itself; the compiler of
``jinja_pages`` writes the call.

Private names read: ``markupsafe._speedups._escape_inner`` (the C function behind
``escape``); without it, markupsafe's public ``escape``.

Buys (``bench/instructions.py --stock-gc``, 2026-12-07: how many more instructions a
request costs without it, on Python 3.13 with Quart 0.23.1 / on 3.11 with Quart 0.22):
``GET /sessions`` +14.9 % / +13.4 % (rendered in full), ``GET /home`` +3.6 % / +3.3 % and
the countdown poll +3.6 % / +3.5 % (remembered per shape: their per-request values are
written through ``escape_output`` by ``web/remembered_pages``), ``GET /`` +0.8 % / +0.9 %.

Delete when: Jinja writes autoescaped values without making a Markup of each (3.1.6 does
not). If markupsafe drops ``_escape_inner``, the public ``escape`` takes its place here and
this buys less: measure again.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

try:
    from markupsafe._speedups import _escape_inner as _escape_text
except ImportError:  # markupsafe without its C speedups

    def _escape_text(text: str, /) -> str:
        return str(escape(text))


def escape_output(value: Any) -> str:
    """What an autoescaped ``{{ value }}`` writes: markupsafe's ``escape``, as text.

    ``escape`` makes a Markup of every value (a second Python call, to ``Markup.__new__``);
    what a template writes is only ever joined into one string, so the text is enough."""
    if type(value) is str:
        return _escape_text(value)
    if type(value) is Markup:  # already HTML (what ago and timestamp make)
        return value
    if type(value) is int:  # digits and a sign
        return str(value)
    html = getattr(value, "__html__", None)
    if html is not None:
        return str(html())
    return _escape_text(str(value))

"""Where the app reaches into its libraries, and nowhere else.

Every override of a library's behaviour (a subclass that changes what the library does, a
replaced method, or a read of a private name ``_x``) of quart, werkzeug, jinja2,
markupsafe, redis, quart_auth, saq or tortoise lives in this package, one module per
override (or per library). Each module opens with what it replaces, the private names it
reads, what it buys (instructions per request, ``bench/instructions.py``, on Python 3.11
and 3.13) and when it can be deleted. ``tests/test_engine.py`` checks that the names each
module reads still exist with the signatures it expects on the installed versions, and
that no module outside this package reads a private name of these libraries.
"""

"""The overrides in quartapp/engine/ and the rule that keeps them there.

Each module of quartapp/engine/ reads names of a library that the library does not promise
to keep (private ones, or the insides of a class it replaces). ``READS`` lists them, per
module, with the parameters the module relies on; on an upgrade (``script/lock
--upgrade``) that moves or changes one, the test of that name fails first and names the
module whose docstring says what to do. ``OWN_NAMES`` are the names the modules keep on
library objects: a library that starts using one of them would clash with it.

The rest of quartapp reads no private name of these libraries and subclasses none of
their classes except the extension points listed in ``EXTENSION_POINTS``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

import quartapp

LIBRARIES = ("quart", "werkzeug", "jinja2", "markupsafe", "redis", "quart_auth", "saq", "tortoise")
PACKAGE = Path(quartapp.__file__).parent
ENGINE = PACKAGE / "engine"


@dataclass(frozen=True)
class Reads:
    """``module`` (in quartapp/engine/) relies on ``owner``'s ``name``: a function or method
    with these ``parameters`` (their names, in order), or an attribute (``parameters`` None)
    that ``instance`` (a callable making an owner) has."""

    module: str
    owner: str  # "package.module" or "package.module:Class"
    name: str
    parameters: tuple[str, ...] | None = None
    instance: Any = None

    def __str__(self) -> str:
        return f"{self.module}:{self.owner}.{self.name}"


def _headers() -> Any:
    from werkzeug.datastructures import Headers

    return Headers()


def _pool() -> Any:
    from redis.asyncio import BlockingConnectionPool

    return BlockingConnectionPool()


def _connection() -> Any:
    from redis.asyncio import Connection

    return Connection()


def _sentinel() -> Any:
    from redis.asyncio.sentinel import Sentinel

    return Sentinel([])


def _queue() -> Any:
    from redis.asyncio import Redis
    from saq.queue.redis import RedisQueue

    return RedisQueue(Redis())


def _worker() -> Any:
    from saq import Worker

    worker: Any = Worker(_queue(), functions=[])
    return worker


READS = [
    # The request cycle
    Reads("quart_request_cycle", "quart.asgi", "_handle_exception", ("app", "error")),
    Reads("quart_request_cycle", "quart.asgi", "_normalise_path", ("path", "root_path")),
    Reads(
        "quart_request_cycle",
        "quart.asgi:ASGIHTTPConnection",
        "_create_request_from_scope",
        ("self", "send"),
    ),
    Reads(
        "quart_request_cycle",
        "quart.asgi:ASGIHTTPConnection",
        "_send_push_promise",
        ("self", "send", "path", "headers"),
    ),
    Reads(
        "quart_request_cycle",
        "quart.asgi:ASGIHTTPConnection",
        "handle_request",
        ("self", "request", "send"),
    ),
    Reads("quart_request_cycle", "quart.asgi:ASGIHTTPConnection", "__call__"),
    Reads(
        "quart_request_cycle",
        "quart.wrappers:Request",
        "__init__",
        (
            "self",
            "method",
            "scheme",
            "path",
            "query_string",
            "headers",
            "root_path",
            "http_version",
            "scope",
            "max_content_length",
            "body_timeout",
            "send_push_promise",
        ),
    ),
    Reads("quart_request_cycle", "quart:Quart", "ensure_async", ("self", "func")),
    Reads("quart_request_cycle", "quart.wrappers.response:DataBody", "__init__", ("self", "data")),
    Reads("quart_request_cycle", "werkzeug.datastructures:Headers", "_list", instance=_headers),
    # The request's context objects
    Reads("quart_context", "quart.globals", "_cv_app"),
    # Jinja's compiler, context and template
    Reads(
        "jinja_pages",
        "jinja2.compiler:CodeGenerator",
        "_output_child_pre",
        ("self", "node", "frame", "finalize"),
    ),
    Reads(
        "jinja_pages",
        "jinja2.compiler:CodeGenerator",
        "visit_Call",
        ("self", "node", "frame", "forward_caller"),
    ),
    Reads(
        "jinja_pages", "jinja2.compiler:CodeGenerator", "visit_Include", ("self", "node", "frame")
    ),
    Reads("jinja_pages", "jinja2.compiler:CodeGenerator", "visit_Scope", ("self", "node", "frame")),
    Reads(
        "jinja_pages",
        "jinja2.compiler:CodeGenerator",
        "signature",
        ("self", "node", "frame", "extra_kwargs"),
    ),
    Reads("jinja_pages", "jinja2.compiler:CodeGenerator", "pull_dependencies", ("self", "nodes")),
    Reads("jinja_pages", "jinja2.compiler:CodeGenerator", "write", ("self", "x")),
    Reads(
        "jinja_pages",
        "jinja2.runtime:Context",
        "__init__",
        ("self", "environment", "parent", "name", "blocks", "globals"),
    ),
    Reads("jinja_pages", "jinja2:Template", "new_context", ("self", "vars", "shared", "locals")),
    # MarkupSafe's C escape
    Reads("markupsafe_escape", "markupsafe._speedups", "_escape_inner"),
    # Lua scripts on a pooled connection
    Reads(
        "redis_scripts",
        "redis.asyncio:BlockingConnectionPool",
        "_available_connections",
        instance=_pool,
    ),
    Reads(
        "redis_scripts",
        "redis.asyncio:BlockingConnectionPool",
        "_in_use_connections",
        instance=_pool,
    ),
    Reads(
        "redis_scripts", "redis.asyncio:BlockingConnectionPool", "release", ("self", "connection")
    ),
    Reads(
        "redis_scripts",
        "redis.asyncio.connection:AbstractConnection",
        "_writer",
        instance=_connection,
    ),
    Reads(
        "redis_scripts",
        "redis.asyncio.connection:AbstractConnection",
        "next_health_check",
        instance=_connection,
    ),
    Reads(
        "redis_scripts", "redis.asyncio.connection:AbstractConnection", "check_health", ("self",)
    ),
    Reads(
        "redis_scripts",
        "redis.asyncio.connection:AbstractConnection",
        "should_reconnect",
        ("self",),
    ),
    Reads(
        "redis_scripts",
        "redis.asyncio.connection:AbstractConnection",
        "pack_command",
        ("self", "args"),
    ),
    # Sentinel and Cluster
    Reads(
        "redis_topologies",
        "redis.asyncio.sentinel:Sentinel",
        "_force_master_ip",
        instance=_sentinel,
    ),
    Reads(
        "redis_topologies",
        "redis.asyncio.sentinel:Sentinel",
        "discover_master",
        ("self", "service_name"),
    ),
    Reads(
        "redis_topologies",
        "redis.asyncio.sentinel:Sentinel",
        "check_master_state",
        ("self", "state", "service_name"),
    ),
    Reads(
        "redis_topologies",
        "redis.asyncio.cluster:RedisCluster",
        "execute_command",
        ("self", "args", "kwargs"),
    ),
    Reads(
        "redis_topologies",
        "redis.asyncio.cluster:RedisCluster",
        "initialize",
        ("self", "additional_startup_nodes_info", "last_failed_node_name"),
    ),
    # SAQ
    Reads("saq_queue", "saq.queue.redis:RedisQueue", "_pubsub", instance=_queue),
    Reads("saq_queue", "saq.queue.redis:RedisQueue", "namespace", ("self", "key")),
    Reads("saq_queue", "saq.queue.redis:RedisQueue", "job_id", ("self", "job_key")),
    Reads("saq_queue", "saq.queue.redis:RedisQueue", "job_key_from_id", ("self", "job_id")),
    Reads(
        "saq_queue", "saq.queue.redis:PubSubMultiplexer", "__init__", ("self", "pubsub", "prefix")
    ),
    Reads("saq_worker", "saq:Worker", "upkeep", ("self",)),
    Reads("saq_worker", "saq:Worker", "event", instance=_worker),
    # Tortoise
    Reads(
        "tortoise_mysql",
        "tortoise.backends.mysql.client:MySQLClient",
        "execute_insert",
        ("self", "query", "values"),
    ),
    Reads(
        "tortoise_mysql",
        "tortoise.backends.mysql.client:MySQLClient",
        "execute_many",
        ("self", "query", "values"),
    ),
    Reads(
        "tortoise_mysql",
        "tortoise.backends.mysql.client:MySQLClient",
        "execute_query",
        ("self", "query", "values"),
    ),
    Reads(
        "tortoise_mysql",
        "tortoise.backends.mysql.client:MySQLClient",
        "execute_script",
        ("self", "query"),
    ),
]

# Names the engine's modules keep on library objects (module, library class, name).
OWN_NAMES = [
    ("quart_request_cycle", "quart:Quart", "_async_versions"),
    ("jinja_pages", "jinja2.compiler:CodeGenerator", "_inlining"),
    ("jinja_pages", "jinja2:Environment", "escape_output"),
    ("redis_scripts", "redis.asyncio:BlockingConnectionPool", "_getting"),
    ("redis_topologies", "redis.asyncio.cluster:RedisCluster", "_in_flight"),
    ("redis_topologies", "redis.asyncio.cluster:RedisCluster", "_wait"),
]


def _resolve(owner: str) -> Any:
    module_name, _, attribute = owner.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        found = getattr(found, part)
    return found


def _where(module: str) -> str:
    return f"quartapp/engine/{module}.py"


@pytest.mark.parametrize("reads", READS, ids=str)
def test_what_an_override_reads_is_still_there(reads: Reads) -> None:
    where = f"{_where(reads.module)} reads {reads.owner.replace(':', '.')}.{reads.name}"
    try:
        owner = _resolve(reads.owner)
    except (ImportError, AttributeError):
        pytest.fail(f"{where}: gone in this version; see the file's docstring")
    if reads.instance is not None:
        made = reads.instance()
        assert hasattr(made, reads.name), f"{where}: gone in this version; see the file's docstring"
        return
    found = inspect.getattr_static(owner, reads.name, None)
    assert found is not None, f"{where}: gone in this version; see the file's docstring"
    if reads.parameters is None:
        return
    if isinstance(found, staticmethod | classmethod):
        found = found.__func__
    parameters = tuple(inspect.signature(found).parameters)
    assert parameters == reads.parameters, (
        f"{where}: its parameters are now {parameters}, not {reads.parameters}; "
        "see the file's docstring"
    )


@pytest.mark.parametrize(("module", "owner", "name"), OWN_NAMES, ids=lambda value: str(value))
def test_a_name_an_override_keeps_is_not_the_librarys(module: str, owner: str, name: str) -> None:
    source = inspect.getsource(inspect.getmodule(_resolve(owner)))  # type: ignore[arg-type]
    assert re.search(rf"\b{name}\b", source) is None, (
        f"{_where(module)} keeps {name} on {owner.replace(':', '.')}, and the library now "
        "uses that name too; see the file's docstring"
    )


def test_every_engine_module_says_what_it_replaces_buys_and_when_it_goes() -> None:
    for path in sorted(ENGINE.glob("*.py")):
        if path.name == "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        for part in ("Replace", "Private names", "Buys", "Delete when"):
            assert re.search(rf"(^|\n|- ){part}", doc), (
                f"quartapp/engine/{path.name}: its docstring does not say {part!r}"
            )
        assert f'"{path.stem}"' in Path(__file__).read_text(), (
            f"quartapp/engine/{path.name} has no entry in READS or OWN_NAMES here"
        )


# Library classes the rest of the app may subclass: the extension points the libraries
# document for exactly that, each with what it is for.
EXTENSION_POINTS = {
    "quart.sessions.SessionInterface": "Quart's way to plug in a session store",
    "quart.sessions.SessionMixin": "what Quart's session interface returns",
    "werkzeug.datastructures.CallbackDict": "a session dict, as Quart's own session is",
    "werkzeug.routing.BaseConverter": "werkzeug's way to add a kind of URL part (a converter)",
    "quart_auth.AuthUser": "quart-auth's user_class",
    "tortoise.models.Model": "a Tortoise model",
    "tortoise.migrations.Migration": "a Tortoise migration",
}
# Private attribute reads outside quartapp/engine/ that read no library's private name.
ALLOWED_PRIVATE_READS = {
    "_replace": "namedtuple's public method (urllib.parse's SplitResult), named with an underscore",
    "_exit": "os._exit, the standard library's documented exit without clean-up",
}


def _outside_engine() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if ENGINE not in path.parents]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imports(tree: ast.Module) -> dict[str, str]:
    """Names bound by imports in ``tree``, to what they name (``module.attribute``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.partition(".")[0]] = alias.name
    return names


def _dotted(node: ast.expr, imports: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return imports.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, imports)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript):  # CallbackDict[str, Any]
        return _dotted(node.value, imports)
    return None


def _library(dotted: str) -> bool:
    return dotted.partition(".")[0] in LIBRARIES


def _violations(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    relative = path.relative_to(root)
    tree = ast.parse(path.read_text())
    imports = _imports(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module and _library(node.module):
            private = [a.name for a in node.names if _is_private(a.name)]
            if private or any(_is_private(part) for part in node.module.split(".")):
                found.append(f"{where} imports {node.module}: {', '.join(private) or '*'}")
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue  # the class's own (library classes are checked below)
            if node.attr not in ALLOWED_PRIVATE_READS:
                found.append(f"{where} reads {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
        ):
            found.append(f"{where} reads {ast.unparse(node)}")
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                dotted = _dotted(base, imports)
                if dotted is None or not _library(dotted):
                    continue
                if dotted not in EXTENSION_POINTS:
                    found.append(f"{where} class {node.name} subclasses {dotted}")
                    continue
                library_class = _resolve(
                    dotted.rpartition(".")[0] + ":" + dotted.rpartition(".")[2]
                )
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Attribute)
                        and isinstance(inner.value, ast.Name)
                        and inner.value.id == "self"
                        and _is_private(inner.attr)
                        and hasattr(library_class, inner.attr)
                    ):
                        found.append(
                            f"{relative}:{inner.lineno} reads {dotted}'s self.{inner.attr}"
                        )
    return found


def test_no_private_library_name_is_read_outside_the_engine() -> None:
    found = [violation for path in _outside_engine() for violation in _violations(path)]
    assert not found, (
        "Overrides of a library live in quartapp/engine/ (see docs/development.md):\n"
        + "\n".join(found)
    )


def test_the_extension_points_exist_and_are_used() -> None:
    """Every entry of the allow lists is needed and names something real."""
    used: set[str] = set()
    reads: set[str] = set()
    for path in _outside_engine():
        tree = ast.parse(path.read_text())
        imports = _imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    dotted = _dotted(base, imports)
                    if dotted and _library(dotted):
                        used.add(dotted)
            elif isinstance(node, ast.Attribute) and node.attr in ALLOWED_PRIVATE_READS:
                reads.add(node.attr)
    assert used == set(EXTENSION_POINTS), sorted(used ^ set(EXTENSION_POINTS))
    assert reads == set(ALLOWED_PRIVATE_READS), sorted(reads ^ set(ALLOWED_PRIVATE_READS))


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan itself: each kind of reach into a library is reported."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from quart.asgi import _handle_exception\n"
        "from markupsafe._speedups import escape\n"
        "from redis.asyncio import BlockingConnectionPool\n"
        "from quart.sessions import SessionInterface\n"
        "class Pool(BlockingConnectionPool):\n"
        "    pass\n"
        "class Store(SessionInterface):\n"
        "    def get(self):\n"
        "        return self._get_lock, self._mine\n"
        "def f(connection):\n"
        "    return connection._writer, getattr(connection, '_reader')\n"
    )
    found = "\n".join(_violations(sample, tmp_path))
    for expected in (
        "imports quart.asgi: _handle_exception",
        "imports markupsafe._speedups",
        "class Pool subclasses redis.asyncio.BlockingConnectionPool",
        "reads connection._writer",
        "getattr(connection, '_reader')",
    ):
        assert expected in found, (expected, found)
    assert "self._mine" not in found


async def test_the_request_context_is_the_requests(app: Quart) -> None:
    """quart_context reads Quart's context variables: the objects are the request's."""
    from quart import request, session

    from quartapp.engine.quart_context import current_application, current_request, request_context

    async with app.test_request_context("/"):
        context = request_context()
        assert context is not None
        assert current_request() is request._get_current_object()  # type: ignore[attr-defined]
        assert context.session is session._get_current_object()  # type: ignore[attr-defined]
        assert current_application() is app

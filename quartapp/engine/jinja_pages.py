"""Jinja: the pages compiled and rendered with fewer steps (``compile_pages``).

Replaces, on the app's page environment (an overlay of ``app.jinja_env``):

- ``PageCompiler`` (``Environment.code_generator_class``), Jinja's ``CodeGenerator`` with
  three changes: an autoescaped value is written through ``escape_output``
  (``markupsafe_escape``); a call of ``url_for`` or ``csrf_token`` is a plain Python call,
  not ``context.call``; an ``{% include %}`` of a fixed name is compiled into the page in
  a scope of its own (``ReloadingPageCompiler`` keeps includes where templates reload).
- ``PageTemplate`` (``Environment.template_class``): a render's names merged dict by dict
  instead of copying Jinja's ChainMap of globals (a KeyError raised and caught per name).

Private names read (Jinja's compiler has no public API to extend):
``CodeGenerator._output_child_pre``, ``CodeGenerator.visit_Call``, ``visit_Include``,
``visit_Scope``, ``signature``, ``pull_dependencies``, ``write``, ``visit``; ``Frame.eval_ctx``;
``Context.__init__``'s arguments; ``Template.new_context``,
``Template.globals``, ``Template.blocks``. This module keeps ``_inlining`` (on the compiler) of
its own, a name Jinja must not use.

Buys (``bench/instructions.py --stock-gc``, 2026-12-07: how many more instructions a
request costs without it, on Python 3.13 with Quart 0.23.1 / on 3.11 with Quart 0.22):

- includes compiled in place: ``GET /sessions`` +6.3 % / +6.8 %;
- ``url_for`` and ``csrf_token`` as plain calls: ``GET /sessions`` +6.9 % / +9.2 %;
- ``PageTemplate``: ``GET /sessions`` +3.3 % / +2.9 % (the closest to the 3 % line);
- the ``escape_output`` hook: see ``markupsafe_escape``.

``/home``, ``GET /`` and the countdown (its poll too) are remembered per shape
(``web/remembered_pages``): they run their templates once per shape and owe these parts
nothing measurable per request (under 0.5 % each). ``/sessions``, rendered in full on every
request, is what keeps them; measure again when it changes how it renders. A
``TemplateContext`` (Jinja's ``Context`` without the set of its globals' names) bought
0.6 % of ``/home`` and 2.6 % of the poll on 3.13, and was deleted.

Delete when (each part on its own): Jinja compiles an include of a fixed name in place,
calls a function without ``context.call`` when it needs no context, or starts a render's
context without copying a ChainMap of globals (Jinja 3.1.6 does none of these); or a part
buys under 3 % of every page.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context

from quartapp.engine.markupsafe_escape import escape_output

# The app's own template functions: plain Python functions (no pass_context and the like).
DIRECT_CALLS = frozenset({"url_for", "csrf_token"})


# The environment's attribute that compiled templates call ``escape_output`` by.
ESCAPE_OUTPUT = "escape_output"


class PageCompiler(CodeGenerator):
    """Jinja's compiler, with two shortcuts for the pages' most frequent steps:

    - A call of one of ``DIRECT_CALLS`` is a plain Python call. Jinja compiles every call
      as ``context.call(function, ...)``, which first looks for ``pass_context`` and its
      kin on the function; the pages make about a dozen such calls each (their URLs and
      CSRF token), for functions that have none.
    - ``{% include "name" %}`` of a fixed name, with its context, is compiled into the
      including template: the included template's body runs in a scope of its own (as
      ``{% with %}`` makes one), where it sees the same names it would have seen and its
      assignments stay its own. A page with a handful of partials otherwise builds a new
      Jinja context for each one on every render. A template with ``extends`` or blocks,
      an ``ignore missing`` or ``without context`` include, or a name computed at render
      time is included as Jinja includes it. An included template is compiled into each
      page that includes it, so where templates are reloaded when they change
      (``TEMPLATES_AUTO_RELOAD``, or debug mode) includes stay includes
      (``inline_includes``), and an edited partial shows at once.
    """

    inline_includes = True

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        # An autoescaped value is written through ``escape_output``, found on the
        # environment (a local of every compiled function), where the environment has it.
        if (
            frame.eval_ctx.autoescape
            and not frame.eval_ctx.volatile
            and hasattr(self.environment, ESCAPE_OUTPUT)
        ):
            self.write(f"environment.{ESCAPE_OUTPUT}(")
            if finalize.src is not None:
                self.write(finalize.src)
            return
        super()._output_child_pre(node, frame, finalize)

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        callee = node.node
        if forward_caller or not isinstance(callee, nodes.Name) or callee.name not in DIRECT_CALLS:
            super().visit_Call(node, frame, forward_caller=forward_caller)
            return
        self.visit(callee, frame)
        self.write("(*()")  # ``signature`` starts each argument with ", "
        self.signature(node, frame)
        self.write(")")

    def visit_Include(self, node: nodes.Include, frame: Frame) -> None:
        body = self._inlinable(node) if self.inline_includes else None
        if body is None:
            super().visit_Include(node, frame)
            return
        name = node.template.value  # type: ignore[attr-defined]
        inlining: set[str] = self.__dict__.setdefault("_inlining", set())
        inlining.add(name)
        try:
            self.pull_dependencies(body)  # its filters and tests, declared where it runs
            self.visit_Scope(nodes.Scope(body, lineno=node.lineno), frame)
        finally:
            inlining.discard(name)

    def _inlinable(self, node: nodes.Include) -> list[nodes.Node] | None:
        """The body of the template ``node`` includes, if it can be compiled in place."""
        template = node.template
        if (
            node.ignore_missing
            or not node.with_context
            or not isinstance(template, nodes.Const)
            or not isinstance(template.value, str)
            or template.value in self.__dict__.get("_inlining", ())
            or self.environment.loader is None
        ):
            return None
        source, filename, _ = self.environment.loader.get_source(self.environment, template.value)
        tree = self.environment.parse(source, template.value, filename)
        if tree.find(nodes.Extends) is not None or tree.find(nodes.Block) is not None:
            return None
        return list(tree.body)


class ReloadingPageCompiler(PageCompiler):
    """PageCompiler for templates that are reloaded when they change: includes stay includes."""

    inline_includes = False


class PageTemplate(Template):
    """Jinja's template, with the names a render sees merged dict by dict.

    Jinja starts each render's context with ``dict(globals, **vars)``, where ``globals`` is a
    ChainMap of the template's own globals over the environment's. Copying a ChainMap looks
    each name up in each map in turn, raising and catching a KeyError for every name the
    first map lacks: about a dozen exceptions on every render. Here the maps are merged
    into one dict, the environment's first, so the same names win."""

    def new_context(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> Context:
        globals = self.globals
        if shared or locals or not isinstance(globals, ChainMap):
            return super().new_context(vars, shared, locals)
        parent: dict[str, Any] = {}
        for mapping in reversed(globals.maps):
            parent.update(mapping)
        if vars:
            parent.update(vars)
        return self.environment.context_class(
            self.environment, parent, self.name, self.blocks, globals=globals
        )


def compile_pages(environment: Environment) -> None:
    """Make ``environment`` compile and render its templates with the classes above."""
    environment.code_generator_class = (
        ReloadingPageCompiler if environment.auto_reload else PageCompiler
    )
    environment.template_class = PageTemplate
    setattr(environment, ESCAPE_OUTPUT, escape_output)

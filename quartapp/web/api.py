"""The described JSON API: each described route declares its request and answers
(``described``), and the OpenAPI 3.1 document is made from those declarations by
quart-schema (``GET /openapi.json``, blueprints/api_docs.py).

A route both browsers and JSON clients use keeps one view. Its browser addresses (the
forms' own pages, such as ``POST /register``) are rules with an endpoint of their own name;
the document holds only the rule named after the view, the JSON address.

Describing a route (blueprints/auth.py's ``sign_up`` is the example):

1. its JSON answer as a pydantic model in ``web/schemas.py`` (and its body's, if any),
   with an example;
2. ``@described(request=..., answers={status: Model}, errors=[...], security=...)`` below
   the access decorator (``public`` or ``signed_in``): the statuses it answers beyond the
   ones every route can (``ALWAYS``, or ``always=SESSIONLESS`` for a route that never reads
   the session; and ``WITH_BODY`` for a body), a status's own model in ``answers`` where it
   is no error (/readyz's 503); ``SIGNED_IN``, ``POST_SIGNED_IN``, ``POST_ANYONE``, or
   ``MAYBE_SIGNED_IN`` for a route that answers anyone; ``path=Model`` when its
   address has parameters (a field of the model per parameter, with its description
   and schema);
3. the body read with ``read_model(Model)``; the view returns ``respond(Outcome(data,
   status, page=..., redirect=...))``, and ``respond(Refused(error, page))`` where a
   refused form is shown again, instead of asking ``wants_json()``;
4. docs/api.md's list of described routes (a test compares it with the document).

What a client does next with an answer is a link (``Link``, OpenAPI's links: the sign-up's
answer leads to a sign-in with its token, the session list to revoking one of them), named
in ``described(links=...)`` by the answer's status; Schemathesis follows them
(tests/test_openapi_contract.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Quart
from quart_schema import (
    APIKeySecurityScheme,
    HttpSecurityScheme,
    Info,
    OpenAPIProvider,
    QuartSchema,
    document_request,
    document_response,
    security_scheme,
)
from werkzeug.routing import Rule

from quartapp.web.error_body import API_MESSAGES, CODES, ErrorBody
from quartapp.web.errors import InvalidFields
from quartapp.web.forms import read_fields, read_json_object

EXTENSION = "QUART_SCHEMA"
DESCRIBED = "api_described"
LINKS = "api_links"
PATH_PARAMETERS = "api_path_parameters"

ModelT = TypeVar("ModelT", bound=BaseModel)
View = TypeVar("View", bound=Callable[..., Any])

# What each error status means on a described route (the answers' descriptions).
ERROR_STATUSES = {
    400: (
        "The body is not a JSON object (`bad_request`), or a passkey to add did not check "
        "out (`passkey_invalid`)."
    ),
    401: "No session: sign in first (`unauthenticated`), or a refused sign-in.",
    403: (
        "The CSRF token is missing, wrong or expired (`csrf_failed`), or the password given "
        "to confirm a change is not the account's (`wrong_password`)."
    ),
    404: (
        "Nothing at this address (`not_found`): a path parameter that cannot be one, or a "
        "session or a passkey that is not one of yours."
    ),
    409: (
        "A conflict with the account's state (`email_taken`, `passkey_taken`, `passkey_limit`, "
        "`passkey_exists`, `last_way_in`, `conflict`)."
    ),
    410: "A mailed link that is unknown, used, expired or killed (`link_dead`).",
    413: "The body is over 16 KiB (`too_large`).",
    415: "The body is neither JSON nor a web form (`unsupported_media_type`).",
    422: "Fields are missing or invalid; `fields` names each one (`validation_failed`).",
    429: "Too many attempts (`throttled`); wait `Retry-After` seconds.",
    431: "The Cookie headers are too large (`cookies_too_large`).",
    503: "Redis, MySQL or password checking is not answering (`unavailable`).",
}
RETRY_AFTER_STATUSES = (429, 503)
# Every route can answer these: oversized cookies are refused first, and every route
# reads the session from Redis.
ALWAYS = (431, 503)
# A route that never reads the session (``session_access("none")``) only the first.
SESSIONLESS = (431,)
# And every route with a body these.
WITH_BODY = (400, 403, 413, 415, 422)

SECURITY_SCHEMES = {
    "session": APIKeySecurityScheme(name="quartapp_session", in_="cookie"),
    "csrfCookie": APIKeySecurityScheme(name="quartapp_csrf", in_="cookie"),
    "csrfHeader": APIKeySecurityScheme(name="X-CSRF-Token", in_="header"),
    "healthToken": HttpSecurityScheme(scheme="bearer"),
}
SCHEME_DESCRIPTIONS = {
    "session": "The session cookie a sign-in sets (`__Host-quartapp_session` over https).",
    "csrfCookie": (
        "Signed out: the cookie GET /api/v1/csrf sets, which its token is bound to "
        "(`__Host-quartapp_csrf` over https)."
    ),
    "csrfHeader": "A token from GET /api/v1/csrf (or a sign-in's answer); every POST needs it.",
    "healthToken": (
        "`QUARTAPP_HEALTH_TOKEN`: GET /readyz tells its holder (and a request made on the "
        "server's own machine) what each service answered."
    ),
}
Security = list[dict[str, list[str]]]
SIGNED_IN: Security = [{"session": []}]
# A POST: the token, and what it is bound to (the session, or signed out the CSRF cookie).
POST_ANYONE: Security = [{"csrfHeader": [], "session": []}, {"csrfHeader": [], "csrfCookie": []}]
POST_SIGNED_IN: Security = [{"csrfHeader": [], "session": []}]
# A route that answers anyone, and says more to a session (or the health token) it is sent.
MAYBE_SIGNED_IN: Security = [{"session": []}, {}]
MAYBE_HEALTH_TOKEN: Security = [{"healthToken": []}, {}]


@dataclass(frozen=True, slots=True)
class Link:
    """An OpenAPI link from an answer to the operation a client calls next with it.

    ``operation`` is the target's operationId: its method and its view's name
    (``post_sign_in``). ``parameters`` are OpenAPI runtime expressions by qualified name
    (``path.public_id``, ``header.X-CSRF-Token``); ``body`` the next request's body, whose
    strings may be runtime expressions too."""

    name: str
    operation: str
    description: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] | None = None

    def schema(self) -> dict[str, Any]:
        link: dict[str, Any] = {"operationId": self.operation, "description": self.description}
        if self.parameters:
            link["parameters"] = dict(self.parameters)
        if self.body is not None:
            link["requestBody"] = dict(self.body)
        return link


class Provider(OpenAPIProvider):
    """quart-schema's document, of the described routes' JSON addresses only, with each
    error answer (an ``ErrorBody``) described and Retry-After where it is sent."""

    def generate_rules(self) -> Iterable[Rule]:
        for rule in super().generate_rules():
            view = self._app.view_functions[rule.endpoint]
            if getattr(view, DESCRIBED, False) and rule.endpoint.endswith(f".{view.__name__}"):
                yield rule

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        # quart-schema describes a path parameter by its converter only (a string); a
        # route's ``path`` model gives each its description, pattern and example. And the
        # links from its answers.
        paths, components = super().build_paths(rule)
        view = self._app.view_functions[rule.endpoint]
        model = getattr(view, PATH_PARAMETERS, None)
        links: Mapping[int, Iterable[Link]] = getattr(view, LINKS, {})
        properties = model.model_json_schema()["properties"] if model is not None else {}
        for operations in paths.values():
            for operation in operations.values():
                if model is not None:
                    operation["parameters"] = [
                        _path_parameter(parameter, properties.get(parameter["name"]))
                        for parameter in operation["parameters"]
                    ]
                for status, its_links in links.items():
                    answer = operation["responses"][status]
                    answer["links"] = {link.name: link.schema() for link in its_links}
        return paths, components

    def build_request_body(self, model: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # A described body is required: without one the answer is a 415 (quart-schema
        # leaves OpenAPI's default, optional).
        body, components = super().build_request_body(model, source)
        return {**body, "required": True}, components

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        for name, scheme in document["components"].get("securitySchemes", {}).items():
            scheme["description"] = SCHEME_DESCRIPTIONS[name]
        for operations in document["paths"].values():
            for operation in operations.values():
                operation["parameters"] = operation.get("parameters") or []
                for status, answer in operation["responses"].items():
                    status = int(status)
                    content = answer["content"]["application/json"]
                    if content["schema"].get("title") != ErrorBody.__name__:
                        continue  # an answer of its own, such as /readyz's 503
                    if status in ERROR_STATUSES:
                        answer["description"] = ERROR_STATUSES[status]
                        # One example per code this status can carry, not the model's.
                        content["examples"] = {
                            code: {"value": {"code": code, "message": API_MESSAGES.get(code, when)}}
                            for code, (code_status, when) in CODES.items()
                            if code_status == status
                        }
                    if status in RETRY_AFTER_STATUSES:
                        answer["headers"] = {
                            "Retry-After": {
                                "description": "Seconds to wait before trying again.",
                                "schema": {"type": "integer", "minimum": 0},
                                "required": True,
                            }
                        }
        return document


def _path_parameter(parameter: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    if parameter["in"] != "path" or schema is None:
        return parameter
    schema = {key: value for key, value in schema.items() if key != "title"}
    description = schema.pop("description", None)
    return {**parameter, "schema": schema} | ({"description": description} if description else {})


def init_app(app: Quart) -> QuartSchema:
    """quart-schema's document for ``app``, with no routes of its own (blueprints/api_docs.py
    serves the document and the reference, as public routes under the app's CSP).

    Only the document's provider is set up, not ``QuartSchema.init_app``: that would also
    wrap the app's ``make_response`` to turn models a view returns into JSON (tens of
    microseconds on every answer, for what ``responder.respond`` does itself), and replace
    the app's JSON provider and its test client."""
    extension = QuartSchema(
        openapi_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info=Info(
            title="quartapp",
            version="1",
            description=(
                "Email and password accounts with server-side sessions. Errors are "
                '`{"code", "message", "fields"?}`; docs/api.md lists every `code`. '
                "JSON clients send `Content-Type: application/json` or "
                "`Accept: application/json`."
            ),
        ),
        security_schemes=dict(SECURITY_SCHEMES),
        conversion_preference="pydantic",
        openapi_provider_class=Provider,
    )
    # The settings the provider reads, as init_app would set them.
    app.config.setdefault("QUART_SCHEMA_CONVERT_CASING", extension.convert_casing)
    app.config.setdefault("QUART_SCHEMA_CONVERSION_PREFERENCE", extension.conversion_preference)
    extension.openapi_provider = Provider(app, extension)
    app.extensions[EXTENSION] = extension
    return extension


def openapi_document(app: Quart) -> dict[str, Any]:
    extension: QuartSchema = app.extensions[EXTENSION]
    return extension.openapi_provider.schema()


def described(
    *,
    answers: Mapping[int, type[BaseModel]],
    request: type[BaseModel] | None = None,
    errors: Iterable[int] = (),
    security: Security | None = None,
    always: Iterable[int] = ALWAYS,
    path: type[BaseModel] | None = None,
    links: Mapping[int, Iterable[Link]] | None = None,
) -> Callable[[View], View]:
    """Declare a route's request body and its answers, by status; the errors every route
    can answer (``always``, and ``WITH_BODY`` when it takes a body) are added, but for a
    status ``answers`` gives a model of its own. ``path`` describes the parameters in its
    address, a field each (documented only: the view reads them as Quart passes them).
    ``links``: what a client can do next with an answer, by its status."""
    error_statuses = set(errors) | set(always) | (set(WITH_BODY) if request else set())
    error_statuses -= set(answers)
    assert set(links or {}) <= set(answers), "links lead from a described answer"

    def decorate(view: View) -> View:
        if request is not None:
            view = document_request(request)(view)
        for status, model in answers.items():
            view = document_response(model, status)(view)
        for status in sorted(error_statuses):
            view = document_response(ErrorBody, status)(view)
        if security is not None:
            view = security_scheme(security)(view)
        if path is not None:
            setattr(view, PATH_PARAMETERS, path)
        if links:
            setattr(view, LINKS, {status: tuple(its) for status, its in links.items()})
        setattr(view, DESCRIBED, True)
        return view

    return decorate


async def read_model(model: type[ModelT]) -> ModelT:
    """The request's body as ``model``, read as a web form or JSON (``read_fields``: absent
    fields are empty, non-strings a 422); a value the model refuses is a 422 naming it."""
    fields = await read_fields(*model.model_fields)
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise InvalidFields(
            {".".join(map(str, problem["loc"])): problem["msg"] for problem in error.errors()}
        ) from None


async def read_json_model(model: type[ModelT]) -> ModelT:
    """The request's body as ``model``, for bodies a web form cannot carry (a WebAuthn
    credential is a nested object): JSON only (anything else a 415), an object (else a
    400), and a value the model refuses is a 422 naming it."""
    data = await read_json_object()
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidFields(
            {".".join(map(str, problem["loc"])): problem["msg"] for problem in error.errors()}
        ) from None

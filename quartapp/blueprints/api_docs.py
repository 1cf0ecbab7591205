"""The API's description: the OpenAPI document, made from the code (quartapp/web/api.py),
and a readable reference of it (Swagger UI, vendored under static/vendor/swagger-ui)."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from quartapp.engine.quart_context import current_application
from quartapp.web.access import public
from quartapp.web.api import openapi_document
from quartapp.web.templating import render_template

bp = Blueprint("api_docs", __name__)


@bp.get("/openapi.json")
@public
async def openapi() -> Response:
    """The OpenAPI 3.1 document of every described JSON route."""
    return jsonify(openapi_document(current_application()))


@bp.get("/api/docs")
@public
async def reference() -> Response:
    """The API reference: the document shown by Swagger UI, served from this app."""
    return Response(await render_template("api/docs.html"))

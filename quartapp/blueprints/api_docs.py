"""The API's description: the OpenAPI document, made from the code (quartapp/web/api.py)."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from quartapp.web.access import public
from quartapp.web.api import openapi_document
from quartapp.web.context import current_application

bp = Blueprint("api_docs", __name__)


@bp.get("/openapi.json")
@public
async def openapi() -> Response:
    """The OpenAPI 3.1 document of every described JSON route."""
    return jsonify(openapi_document(current_application()))

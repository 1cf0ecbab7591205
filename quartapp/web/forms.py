"""Reading a submission the same way whether it came as a web form or as JSON."""

from __future__ import annotations

import json

from quart import request

from quartapp.web.errors import AppError, InvalidFields

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_fields(*names: str) -> dict[str, str]:
    """The named fields as strings ("" when absent); other content is refused with a 4xx."""
    if request.mimetype == "application/json":
        data = _json_object(await request.get_data())
        values: dict[str, str] = {}
        for name in names:
            value = data.get(name, "")
            if not isinstance(value, str):
                raise InvalidFields({name: "This must be a string."})
            if not _encodable(value):
                raise InvalidFields({name: "This contains characters that are not valid text."})
            values[name] = value
        return values
    if request.mimetype in FORM_TYPES:
        form = await request.form
        return {name: form.get(name, "") for name in names}
    raise AppError("Send the form as a web form or as JSON.", status=415)


async def read_json_object() -> dict[str, object]:
    """The body as a JSON object; a web form or anything else is refused with a 415."""
    if request.mimetype != "application/json":
        raise AppError("Send the body as JSON.", status=415)
    return _json_object(await request.get_data())


def _json_object(raw: str | bytes) -> dict[str, object]:
    # Parsed here rather than with request.get_json(silent=True), which lets invalid UTF-8
    # and deeply nested arrays escape as 500s.
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise AppError("The body must be a JSON object.", status=400)
    return data


def _encodable(value: str) -> bool:
    """False for strings JSON can carry but UTF-8 cannot, such as lone surrogates."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True

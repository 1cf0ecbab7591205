"""Reading a submission the same way whether it came as a web form or as JSON."""

from __future__ import annotations

from quart import request

from .errors import AppError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_fields(*names: str) -> dict[str, str]:
    """The named fields as strings ("" when absent); other content is refused with a 4xx."""
    if request.mimetype == "application/json":
        data = await request.get_json(silent=True)
        if not isinstance(data, dict):
            raise AppError("The body must be a JSON object.", status=400)
        values: dict[str, str] = {}
        for name in names:
            value = data.get(name, "")
            if not isinstance(value, str):
                raise AppError(
                    "Please correct the fields below.",
                    status=422,
                    fields={name: "This must be a string."},
                )
            values[name] = value
        return values
    if request.mimetype in FORM_TYPES:
        form = await request.form
        return {name: form.get(name, "") for name in names}
    raise AppError("Send the form as a web form or as JSON.", status=415)

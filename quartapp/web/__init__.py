"""The web side: who may call a route, htmx and JSON answers, errors, response headers,
form reading, template filters and the client's address."""

"""Sessions: the Redis store, the extension that makes a record Quart's ``session`` and
quart-auth's user, CSRF tokens bound to a session, and how a device is named."""

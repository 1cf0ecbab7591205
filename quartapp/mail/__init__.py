"""Mail: the SMTP settings, the queue on Redis that requests put mails in, the worker that
sends them, and composing a message from its templates. Requests never talk to SMTP."""

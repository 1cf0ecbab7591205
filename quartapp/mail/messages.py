"""A mail from its templates: ``templates/mail/<name>.txt`` and ``<name>.html`` (the HTML
part has the product's look with inline styles and no remote images)."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from quart import current_app


async def compose(name: str, to: str, subject: str, **context: Any) -> EmailMessage:
    config = current_app.config
    env = current_app.jinja_env
    context = {"public_url": config["PUBLIC_URL"], "subject": subject, **context}
    text = await env.get_template(f"mail/{name}.txt").render_async(**context)
    html = await env.get_template(f"mail/{name}.html").render_async(**context)
    message = EmailMessage()
    message["From"] = str(config["MAIL_FROM"])
    message["To"] = str(Address(addr_spec=to))
    message["Subject"] = subject
    sender_domain = str(config["MAIL_FROM"]).rpartition("@")[2].rstrip(">").strip()
    message["Message-ID"] = make_msgid(domain=sender_domain or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message

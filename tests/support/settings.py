"""Where the tests find their services, and the password their accounts use."""

from __future__ import annotations

import os

# Each run has a database of its own (dropped when it ends), so two runs on one machine
# never empty each other's tables; QUARTAPP_TEST_DATABASE_URL names another.
DATABASE_URL = os.environ.get(
    "QUARTAPP_TEST_DATABASE_URL",
    f"mysql://root:@127.0.0.1:3306/quartapp_test_{os.getpid()}",
)
REDIS_URL = os.environ.get("QUARTAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery"
# Links in mails start here (QUARTAPP_PUBLIC_URL); no request ever goes to it.
PUBLIC_URL = "https://quartapp.test"

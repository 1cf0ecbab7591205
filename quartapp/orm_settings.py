"""Settings for Tortoise's own command line (``tortoise makemigrations``, ``tortoise migrate``).

The app itself never imports this module; it builds its configuration in ``create_app``.
"""

import os

from quartapp.config import DEFAULTS
from quartapp.infra.database import tortoise_config

TORTOISE_ORM = tortoise_config(os.environ.get("QUARTAPP_DATABASE_URL", DEFAULTS["DATABASE_URL"]))

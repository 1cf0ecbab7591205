"""MariaDB databases of our own: connect by URL, migrate with the app's command, drop."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
import warnings
from collections.abc import Mapping

import pymysql

from quartapp.infra.database import database_name

from .processes import ROOT


def connect(url: str, *, select_db: bool = False) -> pymysql.Connection:
    """An autocommit connection to the server ``url`` names (to its database with
    ``select_db``)."""
    parts = urllib.parse.urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or "root"),
        password=urllib.parse.unquote(parts.password or ""),
        database=database_name(url) if select_db else None,
        autocommit=True,
    )


def drop_database(url: str) -> str:
    """Drop the database ``url`` names, if it is there; its name."""
    name = database_name(url)
    connection = connect(url)
    try:
        with connection.cursor() as cursor, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MariaDB notes that the database did not exist
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()
    return name


def migrate(database_url: str, env: Mapping[str, str] | None = None) -> None:
    """``python -m quartapp migrate``, as script/server runs it, into ``database_url``
    (which it creates); ``env`` is the app's environment, this one's by default."""
    command_env = {
        key: value
        for key, value in (env if env is not None else os.environ).items()
        if not key.startswith("QUARTAPP_") or env is not None
    }
    command_env["QUARTAPP_DATABASE_URL"] = database_url
    subprocess.run(
        [sys.executable, "-m", "quartapp", "migrate"],
        cwd=ROOT, env=command_env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip

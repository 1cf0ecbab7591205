"""``python -m quartapp migrate``: create the database if missing and apply migrations."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .config import DEFAULTS
from .database import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quartapp")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create the database if missing, apply migrations")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        url = os.environ.get("QUARTAPP_DATABASE_URL", DEFAULTS["DATABASE_URL"])
        try:
            asyncio.run(migrate(url))
        except Exception as error:
            print(f"quartapp: cannot reach MySQL at {url.split('@')[-1]}: {error}", file=sys.stderr)
            return 1
        print("quartapp: database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``quartapp`` command (also ``python -m quartapp``).

``migrate`` creates the database if missing and applies the migrations; ``serve`` runs
the app under Granian and the mail workers beside it (quartapp/serve.py); ``mail-worker``
sends queued mail (quartapp/worker.py), for mail workers that run apart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from quartapp.config import DEFAULTS
from quartapp.infra.database import migrate
from quartapp.serve import add_arguments, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quartapp")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create the database if missing, apply migrations")
    add_arguments(
        commands.add_parser("serve", help="serve the app with Granian, and run mail workers")
    )
    commands.add_parser("mail-worker", help="send the mail that requests put on the queue")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        url = os.environ.get("QUARTAPP_DATABASE_URL", DEFAULTS["DATABASE_URL"])
        try:
            asyncio.run(migrate(url))
        except Exception as error:
            print(f"quartapp: cannot reach MySQL at {url.split('@')[-1]}: {error}", file=sys.stderr)
            return 1
        print("quartapp: database is up to date")
    elif args.command == "mail-worker":
        from quartapp.worker import main as mail_worker

        return mail_worker()
    elif args.command == "serve":
        return serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

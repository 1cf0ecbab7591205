"""The ``quartapp`` command (also ``python -m quartapp``).

``migrate`` creates the database if missing and applies the migrations; ``serve`` runs
the app under Granian and the mail workers beside it (quartapp/serve.py); ``mail-worker``
sends queued mail (quartapp/worker.py), for mail workers that run apart; ``reseal-secrets``
seals the second factor's secrets again under the current secret key (after a rotation,
docs/deployment.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from quartapp.config import DEFAULTS
from quartapp.infra.database import (
    MIGRATION_LOCK_TIMEOUT,
    MigrationError,
    check_database_url,
    migrate,
)
from quartapp.serve import add_arguments, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quartapp")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create the database if missing, apply migrations")
    add_arguments(
        commands.add_parser("serve", help="serve the app with Granian, and run mail workers")
    )
    commands.add_parser("mail-worker", help="send the mail that requests put on the queue")
    commands.add_parser(
        "reseal-secrets",
        help="seal second-factor secrets again under the current secret key (after a rotation)",
    )
    args = parser.parse_args(argv)
    if args.command == "migrate":
        url = os.environ.get("QUARTAPP_DATABASE_URL", DEFAULTS["DATABASE_URL"])
        try:
            check_database_url(url)
        except ValueError as error:
            print(f"quartapp: QUARTAPP_DATABASE_URL {error}", file=sys.stderr)
            return 1
        wait = os.environ.get("QUARTAPP_MIGRATE_LOCK_TIMEOUT", str(MIGRATION_LOCK_TIMEOUT))
        try:
            lock_timeout = float(wait)
            if not 0 <= lock_timeout < float("inf"):
                raise ValueError
        except ValueError:
            print(
                f"quartapp: QUARTAPP_MIGRATE_LOCK_TIMEOUT must be 0 or more seconds, not {wait!r}",
                file=sys.stderr,
            )
            return 1
        try:
            applied = asyncio.run(migrate(url, lock_timeout=lock_timeout))
        except MigrationError as error:
            # One line: a MySQL message may quote SQL over several.
            print(f"quartapp: {' '.join(str(error).split())}", file=sys.stderr)
            return 1
        if applied:
            print(f"quartapp: applied {', '.join(applied)}")
        else:
            print("quartapp: database is up to date")
    elif args.command == "mail-worker":
        from quartapp.worker import main as mail_worker

        return mail_worker()
    elif args.command == "serve":
        return serve(args)
    elif args.command == "reseal-secrets":
        return reseal_secrets()
    return 0


def reseal_secrets() -> int:
    from quartapp import create_app
    from quartapp.accounts.two_factor import reseal_all
    from quartapp.config import ConfigError

    try:
        app = create_app()
    except ConfigError as error:
        print(f"quartapp: {' '.join(str(error).splitlines())}", file=sys.stderr)
        return 1

    async def run() -> tuple[int, int]:
        async with app.app_context():
            await app.startup()
            try:
                return await reseal_all()
            finally:
                await app.shutdown()

    resealed, unreadable = asyncio.run(run())
    print(f"quartapp: sealed {resealed} second-factor secret(s) again under the current key")
    if unreadable:
        print(
            f"quartapp: {unreadable} secret(s) open with no key in QUARTAPP_SECRET_KEY or "
            "QUARTAPP_SECRET_KEY_FALLBACKS",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

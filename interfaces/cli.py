"""The ``ecocase`` command: ``serve`` runs the HTTP service, ``token`` prints a signed JWT."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn
from granian import Granian
from granian.constants import Interfaces, Loops

from application.settings import load_settings
from domain.actor import Role
from domain.windows import Window
from interfaces.auth import issue_token

APP_FACTORY = "interfaces.app:create_app"
SERVERS = ("uvicorn", "granian")


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.store == "sqlite" and args.workers > 1:
        print(
            "ecocase: the embedded SQLite store runs one worker; use PostgreSQL for more",
            file=sys.stderr,
        )
        return 2
    if args.server == "granian":
        Granian(
            APP_FACTORY,
            factory=True,
            interface=Interfaces.ASGI,
            address=args.host,
            port=args.port,
            workers=args.workers,
            loop=Loops.uvloop,
            log_enabled=False,  # our structlog access line replaces granian's
            respawn_failed_workers=True,
        ).serve()
        return 0
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # our structlog access line replaces uvicorn's
        log_config=None,
        lifespan="on",
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(
        issue_token(
            settings.secret,
            sub=args.sub,
            name=args.name,
            role=Role(args.role),
            unit=Window(args.unit),
            hours=args.hours,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecocase", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=os.environ.get("ECOCASE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("ECOCASE_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1, help="processes (PostgreSQL only)")
    serve.add_argument(
        "--server",
        choices=SERVERS,
        default=os.environ.get("ECOCASE_SERVER", "uvicorn"),
        help="ASGI server (see bench/ for the measured choice)",
    )
    serve.set_defaults(run=_serve)

    token = commands.add_parser("token", help="print a bearer token signed with the secret")
    token.add_argument("--sub", required=True, help="the person's id")
    token.add_argument("--name", required=True)
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument(
        "--unit", required=True, choices=[w.value for w in Window], help="window code"
    )
    token.add_argument("--hours", type=float, default=12.0, help="validity (default 12)")
    token.set_defaults(run=_token)

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ValueError as e:  # settings errors, e.g. ECOCASE_SECRET missing on PostgreSQL
        print(f"ecocase: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

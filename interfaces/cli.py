"""The ``ecocase`` command: ``serve`` runs the HTTP service, ``token`` prints a signed JWT."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dramatiq
import uvicorn
from dramatiq.brokers.redis import RedisBroker
from granian import Granian
from granian.constants import Interfaces, Loops

from application.cases import SHANGHAI
from application.integrity import daily_digest, digest_json, load_digest, verify_digest
from application.notifications import Notifications
from application.rebuild import ProgressBar, format_report, rebuild
from application.settings import Settings, load_settings
from application.sqldb import open_database
from application.store import CaseStore
from domain.actor import Role
from domain.windows import Window
from interfaces.auth import issue_token
from interfaces.logs import configure_logging
from workers.broker import BrokerSettings, build_broker
from workers.dead_letters import list_dead, redrive
from workers.processes import run_relay, run_scheduler, run_worker

APP_FACTORY = "interfaces.app:create_app"
SERVERS = ("uvicorn", "granian")


def serve_granian(factory: str, *, host: str, port: int, workers: int) -> None:
    """Serves the ASGI app of ``factory`` ("module:function") with granian, as the service
    is served (the bench's framework floor too, so that the two compare)."""
    Granian(
        factory,
        factory=True,
        interface=Interfaces.ASGI,
        address=host,
        port=port,
        workers=workers,
        loop=Loops.uvloop,
        log_enabled=False,  # our structlog access line replaces granian's
        respawn_failed_workers=True,
    ).serve()


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.store == "sqlite" and args.workers > 1:
        print(
            "ecocase: the embedded SQLite store runs one worker; use PostgreSQL for more",
            file=sys.stderr,
        )
        return 2
    if args.server == "granian":
        serve_granian(APP_FACTORY, host=args.host, port=args.port, workers=args.workers)
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


def _needs_redis(command: str) -> Settings:
    settings = load_settings()
    if not settings.redis_url:
        msg = (
            f"'ecocase {command}' is a production process and needs ECOCASE_REDIS_URL; "
            "on the embedded default 'ecocase serve' runs the relay and a worker itself"
        )
        raise ValueError(msg)
    return settings


def _worker(_: argparse.Namespace) -> int:
    settings = _needs_redis("worker")
    configure_logging(settings.log_format, settings.log_level)
    run_worker(settings, os.environ)
    return 0


def _relay(_: argparse.Namespace) -> int:
    settings = _needs_redis("relay")
    configure_logging(settings.log_format, settings.log_level)
    run_relay(settings, os.environ)
    return 0


def _scheduler(_: argparse.Namespace) -> int:
    settings = _needs_redis("scheduler")
    configure_logging(settings.log_format, settings.log_level)
    run_scheduler(settings, os.environ)
    return 0


def _dead_letters(args: argparse.Namespace) -> int:
    settings = _needs_redis("dead-letters")
    broker = build_broker(BrokerSettings(redis_url=settings.redis_url))
    if not isinstance(broker, RedisBroker):  # pragma: no cover - a Redis URL gives Redis
        raise TypeError(broker)
    if args.action == "list":
        for d in list_dead(broker):
            print(
                f"{d.failed_at:%Y-%m-%d %H:%M:%S}Z  {d.queue:<10} {d.message_id}  "
                f"{d.actor}{list(d.args)}  retries={d.retries}  {d.error}"
            )
        return 0
    if not args.all and not args.id:
        print("ecocase: redrive needs --id MESSAGE_ID (repeatable) or --all", file=sys.stderr)
        return 2
    db = open_database(settings.store_env())
    notifications = Notifications(db)

    def reopen(message: dramatiq.Message[Any]) -> None:
        if message.actor_name == "deliver" and message.args:  # dead rows are not resent
            notifications.reopen(str(message.args[0]), datetime.now(tz=UTC))

    try:
        count = redrive(broker, None if args.all else args.id, before=reopen)
    finally:
        db.close()
    print(f"re-driven: {count}")
    return 0


def _digest(args: argparse.Namespace) -> int:
    """Prints (or writes) the chain-head digest of a day, or verifies a lodged one."""
    store = CaseStore(env=load_settings().store_env())
    try:
        if args.verify:
            digest = load_digest(Path(args.verify).read_bytes())
            problems = verify_digest(store, digest)
            for problem in problems:
                print(problem)
            if problems:
                print(f"ecocase: {len(problems)} problem(s) with {args.verify}", file=sys.stderr)
                return 1
            print(f"digest of {digest.day}: all {len(digest.heads)} project chains agree")
            return 0
        day = args.date or datetime.now(tz=SHANGHAI).date()
        data = digest_json(daily_digest(store, day))
        if args.out:
            Path(args.out).write_bytes(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        return 0
    except OSError as e:
        print(f"ecocase: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _rebuild(args: argparse.Namespace) -> int:
    """Replays the store into fresh read models and compares them with the live ones."""
    env = load_settings().store_env()
    store = CaseStore(env=env)
    bar = ProgressBar(sys.stderr)
    try:
        report = rebuild(env, store, progress=bar, keep=args.keep)
    finally:
        bar.close()
        store.close()
    print(format_report(report))
    return 0 if report.equal else 1


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
        default=os.environ.get("ECOCASE_SERVER", "granian"),
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

    for name, run, text in (
        ("worker", _worker, "run the dramatiq worker (events, deliveries, warning scans)"),
        ("relay", _relay, "run the outbox relay from the event store to the queue"),
        ("scheduler", _scheduler, "run the warning-scan scheduler (exactly one runs)"),
    ):
        commands.add_parser(name, help=text).set_defaults(run=run)
    dead = commands.add_parser("dead-letters", help="list or re-drive dead messages")
    dead.add_argument("action", choices=["list", "redrive"])
    dead.add_argument("--id", action="append", help="a message id to re-drive (repeatable)")
    dead.add_argument("--all", action="store_true", help="re-drive every dead message")
    dead.set_defaults(run=_dead_letters)
    digest = commands.add_parser(
        "digest", help="export every project's hash-chain head (to lodge), or verify a lodged one"
    )
    digest.add_argument(
        "--date", type=date.fromisoformat, help="YYYY-MM-DD, heads as of its end (default today)"
    )
    digest.add_argument("--out", help="write the digest JSON to FILE instead of printing it")
    digest.add_argument("--verify", metavar="FILE", help="check a lodged digest (exit 1: problems)")
    digest.set_defaults(run=_digest)
    rebuilt = commands.add_parser(
        "rebuild", help="replay the store into fresh read models, compare with the live ones"
    )
    rebuilt.add_argument("--keep", action="store_true", help="keep the fresh tables afterwards")
    rebuilt.set_defaults(run=_rebuild)

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ValueError as e:  # settings errors, e.g. ECOCASE_SECRET missing on PostgreSQL
        print(f"ecocase: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

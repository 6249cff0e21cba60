"""Settings from the environment (12-factor), turned into the event store's environment."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from application.pg_recorder import RECORDER_TOPIC


@dataclass(frozen=True)
class Settings:
    """What the service needs to know about where it runs."""

    store: str  # "postgres", "sqlite" or "popo"
    data_dir: Path
    postgres_dsn_env: dict[str, str]
    redis_url: str | None
    secret: str
    log_format: str  # "json" or "console"
    log_level: str
    embedded_workers: bool = False  # relay + worker inside `ecocase serve` (no Redis)
    # The read models' followers (project list, supervision) run in `ecocase serve` or, when
    # the workers are separate processes, in `ecocase relay`, so the API spends its CPU on
    # requests only.
    projections_in_api: bool = True

    def store_env(self) -> dict[str, str]:
        """The eventsourcing persistence environment for the case store."""
        if self.store == "postgres":
            return {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
                **self.postgres_dsn_env,
            }
        if self.store == "sqlite":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / "ecocase.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}

    def store_limits(self) -> StoreLimits | None:
        """How long the PostgreSQL store may keep a request waiting (what is unset is the
        library's or PostgreSQL's default); None on the other stores."""
        if self.store != "postgres":
            return None
        env = self.postgres_dsn_env

        def number(key: str, default: int) -> int:
            return _whole_number(key, env.get(key) or str(default), 0)

        return StoreLimits(
            pool_wait=number("POSTGRES_CONNECT_TIMEOUT", LIBRARY_CONNECT_TIMEOUT),
            pool_connections=number("POSTGRES_POOL_SIZE", LIBRARY_POOL_SIZE)
            + number("POSTGRES_MAX_OVERFLOW", LIBRARY_MAX_OVERFLOW),
            statement_timeout=number("POSTGRES_STATEMENT_TIMEOUT", 0),
            lock_timeout=number("POSTGRES_LOCK_TIMEOUT", 0),
        )


@dataclass(frozen=True)
class StoreLimits:
    """The PostgreSQL store's fail-fast limits, in seconds (a timeout of 0 is none)."""

    pool_wait: int  # for a free pooled connection
    pool_connections: int  # the most the pool opens (pool size + overflow)
    statement_timeout: int
    lock_timeout: int


TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})

POSTGRES_KEYS = (
    "DBNAME",
    "HOST",
    "PORT",
    "USER",
    "PASSWORD",
    "SCHEMA",
    "POOL_SIZE",
    "MAX_OVERFLOW",
    "CONNECT_TIMEOUT",
    "LOCK_TIMEOUT",
    "ENABLE_DB_FUNCTIONS",
    "STATEMENT_TIMEOUT",
    "IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
)

#: eventsourcing 9.5.6's pool when its variables are not set.
LIBRARY_POOL_SIZE = 5
LIBRARY_MAX_OVERFLOW = 10
LIBRARY_CONNECT_TIMEOUT = 30

#: The service's PostgreSQL limits when the operator sets nothing (whole seconds): an exhausted
#: pool or a slow or locked database answers 503 within seconds instead of holding requests
#: (eventsourcing waits 30 s for a pooled connection, and PostgreSQL never cancels a statement).
POSTGRES_DEFAULTS = {
    # eventsourcing's name; in 9.5.6 it is the wait for a free pooled connection
    "POSTGRES_CONNECT_TIMEOUT": "2",
    # ours: PostgreSQL's statement_timeout on the store's connections (postgres_options)
    "POSTGRES_STATEMENT_TIMEOUT": "5",
    # PostgreSQL's lock_timeout on the store's connections (postgres_options), and
    # eventsourcing's ``SET LOCAL lock_timeout`` of its own table-locking inserts
    "POSTGRES_LOCK_TIMEOUT": "3",
}

#: The whole-second PostgreSQL settings and the least value each may take.
POSTGRES_WHOLE_NUMBERS = {
    "POSTGRES_POOL_SIZE": 1,
    "POSTGRES_MAX_OVERFLOW": 0,
    "POSTGRES_CONNECT_TIMEOUT": 1,  # 0 would refuse every connection, even a free one
    "POSTGRES_STATEMENT_TIMEOUT": 0,  # 0: no timeout
    "POSTGRES_LOCK_TIMEOUT": 0,  # 0: no timeout
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": 0,  # 0: no timeout
}


def postgres_options(env: Mapping[str, str]) -> str:
    """The libpq ``options`` that give the store's connections their statement and lock
    timeouts, e.g. ``-c statement_timeout=5000 -c lock_timeout=3000`` (milliseconds): sent
    when a connection is made, so they cost no round trip. Only the timeouts ``env`` (a store
    environment, ``Settings.store_env()``) sets; empty when it sets neither."""
    options = []
    for key, setting in (
        ("POSTGRES_STATEMENT_TIMEOUT", "statement_timeout"),
        ("POSTGRES_LOCK_TIMEOUT", "lock_timeout"),
    ):
        value = (env.get(key) or "").strip()
        if value:
            options.append(f"-c {setting}={_whole_number(key, value, 0) * 1000}")
    return " ".join(options)


def _whole_number(key: str, value: str, least: int) -> int:
    """``value`` of ``key`` as an int of at least ``least``, or a ValueError naming ``key``."""
    try:
        number = int(value.strip())
    except ValueError:
        number = least - 1
    if number < least:
        what = "a whole number" if key.endswith(("POOL_SIZE", "MAX_OVERFLOW")) else "whole seconds"
        msg = f"{key} must be {what}, at least {least}, not {value!r}"
        raise ValueError(msg)
    return number


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """PostgreSQL when ``ECOCASE_STORE=postgres`` or ``POSTGRES_DBNAME`` is set; otherwise the
    SQLite file in ``ECOCASE_DATA_DIR`` (default ``./var``); ``ECOCASE_STORE=popo`` keeps
    everything in memory."""
    env = dict(os.environ if environ is None else environ)
    data_dir = Path(env.get("ECOCASE_DATA_DIR", "var"))
    store = env.get("ECOCASE_STORE") or ("postgres" if env.get("POSTGRES_DBNAME") else "sqlite")
    if store not in ("postgres", "sqlite", "popo"):
        msg = f"ECOCASE_STORE must be postgres, sqlite or popo, not {store!r}"
        raise ValueError(msg)
    postgres = {
        f"POSTGRES_{k}": env[f"POSTGRES_{k}"] for k in POSTGRES_KEYS if f"POSTGRES_{k}" in env
    }
    if store == "postgres":
        postgres.setdefault("POSTGRES_DBNAME", "ecocase")
        postgres.setdefault("POSTGRES_HOST", "127.0.0.1")
        postgres.setdefault("POSTGRES_PORT", "5432")
        postgres.setdefault("POSTGRES_USER", "postgres")
        postgres.setdefault("POSTGRES_PASSWORD", "")
        for key, least in POSTGRES_WHOLE_NUMBERS.items():
            value = postgres.pop(key, "").strip() or POSTGRES_DEFAULTS.get(key)
            if value is not None:  # an empty value is as good as unset
                postgres[key] = str(_whole_number(key, value, least))
        if postgres.get("POSTGRES_ENABLE_DB_FUNCTIONS", "n").strip().lower() in TRUE:
            # eventsourcing 9.5.6's insert function skips the table lock of its plain insert
            # path, so saves can commit out of notification-id order, and a follower of the
            # log (the relay, the read models) can pass an id that commits later: an event
            # would never be relayed. Refused until the followers read up to a fenced head.
            msg = (
                "POSTGRES_ENABLE_DB_FUNCTIONS=y lets events commit out of order, which the "
                "relay and read models would skip; leave it unset"
            )
            raise ValueError(msg)
        postgres["POSTGRES_ENABLE_DB_FUNCTIONS"] = "n"
    embedded = _flag(
        env.get("ECOCASE_EMBEDDED_WORKERS"),
        "ECOCASE_EMBEDDED_WORKERS",
        default=not env.get("ECOCASE_REDIS_URL"),
    )
    return Settings(
        store=store,
        data_dir=data_dir,
        postgres_dsn_env=postgres,
        redis_url=env.get("ECOCASE_REDIS_URL") or None,
        secret=env.get("ECOCASE_SECRET") or _local_secret(data_dir, store),
        log_format=env.get("ECOCASE_LOG_FORMAT", "json"),
        log_level=env.get("ECOCASE_LOG_LEVEL", "INFO"),
        embedded_workers=embedded,
        projections_in_api=_flag(
            env.get("ECOCASE_PROJECTIONS_IN_API"), "ECOCASE_PROJECTIONS_IN_API", default=embedded
        ),
    )


def _flag(value: str | None, name: str, *, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    if value.strip().lower() in ("1", "y", "yes", "true", "on"):
        return True
    if value.strip().lower() in ("0", "n", "no", "false", "off"):
        return False
    msg = f"{name} must be yes or no, not {value!r}"
    raise ValueError(msg)


def _local_secret(data_dir: Path, store: str) -> str:
    """On the embedded default a secret is generated once and kept in the data folder, so that
    ``ecocase token`` and ``ecocase serve`` run from one folder agree."""
    if store == "postgres":
        msg = "ECOCASE_SECRET must be set when the store is PostgreSQL (production)"
        raise ValueError(msg)
    path = data_dir / "secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:  # created readable by its owner only, and by one process only if two start at once
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    secret = path.read_text().strip()
    if len(secret) < 32:
        msg = f"the secret in {path} is shorter than 32 characters; delete it to generate one"
        raise ValueError(msg)
    return secret

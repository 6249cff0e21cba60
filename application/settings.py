"""Settings from the environment (12-factor), turned into the event store's environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


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
                "APPLICATION_RECORDER_TOPIC": "application.pg_recorder:OrderedRecorder",
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
)


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

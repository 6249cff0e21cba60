"""The composition root of the workers: what a worker, the relay and the scheduler need, built
once per process and only when first used (nothing connects at import time)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from application.audit import AuditTrail
from application.cases import Cases, shanghai_now
from application.notification_rules import Channel
from application.notifications import Notifications
from application.project_index import ProjectIndex
from application.settings import Settings
from application.sqldb import Database, open_database
from application.store import CaseStore
from workers.channels import channels_from_env
from workers.tracking import Tracking

WEBHOOK_TARGETS = {"zhezhengding": "ECOCASE_WEBHOOK_ZHEZHENGDING_URL",
                   "zheliban": "ECOCASE_WEBHOOK_ZHELIBAN_URL"}  # fmt: skip


@dataclass
class WorkerContext:
    settings: Settings
    store: CaseStore
    cases: Cases
    db: Database
    index: ProjectIndex
    audit: AuditTrail
    notifications: Notifications
    tracking: Tracking
    channels: Mapping[Channel, Any]
    webhook_targets: Mapping[str, str]
    owned: list[Any] = field(default_factory=list)  # what close() closes

    def close(self) -> None:
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:  # the webhook channel's HTTP client
                close()
        for resource in reversed(self.owned):
            resource.close()


def build_context(
    settings: Settings, env: Mapping[str, str], *, store: CaseStore | None = None,
    db: Database | None = None, index: ProjectIndex | None = None,
    clock: Callable[[], datetime] = shanghai_now,
) -> WorkerContext:  # fmt: skip
    """Everything the actors use. Parts given by the caller (the API process in the embedded
    mode shares its store, database and index) are not closed by the context."""
    owned: list[Any] = []
    if store is None:
        store = CaseStore(env=settings.store_env())
        owned.append(store)
    if db is None:
        db = open_database(settings.store_env())
        owned.append(db)
    if index is None:
        index = ProjectIndex(store, settings.store_env())
        owned.append(index)
    targets = {name: env[var] for name, var in WEBHOOK_TARGETS.items() if env.get(var)}
    return WorkerContext(
        settings=settings, store=store, cases=Cases(store, clock=clock), db=db, index=index,
        audit=AuditTrail(db), notifications=Notifications(db), tracking=Tracking(db),
        channels=channels_from_env(env), webhook_targets=targets, owned=owned,
    )  # fmt: skip


class LazyContext:
    """Builds the context on first use, once, in whichever thread asks first."""

    def __init__(self, build: Callable[[], WorkerContext]) -> None:
        self._build = build
        self._context: WorkerContext | None = None
        self._lock = threading.Lock()

    def __call__(self) -> WorkerContext:
        if self._context is None:
            with self._lock:
                if self._context is None:
                    self._context = self._build()
        return self._context

    def close(self) -> None:
        if self._context is not None:
            self._context.close()

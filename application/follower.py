"""Following the event store's notification log into a tracked read model: each batch of
events and the new position commit together in the model's storage, so an event applies
once; a follower thread keeps the model current, and a reader can wait for it to catch up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from application.store import CaseStore

logger = logging.getLogger("ecocase.projection")

RETRY_PAUSE = 1.0  # seconds the follower waits after a failure before it tries again


class TrackedStorage(Protocol):
    def position(self) -> int: ...
    def apply(self, batch: Sequence[tuple[int, Any]], fold: Callable[..., Any]) -> int: ...


S = TypeVar("S", bound=TrackedStorage)


class LogFollower(Generic[S]):
    """What the project list and the supervision view share: how they follow the store."""

    name = "read model"

    def __init__(self, store: CaseStore, storage: S, fold: Callable[..., Any]) -> None:
        self._store = store
        self._storage = storage
        self._fold = fold
        self._processing = threading.Lock()  # one applier per model; others serialise in storage
        self._applied = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Where the next batch starts: the last event of the last batch this follower applied
        # in full, at or below the recorded position (which only moves forward), so that a
        # poll needs no query of it; None: read the recorded position.
        self._start: int | None = None

    def _process_batch(self, limit: int) -> int:
        """Applies up to ``limit`` notifications after the recorded position, in one transaction.
        A batch read from behind the recorded position (another process applied some of it)
        is skipped there, by the storage, as far as it was applied."""
        with self._processing:
            start = self._storage.position() if self._start is None else self._start
            self._start = None  # until this batch is applied
            notifications = self._store.recorder.select_notifications(
                start=start, limit=limit, inclusive_of_start=False
            )
            if not notifications:
                self._start = start
                return 0
            batch = [(n.id, self._store.mapper.to_domain_event(n)) for n in notifications]
            applied = self._storage.apply(batch, self._fold)
            # Every event of the batch is at or below the recorded position now. When some were
            # applied already, another process is ahead: the next batch starts where it is.
            self._start = batch[-1][0] if applied == len(batch) else None
        with self._applied:
            self._applied.notify_all()
        return applied

    def process_available(self, limit: int = 1000) -> int:
        """Applies everything recorded so far, in batches of ``limit``; returns how many."""
        target = self._store.recorder.max_notification_id() or 0
        total = 0
        while self.position() < target:
            total += self._process_batch(limit)
        return total

    def start(self, poll_interval: float = 0.05) -> None:
        """Follows the store in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._follow, args=(poll_interval,), name=self.name, daemon=True
        )
        self._thread.start()

    def _follow(self, poll_interval: float) -> None:
        while not self._stopping.is_set():
            try:
                applied = self._process_batch(1000)
            except Exception:
                logger.exception(
                    "%s: applying events failed; retrying in %.1fs", self.name, RETRY_PAUSE
                )
                self._stopping.wait(RETRY_PAUSE)
                continue
            if not applied:
                self._stopping.wait(poll_interval)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive():  # pragma: no cover - a database call that hangs
                logger.warning("%s: the follower did not stop within 30s", self.name)
            self._thread = None

    def catch_up(self, timeout: float = 2.0) -> bool:
        """Waits until the model has applied the store's current last notification. With no
        follower running, it applies them itself."""
        deadline = time.monotonic() + timeout
        target = self._store.recorder.max_notification_id() or 0
        while self.position() < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._thread is None:
                self._process_batch(1000)
                continue
            with self._applied:
                self._applied.wait(min(remaining, 0.05))
        return True

    def position(self) -> int:
        """The last applied notification id (0 if none)."""
        return self._storage.position()

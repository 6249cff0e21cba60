"""The outbox relay: follows the event store's notification log and sends each event to the
task queue, then records how far it got. No dual writes: the API only writes events.

At-least-once: the position is written after the send, so after a crash the relay resends the
few events after its last recorded position; the consumers deduplicate by notification id.
PostgreSQL is followed with LISTEN/NOTIFY (the LISTEN in place before each read, so no event
waits for a later one); SQLite and POPO by polling ``select_notifications``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

import psycopg
import structlog
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from application.sqldb import NO_FLUSH, Database
from application.store import CaseStore
from workers.messages import EventNotice

log = structlog.get_logger("ecocase.relay")

Publish = Callable[[Sequence[EventNotice]], None]

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS relay_position (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
]


#: The position's upsert. On PostgreSQL its commit does not wait for the WAL flush: a position
#: lost in a crash of the server only makes the relay send a few events again, which the
#: consumers deduplicate.
_RECORD_POSITION = {
    "postgres": "INSERT INTO relay_position (name, position) "  # noqa: S608 - constants only
    f"SELECT %s, %s FROM {NO_FLUSH} "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position "
    "WHERE relay_position.position < excluded.position",
    "sqlite": "INSERT INTO relay_position (name, position) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position "
    "WHERE relay_position.position < excluded.position",
}


class Relay:
    def __init__(
        self, store: CaseStore, db: Database, publish: Publish, *, name: str = "relay",
        batch_size: int = 500,
    ) -> None:  # fmt: skip
        self.store = store
        self.db = db
        self.publish = publish
        self.name = name
        self.batch_size = batch_size
        db.setup("relay_position", SCHEMA)
        self._sent = self._recorded = self.position()
        self._lock = threading.Lock()  # guards _sent
        self._write_lock = threading.Lock()  # one position write at a time

    @classmethod
    def observer(cls, store: CaseStore, db: Database) -> Relay:
        """Reads the position and lag of a relay that runs in another process."""
        return cls(store, db, _publish_nothing)

    # --- position ------------------------------------------------------------------------
    def position(self) -> int:
        """The last notification id recorded as sent (0 if none)."""
        rows = self.db.query("SELECT position FROM relay_position WHERE name = %s", (self.name,))
        return int(rows[0][0]) if rows else 0

    def _record_position(self) -> None:
        with self._write_lock:
            with self._lock:
                sent = self._sent
            if sent <= self._recorded:
                return
            self.db.run(_RECORD_POSITION[self.db.dialect], (self.name, sent))
            self._recorded = sent

    def head(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def lag(self) -> int:
        """Events stored but not yet recorded as relayed."""
        return max(0, self.head() - self.position())

    # --- relaying ------------------------------------------------------------------------
    def _sent_upto(self, notification_id: int) -> None:
        with self._lock:
            self._sent = max(self._sent, notification_id)

    def relay_available(self, *, record: bool = True) -> int:
        """Sends every event recorded after the position, in batches; returns how many. The
        position is recorded after each batch, or with ``record=False`` (a running relay,
        while events stream in one by one) left to the flusher thread's next tick: at 200
        events/s a write per event was 9% of the relay's CPU and a WAL flush per event."""
        total = 0
        while True:
            batch = self.store.recorder.select_notifications(
                start=self._sent, limit=self.batch_size, inclusive_of_start=False
            )
            if not batch:
                return total
            self.publish([
                EventNotice(n.id, str(n.originator_id), n.originator_version, n.topic)
                for n in batch
            ])  # fmt: skip
            self._sent_upto(batch[-1].id)
            if record or len(batch) == self.batch_size:  # a backlog: record as it drains
                self._record_position()
            total += len(batch)

    def run(self, stop: threading.Event, *, poll_interval: float = 0.05,
            error_pause: float = 1.0) -> None:  # fmt: skip
        """Relays until ``stop`` is set; survives broker and database outages by retrying.
        The position is recorded after every full batch and, while events stream in one by
        one, every 100 ms by a flusher thread."""
        flusher = threading.Thread(target=self._flush_until, args=(stop,), daemon=True,
                                   name="relay-position")  # fmt: skip
        flusher.start()
        listen = isinstance(self.store.recorder, PostgresApplicationRecorder)
        try:
            while not stop.is_set():
                try:
                    self.relay_available()
                    if listen:
                        self._follow_notifications(stop)
                    else:
                        stop.wait(poll_interval)
                except Exception as e:  # noqa: BLE001 - the relay must outlive any outage
                    log.warning("relay paused", error_type=type(e).__name__,
                                error=str(e)[:200], position=self._sent)  # fmt: skip
                    stop.wait(error_pause)
        finally:
            flusher.join(timeout=2)
            self._record_position()

    def _flush_until(self, stop: threading.Event) -> None:
        ticks = 0
        while not stop.wait(0.1):
            ticks += 1
            try:
                self._record_position()
                if ticks % 100 == 0:  # every 10 s: the lag, for the logs
                    log.info("relay position", position=self._recorded, lag=self.lag())
            except Exception as e:  # noqa: BLE001 - retried on the next tick
                log.warning("relay position not recorded", error_type=type(e).__name__)

    def _follow_notifications(self, stop: threading.Event) -> None:
        """PostgreSQL: LISTEN, then send what is recorded, then send again on every NOTIFY.
        Listening before reading means an event recorded meanwhile is either read now or wakes
        the next wait (eventsourcing's subscription reads before its LISTEN is in place, and an
        event recorded in between waited for the next one). Notifications that come while
        sending wait on the connection; the 0.1 s wait only lets ``stop`` be seen."""
        recorder = self.store.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):  # pragma: no cover - run()
            raise TypeError(recorder)
        with recorder.datastore.get_connection() as conn:
            conn.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))
            try:
                self.relay_available()
                while not stop.is_set():
                    if any(True for _ in conn.notifies(timeout=0.1, stop_after=1)):
                        self.relay_available(record=False)
            finally:  # the connection goes back to the store's pool
                with contextlib.suppress(psycopg.Error):
                    conn.execute("UNLISTEN *")


def _publish_nothing(_: Sequence[EventNotice]) -> None:
    msg = "an observer does not relay"
    raise RuntimeError(msg)

"""Keeps one process's project cache coherent with the saves of every other process.

Every save on PostgreSQL sends ``NOTIFY`` on the events table's channel with the projects and
versions it stored (:func:`application.pg_recorder.changed_payload`), in the same transaction:
PostgreSQL delivers it to every listening session once the save has committed. A
:class:`Coherence` thread LISTENs on its own connection and marks the cached projects it names
as behind; a read of one of those fetches the events after the cached version, and a read of
any other is answered from the cache without a query.

The cache is only trusted while the LISTEN is in place: the store asks
:attr:`Coherence.live`. When the thread (re)starts listening it drops the whole cache, since
saves made before its LISTEN were not heard; when the connection fails, ``live`` is false
(every read queries again) until it listens again. A read on another process can therefore be
behind a committed save only for the time the notification takes to arrive (well under a
millisecond on one machine); a write is never decided on a stale cache (a taken version fails
its insert, and the command is retried on fresh state).
"""

from __future__ import annotations

import threading

import psycopg
import structlog
from psycopg.sql import SQL, Identifier

from application.pg_recorder import OrderedRecorder, own_connection, parse_payload
from application.project_cache import ProjectCache

log = structlog.get_logger("ecocase.coherence")


class Coherence:
    def __init__(self, recorder: OrderedRecorder, cache: ProjectCache) -> None:
        self._recorder = recorder
        self._cache = cache
        self._stop = threading.Event()
        self._live = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def live(self) -> bool:
        return self._live.is_set()

    def start(self, timeout: float = 5.0) -> None:
        """Starts listening; returns once the LISTEN is in place (or after ``timeout``)."""
        self._thread = threading.Thread(target=self._run, name="cache coherence", daemon=True)
        self._thread.start()
        self._live.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._live.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as e:
                self._live.clear()
                log.warning("cache coherence lost; reads query the store", error=type(e).__name__)
                self._stop.wait(1.0)

    def _listen(self) -> None:
        with own_connection(self._recorder.datastore) as conn:
            conn.execute(SQL("LISTEN {0}").format(Identifier(self._recorder.channel_name)))
            self._cache.all_behind()  # saves before the LISTEN were not heard
            self._live.set()
            while not self._stop.is_set():
                for notice in conn.notifies(timeout=0.5):
                    self._heard(notice.payload)

    def _heard(self, payload: str) -> None:
        heads = parse_payload(payload)
        if heads is None:
            self._cache.all_behind()
            return
        for project_id, version in heads.items():
            self._cache.saw(project_id, version)

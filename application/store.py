"""The eventsourcing Application that holds every key project's events.

Persistence comes from the environment: PostgreSQL (``PERSISTENCE_MODULE=eventsourcing.postgres``),
a SQLite file, or POPO (in memory) for fast tests; see :mod:`application.settings`.

Every event recorded is stamped with who acted, in which request, and ``prev``: the hash
(:func:`application.mapper.chain_hash`) of the project's previous stored event, so that each
project's events form a hash chain that :mod:`application.integrity` checks. Snapshots are not
part of the chain.

Projects last seen are kept in a bounded :class:`~application.project_cache.ProjectCache`
(``ECOCASE_PROJECT_CACHE`` projects, default 1,000; 0 turns it off) with the hash of their head
record, so that a command on a known project reads nothing before its insert, and a read only
asks for the events after the cached version.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    EventStore,
    InfrastructureFactory,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
)
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment

from application.bounded import Bounded
from application.coherence import Coherence
from application.mapper import META, MsgspecMapper, NoTranscoder, chain_hash
from application.pg_recorder import RECORDER_TOPIC, OnceAggregateRecorder, OrderedRecorder
from application.project_cache import Cached, ProjectCache
from application.settings import postgres_options
from domain.actor import Stamp
from domain.project import KeyProject

SNAPSHOT_INTERVAL = 50
PROJECT_CACHE = "ECOCASE_PROJECT_CACHE"
RECENT_STATES = 256
DEFAULT_PROJECT_CACHE = 1000


def replay(project: KeyProject | None, events: Iterable[Any]) -> KeyProject | None:
    """Each event applied in turn: the library's ``project_aggregate`` less its per-event
    ``isinstance`` check against a runtime Protocol, which was a quarter of a cold read's
    Python time (the events are the store's own, decoded by its mapper)."""
    for event in events:
        project = event.mutate(project)
    return project


class CaseStore(Application[UUID]):
    name = "ecocase"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        KeyProject: SNAPSHOT_INTERVAL
    }

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        size = int(self.env.get(PROJECT_CACHE) or DEFAULT_PROJECT_CACHE)
        self.cache = ProjectCache(size) if size > 0 else None
        self.coherence: Coherence | None = None
        self._recent: Bounded[UUID, KeyProject] = Bounded(RECENT_STATES)  # see project_after

    def keep_coherent(self) -> bool:
        """On PostgreSQL, listen to every process's saves so that reads of cached projects
        need no query (:mod:`application.coherence`); whether it is listening."""
        if self.cache is None or not isinstance(self.recorder, OrderedRecorder):
            return False
        if self.coherence is None:
            self.coherence = Coherence(self.recorder, self.cache)
            self.coherence.start()
        return self.coherence.live

    def close(self) -> None:
        if self.coherence is not None:
            self.coherence.stop()
        super().close()

    def construct_factory(self, env: Environment) -> InfrastructureFactory:
        """On PostgreSQL the recorder is :class:`~application.pg_recorder.OrderedRecorder`
        unless the environment names another one."""
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            env.setdefault("APPLICATION_RECORDER_TOPIC", RECORDER_TOPIC)
        factory = super().construct_factory(env)
        options = postgres_options(env)  # the statement and lock timeouts of the settings
        if options and isinstance(factory, PostgresFactory):  # before its pool opens
            kwargs = factory.datastore.pool.kwargs
            if isinstance(kwargs, dict):
                kwargs["options"] = options
        return factory

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """The snapshots' recorder on PostgreSQL runs each statement once, as the events', and
        creates its table under the schema's lock (the factory's would not)."""
        factory = self.factory
        if not isinstance(factory, PostgresFactory):
            return super().construct_snapshot_store()
        recorder = OnceAggregateRecorder(
            datastore=factory.datastore,
            events_table_name=f"{self.name.lower() or 'stored'}_snapshots",
        )
        if factory.env_create_table():
            recorder.create_table()
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(
            transcoder=NoTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """``Application.save``, collecting a project's events with a class check: the
        library's two runtime-Protocol ``isinstance`` checks per object were 3% of a
        command's Python time. Anything else is collected the library's way."""
        processing_event = ProcessingEvent[UUID]()
        for obj in objs:
            if isinstance(obj, KeyProject):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Stamps every new event with who acted, in which request and the hash of its
        predecessor's stored record, then records exactly the stored events that were hashed.

        This is ``Application._record`` with ``EventStore.put`` inlined, so that the records
        the chain was computed from are the very ones inserted (a cipher's random nonce would
        make a second mapping differ). Two writers racing on one version compute the same
        ``prev``; the unique (id, version) lets one insert win and the other's IntegrityError
        makes it retry on the latest state (``application.cases``), with a fresh ``prev``."""
        stamp = processing_event.saved_kwargs.pop("stamp", None)
        if not isinstance(stamp, Stamp):
            msg = "every save carries a Stamp: save(project, stamp=Stamp(...))"
            raise TypeError(msg)
        domain_events = processing_event.events
        stored_events, heads = self._chained(domain_events, stamp)
        notification_ids = self.recorder.insert_events(
            stored_events, tracking=processing_event.tracking, **processing_event.saved_kwargs
        )
        recordings: list[Recording[UUID]] = []
        if notification_ids:
            for d, s, n_id in zip(domain_events, stored_events, notification_ids, strict=True):
                notification = Notification(
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=n_id,
                )
                recordings.append(Recording(d, notification))
        if self.cache is not None and notification_ids is not None:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                if isinstance(aggregate, KeyProject) and aggregate_id in heads:
                    # a copy: the caller keeps the object it saved
                    self.cache.put(
                        aggregate_id, Cached(copy.deepcopy(aggregate), heads[aggregate_id])
                    )
        return recordings

    def _chained(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], stamp: Stamp
    ) -> tuple[list[StoredEvent], dict[UUID, str]]:
        """The stored events, each stamped with ``prev``: for an aggregate's first pending
        event the hash of its predecessor as stored (none for version 1), for the following
        ones the hash of the stored event just made for the one before; and each aggregate's
        new head hash."""
        last_hash: dict[UUID, str] = {}
        stored_events = []
        for domain_event in domain_events:
            originator_id = domain_event.originator_id
            prev = last_hash.get(originator_id)
            if prev is None:
                prev = self._stored_head(originator_id, domain_event.originator_version)
            object.__setattr__(domain_event, META, dataclasses.replace(stamp, prev=prev))
            stored = self.mapper.to_stored_event(domain_event)
            last_hash[originator_id] = chain_hash(stored)
            stored_events.append(stored)
        return stored_events, last_hash

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """A snapshot is taken of the project just saved when its last event lands on the
        interval: that aggregate is exactly the recorded state (the library would read and
        replay it again). Other cases (an interval inside a multi-event save) go the
        library's way."""
        if not self.snapshots:
            return
        rest = ProcessingEvent[UUID]()
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            if aggregate is None or event.originator_version % SNAPSHOT_INTERVAL:
                continue
            if isinstance(aggregate, KeyProject) and aggregate.version == event.originator_version:
                snapshot = KeyProject.Snapshot.take(aggregate)
                self.snapshots.put([snapshot])
            else:
                rest.events.append(event)
                rest.aggregates[event.originator_id] = aggregate
        if rest.events:
            super()._take_snapshots(rest)

    def _stored_head(self, originator_id: UUID, version: int) -> str:
        """The hash of the stored record before ``version``; "" for a first event. Stored
        records never change, so a hash cached for exactly that version is that record's."""
        if version <= 1:
            return ""
        cached = self.cache.get(originator_id) if self.cache is not None else None
        if cached is not None and cached.head and cached.project.version == version - 1:
            return cached.head
        before = self.recorder.select_events(originator_id, lte=version - 1, desc=True, limit=1)
        return chain_hash(before[0]) if before else ""

    def get_project(
        self, project_id: UUID, version: int | None = None, *, fresh: bool = True
    ) -> KeyProject:
        """The project at ``version``, or now. Now comes from the cache when the project is
        in it: brought up to date with the events stored after it (``fresh``), or as last
        seen (``fresh=False``, for a command's first attempt: its insert fails if the project
        has moved on). The caller gets its own copy."""
        if version is not None or self.cache is None:
            return self._reconstruct(project_id, version)
        cache = self.cache
        generation = cache.generation
        cached = cache.get(project_id)
        if cached is None:
            cached = self._load_head(project_id)
            cache.put(project_id, cached, generation)
        elif fresh and not self._coherent(cache, cached):
            cached = self._fastforward(cache, project_id, cached, generation)
        return copy.deepcopy(cached.project)

    def project_after(self, event: Any) -> KeyProject:
        """The project as ``event`` (one of its stored events, decoded) left it, for a worker
        handling that event: from the state the project's previous event left (workers take
        a project's events about in order: the event is applied to it), from the cache when
        the event is the latest, else replayed from its snapshot. A copy."""
        project_id, version = event.originator_id, event.originator_version
        before = self._recent.pop(project_id)
        project: KeyProject | None = None
        if before is not None and before.version == version - 1:
            project = replay(copy.deepcopy(before), [event])
        elif before is not None and before.version == version:
            project = before
        if project is None and self.cache is not None:
            cached = self.cache.get(project_id)
            if cached is not None and cached.project.version == version:
                project = cached.project
        if project is None:
            project = self._reconstruct(project_id, version)
        self._recent.put(project_id, project)
        return copy.deepcopy(project)

    def cached_project(self, project_id: UUID) -> KeyProject | None:
        """The project now, if that can be told without a query (cached and known to be the
        stored head); a copy. None otherwise."""
        if self.cache is None:
            return None
        cached = self.cache.get(project_id)
        if cached is None or not self._coherent(self.cache, cached):
            return None
        return copy.deepcopy(cached.project)

    def _coherent(self, cache: ProjectCache, cached: Cached) -> bool:
        """Whether ``cached`` is known to be the stored head (while the LISTEN is in place)."""
        coherence = self.coherence
        return coherence is not None and coherence.live and not cache.is_behind(cached)

    def _load_head(self, project_id: UUID) -> Cached:
        """The project now with its head hash; on PostgreSQL its latest snapshot and the
        events after it come in one query."""
        loaded = self._load_one_query(project_id, None)
        if loaded is None:
            return Cached(self._from_repository(project_id, None), head=None)
        return loaded

    def _load_one_query(self, project_id: UUID, version: int | None) -> Cached | None:
        """The project at ``version`` (None: now) with the hash of its last event, from its
        latest snapshot at or before it and the events after it, in one query; None where the
        recorders cannot do that (SQLite, POPO)."""
        snapshots = self.snapshots.recorder if self.snapshots is not None else None
        if not isinstance(self.recorder, OrderedRecorder) or not isinstance(
            snapshots, OnceAggregateRecorder
        ):
            return None
        snapshot, events = self.recorder.head_records(
            snapshots.events_table_name, project_id, lte=version
        )
        if snapshot is None and not events:
            raise AggregateNotFoundError(project_id)
        records = ([snapshot] if snapshot is not None else []) + events
        return Cached(self._replayed(None, records), chain_hash(events[-1]) if events else None)

    def _replayed(self, start: KeyProject | None, records: Iterable[StoredEvent]) -> KeyProject:
        """``start`` (None: from nothing) with the stored ``records`` decoded and applied."""
        project = replay(start, (self.mapper.to_domain_event(r) for r in records))
        if not isinstance(project, KeyProject):  # pragma: no cover - one aggregate type
            raise TypeError(records)
        return project

    def _reconstruct(self, project_id: UUID, version: int | None) -> KeyProject:
        loaded = self._load_one_query(project_id, version)
        if loaded is not None:
            return loaded.project
        return self._from_repository(project_id, version)

    def _from_repository(self, project_id: UUID, version: int | None) -> KeyProject:
        """The library's load (SQLite, POPO): snapshot and events by the repository."""
        project: object = self.repository.get(project_id, version=version, projector_func=replay)
        if not isinstance(project, KeyProject):  # pragma: no cover - one aggregate type
            raise TypeError(project_id)
        return project

    def _fastforward(
        self, cache: ProjectCache, project_id: UUID, cached: Cached, generation: int
    ) -> Cached:
        after = self.recorder.select_events(project_id, gt=cached.project.version)
        if not after:
            return cached
        fresh = Cached(self._replayed(copy.deepcopy(cached.project), after), chain_hash(after[-1]))
        cache.put(project_id, fresh, generation)
        return fresh

    def history(self, project_id: UUID) -> Iterator[Any]:  # events of KeyProject
        """The project's events, first to last, decoded, each with its stamp."""
        return self.events.get(project_id)

    def version_as_of(self, project_id: UUID, moment: datetime) -> int | None:
        """The last version recorded at or before ``moment``; None if the project was not yet
        registered then. Events are ordered by version, never by their timestamps."""
        version = None
        for domain_event in self.history(project_id):
            if domain_event.timestamp > moment:
                break
            version = domain_event.originator_version
        return version

"""The eventsourcing Application that holds every key project's events.

Persistence comes from the environment: PostgreSQL (``PERSISTENCE_MODULE=eventsourcing.postgres``),
a SQLite file, or POPO (in memory) for fast tests; see :mod:`application.settings`.

Every event recorded is stamped with who acted, in which request, and ``prev``: the hash
(:func:`application.mapper.chain_hash`) of the project's previous stored event, so that each
project's events form a hash chain that :mod:`application.integrity` checks. Snapshots are not
part of the chain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import Mapper, Notification, Recording, StoredEvent

from application.mapper import META, MsgspecMapper, NoTranscoder, chain_hash
from domain.actor import Stamp
from domain.project import KeyProject

SNAPSHOT_INTERVAL = 50


class CaseStore(Application[UUID]):
    name = "ecocase"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        KeyProject: SNAPSHOT_INTERVAL
    }

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(
            transcoder=NoTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )

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
        stored_events = self._chained(domain_events, stamp)
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
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        return recordings

    def _chained(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], stamp: Stamp
    ) -> list[StoredEvent]:
        """The stored events, each stamped with ``prev``: for an aggregate's first pending
        event the hash of its predecessor as stored (none for version 1), for the following
        ones the hash of the stored event just made for the one before."""
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
        return stored_events

    def _stored_head(self, originator_id: UUID, version: int) -> str:
        """The hash of the stored record before ``version``; "" for a first event."""
        if version <= 1:
            return ""
        before = self.recorder.select_events(originator_id, lte=version - 1, desc=True, limit=1)
        return chain_hash(before[0]) if before else ""

    def get_project(self, project_id: UUID, version: int | None = None) -> KeyProject:
        project: object = self.repository.get(project_id, version=version)
        if not isinstance(project, KeyProject):  # pragma: no cover - one aggregate type
            raise TypeError(project_id)
        return project

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

"""The eventsourcing Application that holds every key project's events.

Persistence comes from the environment: PostgreSQL (``PERSISTENCE_MODULE=eventsourcing.postgres``),
a SQLite file, or POPO (in memory) for fast tests; see :mod:`application.settings`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import MutableOrImmutableAggregate
from eventsourcing.persistence import Mapper, Recording

from application.mapper import META, MsgspecMapper, NoTranscoder
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
        """Stamps every new event with who acted and in which request, then records it."""
        stamp = processing_event.saved_kwargs.pop("stamp", None)
        if not isinstance(stamp, Stamp):
            msg = "every save carries a Stamp: save(project, stamp=Stamp(...))"
            raise TypeError(msg)
        for domain_event in processing_event.events:
            object.__setattr__(domain_event, META, stamp)
        return super()._record(processing_event)

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

"""Snapshots every 50 events: taken, stored, and loading from one gives the very state that
replaying every event gives."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot

from application.cases import Acting, Cases
from application.store import SNAPSHOT_INTERVAL, CaseStore
from domain.actor import Actor
from domain.project import KeyProject, ProjectStatus
from tests.application.scenario import CASE_EVENTS, work_the_case
from tests.conftest import Clock, RegisterMajor


def replayed(store: CaseStore, project_id: UUID, version: int | None = None) -> KeyProject:
    """The project from its events alone, never from a snapshot."""
    project: KeyProject | None = None
    for domain_event in store.events.get(project_id, lte=version):
        assert isinstance(domain_event, KeyProject.Event)
        project = domain_event.mutate(project)
    assert isinstance(project, KeyProject)
    return project


def snapshot_versions(store: CaseStore, project_id: UUID) -> list[int]:
    assert store.snapshots is not None
    return [s.originator_version for s in store.snapshots.get(project_id)]


def grow_case(
    cases: Cases, acting: Acting, project_id: UUID, clock: Clock, *, to_version: int
) -> None:
    """Works the whole case, closes it, then adds audit notes up to ``to_version``."""
    work_the_case(cases, acting, project_id, clock)
    version = cases.close_project(acting, project_id, summary="审批完成，结案").version
    assert version == 1 + CASE_EVENTS + 1
    while version < to_version:
        version = cases.add_audit_note(
            acting, project_id, note=f"结案后审计备注 v{version + 1}"
        ).version


def test_no_snapshot_before_50_events_and_one_at_version_50(
    store: CaseStore, cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    acting = Acting(officer, "req-grow")
    project = register_major()
    grow_case(cases, acting, project.id, clock, to_version=SNAPSHOT_INTERVAL - 1)
    assert store.get_project(project.id).version == 49
    assert snapshot_versions(store, project.id) == []
    cases.add_audit_note(acting, project.id, note="第50个事件")
    assert snapshot_versions(store, project.id) == [50]


@pytest.fixture
def project_at_64(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> KeyProject:
    """A major project worked through, closed, and noted on up to version 64."""
    project = register_major()
    grow_case(cases, Acting(officer, "req-grow"), project.id, clock, to_version=64)
    return project


def test_project_from_snapshot_equals_project_replayed_from_every_event(
    store: CaseStore,
    open_store: Callable[[], CaseStore],
    store_kind: str,
    project_at_64: KeyProject,
) -> None:
    project = project_at_64
    # Another process (on POPO: the same store) reads what was saved, with cold caches.
    reader = store if store_kind == "popo" else open_store()
    assert reader.snapshots is not None
    (snapshot,) = reader.snapshots.get(project.id)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.originator_version == 50

    loaded = reader.get_project(project.id)
    full_replay = replayed(reader, project.id)
    assert loaded == full_replay
    assert vars(loaded) == vars(full_replay)
    assert loaded.version == 64

    # The snapshot alone, then the 14 events after it, give the same project.
    at_50 = snapshot.mutate(None)
    assert isinstance(at_50, KeyProject)
    assert at_50 == replayed(reader, project.id, version=50)
    from_snapshot: KeyProject | None = at_50
    for domain_event in reader.events.get(project.id, gt=50):
        assert isinstance(domain_event, KeyProject.Event)
        from_snapshot = domain_event.mutate(from_snapshot)
    assert from_snapshot == full_replay

    # The state is the rich one the case built, not some empty shell.
    assert loaded.status == ProjectStatus.CLOSED
    assert len(loaded.officers) == 2
    assert loaded.officers[1].release_reason == "专委会换届"
    assert loaded.reminder_letters["L1"].issues[0].reviews[0].comment == "缺少非正常工况"
    assert len(loaded.deferred_materials) == 2
    assert type(loaded.tiers) is tuple
    assert len(loaded.audit_notes) == 64 - (1 + CASE_EVENTS + 1) + 1


def test_past_versions_read_through_the_snapshot_equal_their_replays(
    store: CaseStore,
    cases: Cases,
    officer: Actor,
    clock: Clock,
    register_major: RegisterMajor,
) -> None:
    project = register_major()
    grow_case(cases, Acting(officer, "req-grow"), project.id, clock, to_version=55)
    for version in (49, 50, 51, 55):
        at = store.get_project(project.id, version=version)
        assert at.version == version
        assert at == replayed(store, project.id, version=version)

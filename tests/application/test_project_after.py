"""A worker's view of a project at the event it handles (``CaseStore.project_after``): the
very state a replay up to that event gives, whether the events come in order, again, or out
of order, and from another process than the writer's."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from application.store import CaseStore
from domain.actor import Actor, Stamp
from domain.project import KeyProject
from tests.domain.factory import TODAY, register
from tests.pg import DURABLE_STORES

#: Two processes share a store only when it persists.
durable = pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)


def grown(store: CaseStore, events: int) -> KeyProject:
    project = register()
    for k in range(2, events + 1):
        project.add_audit_note(note=f"备注 {k}", today=TODAY)
    store.save(project, stamp=Stamp(Actor("a", "甲", "admin", "city"), "req"))  # type: ignore[arg-type] # plain strings stand for the enums
    return project


@durable
def test_in_order_each_event_gives_the_state_a_replay_up_to_it_gives(
    open_store: Callable[[], CaseStore],
) -> None:
    writer, worker = open_store(), open_store()
    project = grown(writer, 7)
    events = list(worker.history(project.id))
    assert len(events) == 7
    for event in events:
        after = worker.project_after(event)
        assert after == writer.get_project(project.id, version=event.originator_version)


@durable
def test_again_and_out_of_order_the_state_is_still_the_events_own(
    open_store: Callable[[], CaseStore],
) -> None:
    writer, worker = open_store(), open_store()
    project = grown(writer, 6)
    events = list(worker.history(project.id))
    for i in (2, 2, 5, 0, 3, 4, 1, 5):
        after = worker.project_after(events[i])
        assert after.version == i + 1
        assert after == writer.get_project(project.id, version=i + 1)


def test_the_state_given_is_a_copy(open_store: Callable[[], CaseStore]) -> None:
    store = open_store()
    project = grown(store, 3)
    events = list(store.history(project.id))
    first = store.project_after(events[1])
    first.add_audit_note(note="不该留下", today=TODAY)  # now at version 3, in this copy only
    third = store.project_after(events[2])
    assert third.version == 3
    assert third == store.get_project(project.id, version=3)
    assert all(n.note != "不该留下" for n in third.audit_notes)

"""A project code is registered once: a second registration is refused, also when eight
officers register the same code at the same instant."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from application.cases import Acting, Cases
from application.mapper import stamp_of
from application.store import CaseStore
from domain import errors
from domain.actor import Actor, Role, Stamp
from domain.project import KeyProject, project_id_for
from domain.windows import Window
from tests.conftest import PROJECT_CODE, RegisterMajor, register_major_project

RACERS = 8


def test_registered_project_is_stored_at_version_1_under_the_id_of_its_code(
    cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    assert project.id == project_id_for(PROJECT_CODE)
    stored = cases.get(officer, project.id)
    assert stored.version == 1
    assert stored.project_code == PROJECT_CODE
    assert stored.is_major


def test_second_registration_of_a_code_is_refused_and_changes_nothing(
    cases: Cases, store: CaseStore, officer: Actor, register_major: RegisterMajor
) -> None:
    first = register_major()
    with pytest.raises(errors.DuplicateProjectCode) as refused:
        register_major(acting=Acting(officer, "req-again"))
    assert refused.value.code == "duplicate_project_code"
    assert PROJECT_CODE in refused.value.detail
    assert str(first.id) in refused.value.detail
    assert cases.get(officer, first.id) == first
    assert len(store.recorder.select_events(first.id)) == 1


def test_code_with_surrounding_spaces_is_the_same_code(
    cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    register_major()
    with pytest.raises(errors.DuplicateProjectCode):
        register_major(f"  {PROJECT_CODE}\t")


def test_same_code_is_refused_even_for_another_window(
    cases: Cases, register_major: RegisterMajor
) -> None:
    register_major()
    admin = Actor("admin-01", "系统管理员", Role.ADMIN, Window.CITY)
    with pytest.raises(errors.DuplicateProjectCode):
        register_major(acting=Acting(admin, "req-admin"), window=Window.BINJIANG)


@pytest.mark.timeout(60)
def test_eight_simultaneous_registrations_of_one_code_give_exactly_one_project(
    cases: Cases, store: CaseStore, officer: Actor
) -> None:
    start = threading.Barrier(RACERS)

    def register(n: int) -> KeyProject | errors.DomainError:
        acting = Acting(officer, f"req-race-{n}")
        start.wait()
        try:
            return register_major_project(cases, acting)
        except errors.DomainError as e:
            return e

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(register, range(RACERS)))

    winners = [o for o in outcomes if isinstance(o, KeyProject)]
    refusals = [o for o in outcomes if not isinstance(o, KeyProject)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(r, errors.DuplicateProjectCode) for r in refusals), refusals
    assert {r.code for r in refusals} == {"duplicate_project_code"}
    # One event, the winner's, and the project in the store is the winner's.
    project_id: UUID = winners[0].id
    (registered,) = store.events.get(project_id)
    winner_request = f"req-race-{outcomes.index(winners[0])}"
    assert stamp_of(registered) == Stamp(officer, winner_request)
    assert cases.get(officer, project_id).version == 1

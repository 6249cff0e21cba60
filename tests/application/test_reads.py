"""Reading a project now, at a version, as of a moment, and its history with the stamps."""

from __future__ import annotations

import time
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from application.cases import SHANGHAI, Acting, Cases, HistoryEntry
from domain import errors
from domain.actor import Actor, Role, Stamp
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import KeyProject
from domain.windows import Window
from tests.application.scenario import CASE_EVENTS, work_the_case
from tests.conftest import PROJECT_CODE, Clock, RegisterMajor

INTERNAL_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}


def three_versions(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> KeyProject:
    """v1 registered on 12-04, v2 lead assigned on 12-05, v3 material deferred on 12-07; the
    recorded timestamps (real clock) are kept a few milliseconds apart."""
    project = register_major(acting=Acting(officer, "req-1"))
    time.sleep(0.005)
    clock.advance(timedelta(days=1))
    cases.assign_officer(
        Acting(officer, "req-2"),
        project.id,
        officer="officer-city-lead",
        name="陈主办",
        role=OfficerRole.LEAD,
    )
    time.sleep(0.005)
    clock.advance(timedelta(days=2))
    cases.defer_material(
        Acting(officer, "req-3"),
        project.id,
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=date(2026, 12, 31),
    )
    return project


def recorded_at(cases: Cases, actor: Actor, project_id: UUID) -> list[datetime]:
    return [entry.recorded_at for entry in cases.history(actor, project_id)]


# --- versions -----------------------------------------------------------------------------
def test_get_without_version_is_the_latest(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    latest = cases.get(officer, project.id)
    assert latest.version == 3
    assert latest.deferred_materials["M1"].deferred_on == date(2026, 12, 7)


def test_get_at_a_version_gives_the_project_as_it_stood_then(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    first = cases.get(officer, project.id, version=1)
    assert (first.version, first.officers, first.deferred_materials) == (1, (), {})
    second = cases.get(officer, project.id, version=2)
    assert second.version == 2
    assert [(o.officer, o.assigned_on) for o in second.officers] == [
        ("officer-city-lead", date(2026, 12, 5))
    ]
    assert second.deferred_materials == {}
    assert cases.get(officer, project.id, version=3) == cases.get(officer, project.id)


@pytest.mark.parametrize("version", [0, -1, 4, 1000])
def test_version_zero_negative_or_beyond_the_latest_is_invalid_input_on_version(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor, version: int
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    with pytest.raises(errors.InvalidInput) as refused:
        cases.get(officer, project.id, version=version)
    assert refused.value.field == "version"
    assert refused.value.code == "invalid_input"
    assert "between 1 and 3" in refused.value.detail


def test_unknown_project_is_not_found(cases: Cases, officer: Actor) -> None:
    with pytest.raises(errors.ProjectNotFound) as refused:
        cases.get(officer, uuid4())
    assert refused.value.code == "project_not_found"
    with pytest.raises(errors.ProjectNotFound):
        cases.history(officer, uuid4())


# --- as of a moment -----------------------------------------------------------------------
def test_as_of_between_two_events_gives_the_version_recorded_before_it(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    t1, t2, t3 = recorded_at(cases, officer, project.id)
    assert t1 < t2 < t3
    assert cases.get(officer, project.id, as_of=t1 + (t2 - t1) / 2).version == 1
    assert cases.get(officer, project.id, as_of=t2 + (t3 - t2) / 2).version == 2


def test_as_of_an_events_own_timestamp_includes_that_event(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    t1, t2, t3 = recorded_at(cases, officer, project.id)
    assert [cases.get(officer, project.id, as_of=t).version for t in (t1, t2, t3)] == [1, 2, 3]


def test_as_of_after_the_last_event_is_the_latest(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    *_, t3 = recorded_at(cases, officer, project.id)
    later = cases.get(officer, project.id, as_of=t3 + timedelta(days=365))
    assert later == cases.get(officer, project.id)


def test_as_of_before_registration_is_project_not_found(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    t1, *_ = recorded_at(cases, officer, project.id)
    with pytest.raises(errors.ProjectNotFound, match="was not registered by"):
        cases.get(officer, project.id, as_of=t1 - timedelta(microseconds=1))
    with pytest.raises(errors.ProjectNotFound):
        cases.get(officer, project.id, as_of=t1 - timedelta(microseconds=1), version=3)


def test_as_of_means_the_same_moment_in_any_time_zone(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    _, t2, _ = recorded_at(cases, officer, project.id)
    assert t2.tzinfo is SHANGHAI
    in_utc = t2.astimezone(UTC)
    assert cases.get(officer, project.id, as_of=in_utc).version == 2
    assert cases.get(officer, project.id, as_of=in_utc - timedelta(microseconds=1)).version == 1


def test_as_of_without_a_time_zone_is_invalid_input(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    with pytest.raises(errors.InvalidInput) as refused:
        cases.get(officer, project.id, as_of=datetime(2026, 12, 5, 10, 0))
    assert refused.value.field == "as_of"


def test_version_and_as_of_together_give_the_earlier_of_the_two(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    _, t2, t3 = recorded_at(cases, officer, project.id)
    assert cases.get(officer, project.id, version=3, as_of=t2).version == 2
    assert cases.get(officer, project.id, version=1, as_of=t3).version == 1


# --- history ------------------------------------------------------------------------------
def test_history_lists_every_event_first_to_last_with_versions_and_types(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    history = cases.history(officer, project.id)
    assert [(e.version, e.type) for e in history] == [
        (1, "Registered"),
        (2, "OfficerAssigned"),
        (3, "MaterialDeferred"),
    ]
    assert all(e.recorded_at.tzinfo is SHANGHAI for e in history)


def test_every_history_entry_carries_the_stamp_of_who_acted_and_the_request(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    admin = Actor("admin-01", "系统管理员", Role.ADMIN, Window.CITY)
    project = three_versions(cases, officer, clock, register_major)
    cases.add_audit_note(Acting(admin, "req-4"), project.id, note="管理员核查")
    history = cases.history(admin, project.id)
    assert [e.stamp for e in history] == [
        Stamp(officer, "req-1"),
        Stamp(officer, "req-2"),
        Stamp(officer, "req-3"),
        Stamp(admin, "req-4"),
    ]
    for entry in history:
        assert entry.stamp is not None
        actor = entry.stamp.actor
        assert (actor.sub, actor.name) in {("officer-xihu-01", "王芳"), ("admin-01", "系统管理员")}
        assert type(actor.role) is Role
        assert type(actor.unit) is Window
    assert history[-1].stamp is not None
    assert history[-1].stamp.actor.role is Role.ADMIN
    assert history[-1].stamp.actor.unit is Window.CITY


def test_history_data_holds_the_event_fields_and_no_internal_ones(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = three_versions(cases, officer, clock, register_major)
    registered, assigned, deferred = cases.history(officer, project.id)
    assert set(registered.data) == {
        "name",
        "project_code",
        "builder",
        "window",
        "tiers",
        "industry",
        "location",
        "two_high_one_low",
    }
    assert registered.data["project_code"] == PROJECT_CODE
    assert registered.data["window"] is Window.XIHU
    assert set(assigned.data) == {"assignment"}
    assert assigned.data["assignment"].assigned_on == date(2026, 12, 5)
    assert set(deferred.data) == {"material"}
    assert deferred.data["material"].material == "规划许可证"


def test_history_of_a_whole_case_has_a_stamp_and_clean_data_on_every_entry(
    cases: Cases, officer: Actor, clock: Clock, register_major: RegisterMajor
) -> None:
    project = register_major(acting=Acting(officer, "req-register"))
    work_the_case(cases, Acting(officer, "req-case"), project.id, clock)
    history = cases.history(officer, project.id)
    assert [e.version for e in history] == list(range(1, CASE_EVENTS + 2))
    assert [f.name for f in fields(HistoryEntry)] == [
        "version",
        "type",
        "recorded_at",
        "stamp",
        "data",
    ]
    for entry in history:
        assert entry.stamp is not None
        assert entry.stamp.actor == officer
        assert entry.stamp.request_id == ("req-register" if entry.version == 1 else "req-case")
        assert entry.data
        assert INTERNAL_FIELDS.isdisjoint(entry.data)
    assert [e.recorded_at for e in history] == sorted(e.recorded_at for e in history)

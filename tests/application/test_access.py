"""Who may act: auditors write nothing, officers write to their own window's projects and to
the cases they are assigned to; a refusal comes before anything is recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from uuid import UUID

import pytest

from application.cases import Acting, Cases
from application.store import CaseStore
from domain import errors
from domain.actor import Actor, Role
from domain.intervention import Stage
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import project_id_for
from domain.windows import Window
from tests.conftest import PROJECT_CODE, RegisterMajor

OUTSIDER = Actor("officer-binjiang-02", "孙磊", Role.OFFICER, Window.BINJIANG)
CITY_SUPERVISOR = Actor("supervisor-city-01", "钱科长", Role.SUPERVISOR, Window.CITY)
ADMIN = Actor("admin-01", "系统管理员", Role.ADMIN, Window.CITY)

Write = Callable[[Cases, Acting, UUID], object]

WRITES: dict[str, Write] = {
    "add_audit_note": lambda c, a, p: c.add_audit_note(a, p, note="审计意见"),
    "assign_officer": lambda c, a, p: c.assign_officer(
        a, p, officer="officer-x", name="某人", role=OfficerRole.JOINT
    ),
    "defer_material": lambda c, a, p: c.defer_material(
        a,
        p,
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=date(2026, 12, 31),
    ),
    "start_early_intervention": lambda c, a, p: c.start_early_intervention(
        a, p, stage=Stage.APPROVAL, guidance="指导意见"
    ),
    "close_project": lambda c, a, p: c.close_project(a, p, summary="结案"),
}


def recorded(store: CaseStore, project_id: UUID) -> int:
    return len(store.recorder.select_events(project_id))


# --- auditors -----------------------------------------------------------------------------
def test_auditor_may_not_register_and_nothing_is_recorded(
    cases: Cases, store: CaseStore, auditor: Actor, register_major: RegisterMajor
) -> None:
    with pytest.raises(errors.NotAllowed) as refused:
        register_major(acting=Acting(auditor, "req-a"), window=auditor.unit)
    assert refused.value.code == "not_allowed"
    assert recorded(store, project_id_for(PROJECT_CODE)) == 0
    with pytest.raises(errors.ProjectNotFound):
        cases.get(auditor, project_id_for(PROJECT_CODE))


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_auditor_writes_are_refused_before_anything_is_recorded(
    cases: Cases, store: CaseStore, auditor: Actor, register_major: RegisterMajor, write: Write
) -> None:
    project = register_major()
    with pytest.raises(errors.NotAllowed):
        write(cases, Acting(auditor, "req-a"), project.id)
    assert recorded(store, project.id) == 1
    assert cases.get(auditor, project.id) == project


def test_auditor_is_refused_as_not_allowed_even_with_a_stale_version(
    cases: Cases, auditor: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    with pytest.raises(errors.NotAllowed):
        cases.add_audit_note(Acting(auditor, "req-a", expected_version=7), project.id, note="x")


def test_auditor_reads_every_project_and_its_history(
    cases: Cases, auditor: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    assert cases.get(auditor, project.id) == project
    assert cases.get(auditor, project.id, version=1) == project
    assert [e.type for e in cases.history(auditor, project.id)] == ["Registered"]


# --- officers of another window -----------------------------------------------------------
def test_officer_may_not_register_for_another_window(
    cases: Cases, store: CaseStore, officer: Actor, register_major: RegisterMajor
) -> None:
    with pytest.raises(errors.NotAllowed):
        register_major(acting=Acting(officer, "req-r"), window=Window.BINJIANG)
    assert recorded(store, project_id_for(PROJECT_CODE)) == 0


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_officer_of_another_window_may_not_write(
    cases: Cases, store: CaseStore, register_major: RegisterMajor, write: Write
) -> None:
    project = register_major()
    with pytest.raises(errors.NotAllowed):
        write(cases, Acting(OUTSIDER, "req-o"), project.id)
    assert recorded(store, project.id) == 1


def test_officer_of_another_window_may_not_read(
    cases: Cases, register_major: RegisterMajor
) -> None:
    project = register_major()
    with pytest.raises(errors.NotAllowed):
        cases.get(OUTSIDER, project.id)
    with pytest.raises(errors.NotAllowed):
        cases.history(OUTSIDER, project.id)


def test_officer_of_another_window_assigned_as_co_organizer_may_read_and_write(
    cases: Cases, store: CaseStore, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    cases.assign_officer(
        Acting(officer, "req-assign"),
        project.id,
        officer=OUTSIDER.sub,
        name=OUTSIDER.name,
        role=OfficerRole.CO_ORGANIZER,
    )
    noted = cases.add_audit_note(Acting(OUTSIDER, "req-o"), project.id, note="协办意见：同意")
    assert noted.version == 3
    assert cases.get(OUTSIDER, project.id).audit_notes[-1].note == "协办意见：同意"
    last = cases.history(OUTSIDER, project.id)[-1]
    assert last.stamp is not None
    assert (last.stamp.actor, last.stamp.request_id) == (OUTSIDER, "req-o")
    assert recorded(store, project.id) == 3


def test_released_officer_of_another_window_is_refused_again(
    cases: Cases, store: CaseStore, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    acting = Acting(officer, "req-x")
    cases.assign_officer(
        acting, project.id, officer=OUTSIDER.sub, name=OUTSIDER.name, role=OfficerRole.JOINT
    )
    cases.release_officer(acting, project.id, OUTSIDER.sub, reason="任务完成")
    with pytest.raises(errors.NotAllowed):
        cases.add_audit_note(Acting(OUTSIDER, "req-o"), project.id, note="x")
    with pytest.raises(errors.NotAllowed):
        cases.get(OUTSIDER, project.id)
    assert recorded(store, project.id) == 3


# --- supervisors and admins ---------------------------------------------------------------
def test_city_supervisor_reads_every_window_but_writes_only_where_assigned(
    cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    assert cases.get(CITY_SUPERVISOR, project.id) == project
    with pytest.raises(errors.NotAllowed):
        cases.add_audit_note(Acting(CITY_SUPERVISOR, "req-s"), project.id, note="督办")
    cases.assign_officer(
        Acting(officer, "req-assign"),
        project.id,
        officer=CITY_SUPERVISOR.sub,
        name=CITY_SUPERVISOR.name,
        role=OfficerRole.LEAD,
    )
    assert (
        cases.add_audit_note(Acting(CITY_SUPERVISOR, "req-s"), project.id, note="督办").version == 3
    )


def test_admin_registers_and_writes_for_any_window(
    cases: Cases, register_major: RegisterMajor
) -> None:
    project = register_major(acting=Acting(ADMIN, "req-admin"), window=Window.CHUNAN)
    assert project.window is Window.CHUNAN
    assert cases.add_audit_note(Acting(ADMIN, "req-admin-2"), project.id, note="核查").version == 2

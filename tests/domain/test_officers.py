"""The officer network (专人对接): one active lead, no officer twice, history kept."""

from __future__ import annotations

import pytest

from domain import errors
from domain.officers import OfficerAssignment, OfficerRole
from tests.domain.factory import (
    IN_A_MONTH,
    TODAY,
    TOMORROW,
    assert_invalid,
    assert_refused,
    major_project,
    with_officer,
)


@pytest.mark.parametrize("role", list(OfficerRole))
def test_officer_is_assigned_in_each_role(role: OfficerRole) -> None:
    project = major_project()
    project.assign_officer(officer=" u1 ", name=" 张三 ", role=role, today=TODAY)
    assert project.officers == (OfficerAssignment("u1", "张三", role, TODAY),)
    assert project.officers[0].active
    assert project.officers_on_case == {"u1"}
    assert [type(e).__name__ for e in project.collect_events()] == ["OfficerAssigned"]


def test_full_service_network_of_four_roles_is_assigned() -> None:
    project = major_project()
    for n, role in enumerate(OfficerRole, start=1):
        project.assign_officer(officer=f"u{n}", name=f"官员{n}", role=role, today=TODAY)
    assert [o.role for o in project.active_officers] == list(OfficerRole)
    assert project.officers_on_case == {"u1", "u2", "u3", "u4"}


def test_second_active_lead_is_refused() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    assert_refused(
        project,
        errors.LeadAlreadyAssigned,
        "lead_already_assigned",
        lambda: project.assign_officer(
            officer="u2", name="李四", role=OfficerRole.LEAD, today=TODAY
        ),
    )


@pytest.mark.parametrize(
    "role", [OfficerRole.CO_ORGANIZER, OfficerRole.ASSESSOR, OfficerRole.JOINT]
)
def test_non_lead_roles_may_be_held_by_several_officers(role: OfficerRole) -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.assign_officer(officer="u2", name="李四", role=role, today=TODAY)
    project.assign_officer(officer="u3", name="王五", role=role, today=TODAY)
    assert [o.role for o in project.active_officers].count(role) == 2


def test_after_release_of_the_lead_a_new_lead_is_assigned() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.release_officer(officer="u1", reason="岗位调整", today=TOMORROW)
    project.assign_officer(officer="u2", name="李四", role=OfficerRole.LEAD, today=TOMORROW)
    leads = [o for o in project.active_officers if o.role is OfficerRole.LEAD]
    assert [o.officer for o in leads] == ["u2"]


def test_history_keeps_the_released_assignment_with_date_and_reason() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.release_officer(officer="u1", reason=" 岗位调整 ", today=TOMORROW)
    project.assign_officer(officer="u2", name="李四", role=OfficerRole.LEAD, today=TOMORROW)
    assert project.officers == (
        OfficerAssignment("u1", "张主办", OfficerRole.LEAD, TODAY, TOMORROW, "岗位调整"),
        OfficerAssignment("u2", "李四", OfficerRole.LEAD, TOMORROW),
    )
    assert not project.officers[0].active
    assert project.officers_on_case == {"u2"}
    assert [type(e).__name__ for e in project.collect_events()] == [
        "OfficerReleased",
        "OfficerAssigned",
    ]


def test_released_officer_may_be_assigned_again_and_both_spells_are_kept() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.release_officer(officer="u1", reason="休假", today=TODAY)
    project.assign_officer(officer="u1", name="张主办", role=OfficerRole.LEAD, today=TOMORROW)
    assert [(o.officer, o.active) for o in project.officers] == [("u1", False), ("u1", True)]


def test_releasing_a_reassigned_officer_leaves_the_earlier_spell_as_it_was() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.release_officer(officer="u1", reason="休假", today=TODAY)
    project.assign_officer(officer="u1", name="张主办", role=OfficerRole.LEAD, today=TOMORROW)
    project.release_officer(officer="u1", reason="调离", today=IN_A_MONTH)
    assert [(o.assigned_on, o.released_on, o.release_reason) for o in project.officers] == [
        (TODAY, TODAY, "休假"),
        (TOMORROW, IN_A_MONTH, "调离"),
    ]


def test_release_leaves_the_other_officers_active() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.assign_officer(officer="u2", name="李四", role=OfficerRole.JOINT, today=TODAY)
    project.release_officer(officer="u1", reason="岗位调整", today=TODAY)
    assert project.officers_on_case == {"u2"}


@pytest.mark.parametrize("role", list(OfficerRole))
def test_same_officer_twice_is_refused_in_any_role(role: OfficerRole) -> None:
    project = with_officer(officer="u1", role=OfficerRole.CO_ORGANIZER)
    assert_refused(
        project,
        errors.OfficerAlreadyAssigned,
        "officer_already_assigned",
        lambda: project.assign_officer(officer="u1", name="张三", role=role, today=TODAY),
    )


def test_release_of_an_unknown_officer_is_refused() -> None:
    project = with_officer(officer="u1")
    assert_refused(
        project,
        errors.OfficerNotFound,
        "officer_not_found",
        lambda: project.release_officer(officer="u9", reason="岗位调整", today=TODAY),
    )


def test_release_of_an_already_released_officer_is_refused() -> None:
    project = with_officer(officer="u1")
    project.release_officer(officer="u1", reason="岗位调整", today=TODAY)
    project.collect_events()
    assert_refused(
        project,
        errors.OfficerNotFound,
        "officer_not_found",
        lambda: project.release_officer(officer="u1", reason="再次释放", today=TOMORROW),
    )


def test_release_without_reason_is_refused() -> None:
    project = with_officer(officer="u1")
    assert_invalid(
        project, "reason", lambda: project.release_officer(officer="u1", reason=" ", today=TODAY)
    )


@pytest.mark.parametrize(
    ("officer", "name", "field"), [(" ", "张三", "officer"), ("u1", "", "name")]
)
def test_assignment_without_officer_id_or_name_is_refused(
    officer: str, name: str, field: str
) -> None:
    project = major_project()
    assert_invalid(
        project,
        field,
        lambda: project.assign_officer(
            officer=officer, name=name, role=OfficerRole.LEAD, today=TODAY
        ),
    )


def test_lead_is_handed_over_in_one_event_with_no_gap_and_no_second_lead() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.hand_over_lead(
        from_officer="u1", to_officer=" u2 ", name="李四", reason="调岗", today=TOMORROW
    )
    leads = [o for o in project.active_officers if o.role is OfficerRole.LEAD]
    assert [(o.officer, o.assigned_on) for o in leads] == [("u2", TOMORROW)]
    assert project.officers[0].released_on == TOMORROW
    assert project.officers[0].release_reason == "调岗"
    assert [type(e).__name__ for e in project.collect_events()] == ["LeadHandedOver"]


def test_hand_over_from_someone_who_is_not_the_lead_is_refused() -> None:
    project = with_officer(officer="u1", role=OfficerRole.CO_ORGANIZER)
    assert_refused(
        project,
        errors.OfficerNotFound,
        "officer_not_found",
        lambda: project.hand_over_lead(
            from_officer="u1", to_officer="u2", name="李四", reason="调岗", today=TODAY
        ),
    )


def test_hand_over_to_an_officer_already_on_the_case_is_refused() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.assign_officer(officer="u2", name="李四", role=OfficerRole.JOINT, today=TODAY)
    project.collect_events()
    assert_refused(
        project,
        errors.OfficerAlreadyAssigned,
        "officer_already_assigned",
        lambda: project.hand_over_lead(
            from_officer="u1", to_officer="u2", name="李四", reason="调岗", today=TODAY
        ),
    )


def test_release_trims_the_officer_id_as_assignment_does() -> None:
    project = with_officer(officer="u1", role=OfficerRole.LEAD)
    project.release_officer(officer=" u1 ", reason="调岗", today=TODAY)
    assert project.active_officers == ()

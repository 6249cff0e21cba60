"""Key (重点) vs major (重大) projects; early intervention (提前介入) and its progress checks."""

from __future__ import annotations

from datetime import date

import pytest

from domain import errors
from domain.helper_service import HelperReason
from domain.intervention import CheckStatus, EarlyIntervention, ProgressCheck, Stage
from domain.letters import LetterStatus
from domain.materials import DeferralReason, MaterialStatus
from domain.officers import OfficerRole
from domain.tiers import Tier, is_key, is_major
from tests.domain.factory import (
    IN_A_MONTH,
    MAJOR_TIERS,
    TODAY,
    TOMORROW,
    YESTERDAY,
    assert_invalid,
    assert_refused,
    district_project,
    intervened,
    major_project,
    registered,
    spec,
    with_check,
)

# --- the two derived classes -----------------------------------------------------------------


@pytest.mark.parametrize("tier", MAJOR_TIERS)
def test_each_of_the_five_major_tiers_alone_is_major_and_key(tier: Tier) -> None:
    assert is_major((tier,))
    assert is_key((tier,))
    project = registered(tier)
    assert project.is_major
    assert project.is_key


def test_district_key_alone_is_key_but_not_major() -> None:
    assert is_key((Tier.DISTRICT_KEY,))
    assert not is_major((Tier.DISTRICT_KEY,))
    project = district_project()
    assert project.is_key
    assert not project.is_major


def test_district_key_with_city_key_is_major() -> None:
    assert is_major((Tier.DISTRICT_KEY, Tier.CITY_KEY))
    assert registered(Tier.DISTRICT_KEY, Tier.CITY_KEY).is_major


def test_no_tier_is_neither_key_nor_major() -> None:
    assert not is_key(())
    assert not is_major(())


# --- major-only measures refused for a district-only project -----------------------------------


def test_district_key_project_cannot_get_early_intervention() -> None:
    project = district_project()
    refused = assert_refused(
        project,
        errors.NotMajorProject,
        "not_major_project",
        lambda: project.start_early_intervention(
            stage=Stage.FEASIBILITY, guidance="指导", today=TODAY
        ),
    )
    assert "district_key" in refused.detail
    assert project.early_intervention is None


def test_district_key_project_cannot_schedule_progress_checks() -> None:
    project = district_project()
    assert_refused(
        project,
        errors.NotMajorProject,
        "not_major_project",
        lambda: project.schedule_progress_check(due_on=TOMORROW, today=TODAY),
    )


@pytest.mark.parametrize("role", list(OfficerRole))
def test_district_key_project_cannot_get_an_officer_in_any_role(role: OfficerRole) -> None:
    project = district_project()
    assert_refused(
        project,
        errors.NotMajorProject,
        "not_major_project",
        lambda: project.assign_officer(officer="u1", name="张三", role=role, today=TODAY),
    )


@pytest.mark.parametrize("reason", list(HelperReason))
def test_district_key_project_cannot_get_a_helper_for_any_reason(reason: HelperReason) -> None:
    project = district_project()
    assert_refused(
        project,
        errors.NotMajorProject,
        "not_major_project",
        lambda: project.dispatch_helper(helper="h1", name="李四", reason=reason, today=TODAY),
    )


def test_district_key_project_can_defer_materials() -> None:
    project = district_project()
    material_id = project.defer_material(
        material="规划许可证",
        department="区规划分局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=IN_A_MONTH,
        today=TODAY,
    )
    assert project.deferred_materials[material_id].status is MaterialStatus.DEFERRED


def test_district_key_project_can_receive_a_reminder_letter() -> None:
    project = district_project()
    letter_id = project.issue_reminder_letter(
        letter_no="区环提〔2024〕1号", deadline=IN_A_MONTH, issues=(spec(),), today=TODAY
    )
    assert project.reminder_letters[letter_id].status is LetterStatus.OPEN


@pytest.mark.parametrize("tier", MAJOR_TIERS)
def test_each_major_tier_alone_gets_every_major_measure(tier: Tier) -> None:
    project = registered(tier)
    project.start_early_intervention(stage=Stage.APPROVAL, guidance="指导", today=TODAY)
    project.schedule_progress_check(due_on=TOMORROW, today=TODAY)
    project.assign_officer(officer="u1", name="张三", role=OfficerRole.LEAD, today=TODAY)
    project.dispatch_helper(
        helper="h1", name="李四", reason=HelperReason.LEGACY_ISSUES, today=TODAY
    )
    assert project.early_intervention is not None
    assert list(project.progress_checks) == ["C1"]
    assert project.officers_on_case == {"u1"}
    assert list(project.helpers) == ["h1"]


def test_district_and_city_key_project_gets_early_intervention() -> None:
    project = registered(Tier.DISTRICT_KEY, Tier.CITY_KEY)
    project.start_early_intervention(stage=Stage.FEASIBILITY, guidance="指导", today=TODAY)
    assert project.early_intervention is not None


# --- early intervention ------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
def test_early_intervention_records_stage_guidance_and_start_date(stage: Stage) -> None:
    project = major_project()
    project.start_early_intervention(stage=stage, guidance="  明确评价等级 ", today=TODAY)
    assert project.early_intervention == EarlyIntervention(stage, "明确评价等级", TODAY)
    assert [type(e).__name__ for e in project.collect_events()] == ["EarlyInterventionStarted"]
    assert project.version == 2


def test_early_intervention_is_started_only_once() -> None:
    project = intervened()
    assert_refused(
        project,
        errors.EarlyInterventionAlreadyStarted,
        "early_intervention_already_started",
        lambda: project.start_early_intervention(
            stage=Stage.APPROVAL, guidance="再次指导", today=TOMORROW
        ),
    )
    assert project.early_intervention is not None
    assert project.early_intervention.stage is Stage.FEASIBILITY


def test_early_intervention_without_guidance_is_refused() -> None:
    project = major_project()
    assert_invalid(
        project,
        "guidance",
        lambda: project.start_early_intervention(
            stage=Stage.FEASIBILITY, guidance="  ", today=TODAY
        ),
    )


# --- progress checks ---------------------------------------------------------------------------


def test_progress_check_needs_early_intervention_started() -> None:
    project = major_project()
    assert_refused(
        project,
        errors.EarlyInterventionNotStarted,
        "early_intervention_not_started",
        lambda: project.schedule_progress_check(due_on=TOMORROW, today=TODAY),
    )


def test_progress_check_due_today_is_scheduled() -> None:
    project = intervened()
    check_id = project.schedule_progress_check(due_on=TODAY, today=TODAY)
    assert check_id == "C1"
    assert project.progress_checks == {"C1": ProgressCheck("C1", TODAY)}
    assert project.progress_checks["C1"].status is CheckStatus.SCHEDULED


def test_progress_check_due_yesterday_is_refused() -> None:
    project = intervened()
    assert_invalid(
        project,
        "due_on",
        lambda: project.schedule_progress_check(due_on=YESTERDAY, today=TODAY),
    )


def test_progress_checks_are_numbered_in_order() -> None:
    project = intervened()
    assert project.schedule_progress_check(due_on=TOMORROW, today=TODAY) == "C1"
    assert project.schedule_progress_check(due_on=IN_A_MONTH, today=TODAY) == "C2"
    assert list(project.progress_checks) == ["C1", "C2"]


def test_check_outcome_is_recorded_and_marks_the_check_done() -> None:
    project = with_check()
    next_id = project.record_check_outcome(
        check_id="C1", summary=" 环评报告书编制过半 ", next_due_on=None, today=TODAY
    )
    assert next_id is None
    assert project.progress_checks == {
        "C1": ProgressCheck("C1", TOMORROW, CheckStatus.DONE, "环评报告书编制过半", TODAY)
    }


def test_check_outcome_is_recorded_only_once() -> None:
    project = with_check()
    project.record_check_outcome(check_id="C1", summary="进度正常", next_due_on=None, today=TODAY)
    project.collect_events()
    assert_refused(
        project,
        errors.CheckAlreadyRecorded,
        "check_already_recorded",
        lambda: project.record_check_outcome(
            check_id="C1", summary="再次记录", next_due_on=None, today=TOMORROW
        ),
    )


def test_check_outcome_with_next_due_on_schedules_the_next_check() -> None:
    project = with_check()
    next_id = project.record_check_outcome(
        check_id="C1", summary="进度正常", next_due_on=TOMORROW, today=TODAY
    )
    assert next_id == "C2"
    assert project.progress_checks["C1"].status is CheckStatus.DONE
    assert project.progress_checks["C2"] == ProgressCheck("C2", TOMORROW)
    assert [type(e).__name__ for e in project.collect_events()] == ["ProgressCheckOutcomeRecorded"]


def test_next_check_can_itself_be_recorded() -> None:
    project = with_check()
    project.record_check_outcome(check_id="C1", summary="一", next_due_on=TOMORROW, today=TODAY)
    project.record_check_outcome(check_id="C2", summary="二", next_due_on=None, today=TOMORROW)
    assert project.progress_checks["C2"].status is CheckStatus.DONE
    assert project.progress_checks["C2"].checked_on == TOMORROW


@pytest.mark.parametrize("next_due_on", [TODAY, YESTERDAY], ids=["today", "yesterday"])
def test_next_due_on_today_or_earlier_is_refused(next_due_on: date) -> None:
    project = with_check()
    assert_invalid(
        project,
        "next_due_on",
        lambda: project.record_check_outcome(
            check_id="C1", summary="进度正常", next_due_on=next_due_on, today=TODAY
        ),
    )


def test_outcome_of_an_unknown_check_is_refused() -> None:
    project = with_check()
    assert_refused(
        project,
        errors.ProgressCheckNotFound,
        "progress_check_not_found",
        lambda: project.record_check_outcome(
            check_id="C9", summary="进度正常", next_due_on=None, today=TODAY
        ),
    )


def test_check_outcome_without_summary_is_refused() -> None:
    project = with_check()
    assert_invalid(
        project,
        "summary",
        lambda: project.record_check_outcome(
            check_id="C1", summary=" ", next_due_on=None, today=TODAY
        ),
    )


def test_progress_check_outcome_can_be_recorded_on_an_overdue_check() -> None:
    project = with_check(due_on=TODAY)
    project.record_check_outcome(
        check_id="C1", summary="逾期后补调度", next_due_on=None, today=IN_A_MONTH
    )
    assert project.progress_checks["C1"].checked_on == IN_A_MONTH

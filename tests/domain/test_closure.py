"""Closing a case: refused while letters are open; afterwards only audit notes are recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from domain import errors
from domain.helper_service import HelperReason, VisitKind
from domain.intervention import Stage
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import KeyProject, ProjectStatus
from domain.violations import AuditNote
from tests.domain.factory import (
    IN_A_MONTH,
    TODAY,
    TOMORROW,
    assert_invalid,
    assert_refused,
    district_project,
    major_project,
    spec,
    with_check,
    with_closed_letter,
    with_helper,
    with_letter,
    with_material,
    with_officer,
)

Command = Callable[[KeyProject], object]


def _rich_project() -> KeyProject:
    """A major project with something of everything: check C1 scheduled, lead officer
    u-lead-1, helper h1, material M1 deferred, letter L1 closed."""
    return with_closed_letter(with_material(with_helper(with_officer(with_check()), helper="h1")))


def _closed_rich_project() -> KeyProject:
    project = _rich_project()
    project.close(summary="项目环评已批复", today=TOMORROW)
    project.collect_events()
    return project


def test_project_with_no_letters_is_closed() -> None:
    project = major_project()
    project.close(summary=" 项目环评已批复 ", today=TODAY)
    assert project.status == ProjectStatus.CLOSED
    assert project.closed_on == TODAY
    assert project.closing_summary == "项目环评已批复"
    assert [type(e).__name__ for e in project.collect_events()] == ["ProjectClosed"]


def test_project_whose_letters_are_all_closed_is_closed() -> None:
    project = with_closed_letter()
    project.close(summary="闭环完成", today=TODAY)
    assert project.status == ProjectStatus.CLOSED


def test_close_with_an_open_letter_is_refused() -> None:
    project = with_letter(letter_no="杭环提〔2024〕7号")
    refused = assert_refused(
        project,
        errors.ProjectHasOpenLetters,
        "project_has_open_letters",
        lambda: project.close(summary="结案", today=TODAY),
    )
    assert "杭环提〔2024〕7号" in refused.detail


def test_close_with_one_closed_and_one_open_letter_is_refused() -> None:
    project = with_letter(with_closed_letter(), letter_no="2号")
    assert_refused(
        project,
        errors.ProjectHasOpenLetters,
        "project_has_open_letters",
        lambda: project.close(summary="结案", today=TODAY),
    )


def test_close_without_summary_is_refused() -> None:
    project = major_project()
    assert_invalid(project, "summary", lambda: project.close(summary="  ", today=TODAY))


COMMANDS_AFTER_CLOSURE: dict[str, Command] = {
    "start_early_intervention": lambda p: p.start_early_intervention(
        stage=Stage.APPROVAL, guidance="指导", today=IN_A_MONTH
    ),
    "schedule_progress_check": lambda p: p.schedule_progress_check(
        due_on=IN_A_MONTH, today=IN_A_MONTH
    ),
    "record_check_outcome": lambda p: p.record_check_outcome(
        check_id="C1", summary="进度", next_due_on=None, today=IN_A_MONTH
    ),
    "assign_officer": lambda p: p.assign_officer(
        officer="u2", name="李四", role=OfficerRole.JOINT, today=IN_A_MONTH
    ),
    "release_officer": lambda p: p.release_officer(
        officer="u-lead-1", reason="结案", today=IN_A_MONTH
    ),
    "dispatch_helper": lambda p: p.dispatch_helper(
        helper="h2", name="王五", reason=HelperReason.LEGACY_ISSUES, today=IN_A_MONTH
    ),
    "record_helper_visit": lambda p: p.record_helper_visit(
        helper="h1",
        visited_on=IN_A_MONTH,
        kind=VisitKind.GUIDANCE,
        findings="回访",
        follow_ups=None,
        today=IN_A_MONTH,
    ),
    "defer_material": lambda p: p.defer_material(
        material="材料",
        department="部门",
        reason=DeferralReason.NOT_DECISIVE,
        promised_by=IN_A_MONTH,
        today=IN_A_MONTH,
    ),
    "supply_material": lambda p: p.supply_material(material_id="M1", note=None, today=IN_A_MONTH),
    "issue_reminder_letter": lambda p: p.issue_reminder_letter(
        letter_no="新函",
        deadline=IN_A_MONTH + timedelta(days=1),
        issues=(spec(),),
        today=IN_A_MONTH,
    ),
    "submit_rectification": lambda p: p.submit_rectification(
        letter_id="L1", issue_id="L1-I1", summary="整改", evidence=(), today=IN_A_MONTH
    ),
    "accept_rectification": lambda p: p.accept_rectification(
        letter_id="L1", issue_id="L1-I1", comment=None, today=IN_A_MONTH
    ),
    "return_rectification": lambda p: p.return_rectification(
        letter_id="L1", issue_id="L1-I1", reason="退回", today=IN_A_MONTH
    ),
    "close_reminder_letter": lambda p: p.close_reminder_letter(letter_id="L1", today=IN_A_MONTH),
    "refer_violation": lambda p: p.refer_violation(
        description="违法", legal_basis=None, today=IN_A_MONTH
    ),
    "close": lambda p: p.close(summary="再次结案", today=IN_A_MONTH),
}


@pytest.mark.parametrize(
    "command", COMMANDS_AFTER_CLOSURE.values(), ids=COMMANDS_AFTER_CLOSURE.keys()
)
def test_after_closure_every_command_is_refused(command: Command) -> None:
    project = _closed_rich_project()
    assert_refused(project, errors.ProjectClosed, "project_closed", lambda: command(project))


#: What the same commands meet on the rich project left open: closure is checked first.
REFUSED_WHILE_OPEN: dict[str, type[errors.DomainError]] = {
    "start_early_intervention": errors.EarlyInterventionAlreadyStarted,
    "submit_rectification": errors.LetterClosed,
    "accept_rectification": errors.LetterClosed,
    "return_rectification": errors.LetterClosed,
    "close_reminder_letter": errors.LetterClosed,
}


@pytest.mark.parametrize("name", COMMANDS_AFTER_CLOSURE)
def test_on_the_open_project_the_same_commands_succeed_or_meet_another_rule(name: str) -> None:
    project = _rich_project()
    command = COMMANDS_AFTER_CLOSURE[name]
    refusal = REFUSED_WHILE_OPEN.get(name)
    if refusal is None:
        command(project)
        assert project.pending_events
    else:
        with pytest.raises(refusal):
            command(project)


def test_closed_district_project_reports_closure_before_tier() -> None:
    project = district_project()
    project.close(summary="结案", today=TODAY)
    project.collect_events()
    assert_refused(
        project,
        errors.ProjectClosed,
        "project_closed",
        lambda: project.start_early_intervention(
            stage=Stage.FEASIBILITY, guidance="指导", today=TODAY
        ),
    )


def test_audit_note_is_added_after_closure() -> None:
    project = _closed_rich_project()
    version = project.version
    project.add_audit_note(note=" 审计抽查：记录完整 ", today=IN_A_MONTH)
    assert project.audit_notes == (AuditNote("审计抽查：记录完整", IN_A_MONTH),)
    assert project.version == version + 1
    assert project.status == ProjectStatus.CLOSED
    assert [type(e).__name__ for e in project.collect_events()] == ["AuditNoteAdded"]


def test_audit_note_is_added_to_an_open_case_too() -> None:
    project = district_project()
    project.add_audit_note(note="抽查", today=TODAY)
    project.add_audit_note(note="复查", today=TOMORROW)
    assert [n.note for n in project.audit_notes] == ["抽查", "复查"]


def test_empty_audit_note_is_refused_also_after_closure() -> None:
    project = _closed_rich_project()
    assert_invalid(project, "note", lambda: project.add_audit_note(note=" ", today=TODAY))

"""A whole case, command by command through the use cases, touching every part of the state."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from application.cases import Acting, Cases
from domain.helper_service import HelperReason, VisitKind
from domain.intervention import Stage
from domain.letters import FoundIn, IssueSpec, Severity
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from tests.conftest import Clock

#: Events ``work_the_case`` records after registration (version 1).
CASE_EVENTS = 21


def work_the_case(cases: Cases, acting: Acting, project_id: UUID, clock: Clock) -> None:
    """Every service act of the notice once or more, a day apart, on a registered major
    project; leaves the case open with every letter closed. Records ``CASE_EVENTS`` events."""

    def today() -> date:
        return cases.today()

    def next_day() -> None:
        clock.advance(timedelta(days=1))

    cases.start_early_intervention(
        acting, project_id, stage=Stage.FEASIBILITY, guidance="环评编制前置指导：大气、地下水专题"
    )
    next_day()
    _, check = cases.schedule_progress_check(acting, project_id, due_on=today())
    cases.record_check_outcome(
        acting,
        project_id,
        check,
        summary="可研已批复，环评报告书编制中",
        next_due_on=today() + timedelta(days=30),
    )
    next_day()
    cases.assign_officer(
        acting, project_id, officer="officer-city-lead", name="陈主办", role=OfficerRole.LEAD
    )
    cases.assign_officer(
        acting, project_id, officer="expert-07", name="周协办", role=OfficerRole.CO_ORGANIZER
    )
    cases.release_officer(acting, project_id, "expert-07", reason="专委会换届")
    next_day()
    cases.dispatch_helper(
        acting,
        project_id,
        helper="helper-03",
        name="吴助企",
        reason=HelperReason.LEGACY_ISSUES,
        visit_every_days=14,
    )
    next_day()
    cases.record_helper_visit(
        acting,
        project_id,
        helper="helper-03",
        visited_on=today() - timedelta(days=1),
        kind=VisitKind.ON_SITE_HELP,
        findings="危废暂存间未规范设置",
        follow_ups="两周内复查",
    )
    _, material = cases.defer_material(
        acting,
        project_id,
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=today() + timedelta(days=20),
    )
    cases.defer_material(
        acting,
        project_id,
        material="节能审查意见",
        department="市发改委",
        reason=DeferralReason.NOT_DECISIVE,
        promised_by=today() + timedelta(days=40),
    )
    next_day()
    cases.supply_material(acting, project_id, material, note="原件已核验")
    _, letter = cases.issue_reminder_letter(
        acting,
        project_id,
        letter_no="杭环提〔2026〕12号",
        deadline=today() + timedelta(days=15),
        issues=(
            IssueSpec(Severity.KEY, FoundIn.EXPERT_REVIEW, "大气预测因子不全", "补充VOCs预测"),
            IssueSpec(Severity.GENERAL, FoundIn.SITE_INSPECTION, "围挡破损", "修复围挡"),
        ),
    )
    next_day()
    first, second = f"{letter}-I1", f"{letter}-I2"
    cases.submit_rectification(
        acting, project_id, letter, first, summary="已补充预测", evidence=("附件1.pdf",)
    )
    cases.return_rectification(acting, project_id, letter, first, reason="缺少非正常工况")
    cases.submit_rectification(
        acting,
        project_id,
        letter,
        first,
        summary="补充非正常工况",
        evidence=("附件1.pdf", "附件2.pdf"),
    )
    cases.accept_rectification(acting, project_id, letter, first, comment="同意")
    cases.submit_rectification(
        acting, project_id, letter, second, summary="围挡已修复", evidence=("现场照片.jpg",)
    )
    cases.accept_rectification(acting, project_id, letter, second, comment=None)
    next_day()
    cases.close_reminder_letter(acting, project_id, letter)
    cases.refer_violation(
        acting,
        project_id,
        description="未批先建嫌疑",
        legal_basis="《环境影响评价法》第三十一条",
        letter_id=letter,
        issue_id=first,
    )
    cases.add_audit_note(acting, project_id, note="全过程资料已归档")

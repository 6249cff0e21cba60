"""Builders for the domain tests: registered projects with given tiers on a fixed ``today``.

Every builder that returns a project has already cleared its pending events with
``collect_events()``, so a test sees only the events of the commands it runs itself.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest

from domain import errors
from domain.builder import Builder, Contact
from domain.helper_service import HelperReason
from domain.intervention import Stage
from domain.letters import FoundIn, IssueSpec, Severity
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import KeyProject
from domain.tiers import Tier
from domain.windows import Window

#: The fixed "today" of the domain tests (a Monday, after the notice came into force).
TODAY = date(2024, 6, 17)
YESTERDAY = TODAY - timedelta(days=1)
TOMORROW = TODAY + timedelta(days=1)
IN_A_MONTH = TODAY + timedelta(days=30)

PROJECT_CODE = "2024-330100-44-01-123456"
OTHER_PROJECT_CODE = "2024-330106-44-01-654321"
#: 阿里巴巴（中国）有限公司: a published code whose GB 32100-2015 check character is right.
CREDIT_CODE = "91330100716105852F"

#: The five tiers that make a project major (重大项目) on their own, spelled out here rather
#: than read from the code under test.
MAJOR_TIERS: tuple[Tier, ...] = (
    Tier.CITY_KEY,
    Tier.PROVINCIAL_KEY,
    Tier.QIANXIANG_WANYI,
    Tier.MINISTRY_CONTACT,
    Tier.PROVINCIAL_DEPT_CONTACT,
)

E = TypeVar("E", bound=errors.DomainError)


def builder(*, name: str = "杭州绿源新材料有限公司", credit_code: str = CREDIT_CODE) -> Builder:
    return Builder(name, credit_code, Contact("王工", "0571-85085326", "wang@example.com"))


def register(
    *tiers: Tier,
    project_code: str = PROJECT_CODE,
    name: str = "年产10万吨再生新材料项目",
    construction_unit: Builder | None = None,
    window: Window = Window.XIHU,
    industry: str = "C2929 塑料零件及其他塑料制品制造",
    location: str = "杭州市西湖区三墩镇",
    two_high_one_low: bool = False,
) -> KeyProject:
    """Register a project (default tier: city_key) and leave its Registered event pending."""
    return KeyProject.register(
        name=name,
        project_code=project_code,
        builder=construction_unit if construction_unit is not None else builder(),
        window=window,
        tiers=tiers if tiers else (Tier.CITY_KEY,),
        industry=industry,
        location=location,
        two_high_one_low=two_high_one_low,
    )


def registered(*tiers: Tier, **kwargs: Any) -> KeyProject:
    """A registered project with its pending events already collected."""
    project = register(*tiers, **kwargs)
    project.collect_events()
    return project


def major_project() -> KeyProject:
    return registered(Tier.CITY_KEY)


def district_project() -> KeyProject:
    """A key project that is not major: district level only."""
    return registered(Tier.DISTRICT_KEY)


def intervened(project: KeyProject | None = None) -> KeyProject:
    """A major project whose early intervention has started today."""
    project = project if project is not None else major_project()
    project.start_early_intervention(
        stage=Stage.FEASIBILITY, guidance="环评编制指导：明确评价等级与评价范围", today=TODAY
    )
    project.collect_events()
    return project


def with_check(project: KeyProject | None = None, due_on: date = TOMORROW) -> KeyProject:
    """A major project with early intervention and one scheduled progress check C1."""
    project = intervened(project)
    project.schedule_progress_check(due_on=due_on, today=TODAY)
    project.collect_events()
    return project


def with_officer(
    project: KeyProject | None = None,
    *,
    officer: str = "u-lead-1",
    role: OfficerRole = OfficerRole.LEAD,
) -> KeyProject:
    project = project if project is not None else major_project()
    project.assign_officer(officer=officer, name="张主办", role=role, today=TODAY)
    project.collect_events()
    return project


def with_helper(
    project: KeyProject | None = None,
    *,
    helper: str = "h-1",
    dispatched_on: date = TODAY,
) -> KeyProject:
    project = project if project is not None else major_project()
    project.dispatch_helper(
        helper=helper,
        name="李帮扶",
        reason=HelperReason.COMPLEX_SITUATION,
        today=dispatched_on,
    )
    project.collect_events()
    return project


def with_material(project: KeyProject | None = None) -> KeyProject:
    """A project with one deferred material M1, promised in a month."""
    project = project if project is not None else major_project()
    project.defer_material(
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=IN_A_MONTH,
        today=TODAY,
    )
    project.collect_events()
    return project


def spec(
    severity: Severity = Severity.KEY,
    found_in: FoundIn = FoundIn.EXPERT_REVIEW,
    description: str = "废气收集效率论证不足",
    requirement: str = "补充废气收集效率核算依据",
) -> IssueSpec:
    return IssueSpec(severity, found_in, description, requirement)


def with_letter(
    project: KeyProject | None = None,
    *,
    issues: int = 2,
    letter_no: str = "杭环提〔2024〕1号",
) -> KeyProject:
    """A project with one open reminder letter L1 whose issues are L1-I1 … L1-In."""
    project = project if project is not None else major_project()
    project.issue_reminder_letter(
        letter_no=letter_no,
        deadline=IN_A_MONTH,
        issues=tuple(spec(description=f"问题{n}") for n in range(1, issues + 1)),
        today=TODAY,
    )
    project.collect_events()
    return project


def submit(project: KeyProject, issue_id: str, letter_id: str = "L1") -> None:
    project.submit_rectification(
        letter_id=letter_id,
        issue_id=issue_id,
        summary="已补充核算依据",
        evidence=("核算报告.pdf",),
        today=TODAY,
    )


def accept(project: KeyProject, issue_id: str, letter_id: str = "L1") -> None:
    project.accept_rectification(letter_id=letter_id, issue_id=issue_id, comment=None, today=TODAY)


def with_closed_letter(project: KeyProject | None = None) -> KeyProject:
    """A project whose reminder letter L1 (one issue) was rectified, accepted and closed."""
    project = with_letter(project, issues=1)
    submit(project, "L1-I1")
    accept(project, "L1-I1")
    project.close_reminder_letter(letter_id="L1", today=TODAY)
    project.collect_events()
    return project


def state(project: KeyProject) -> dict[str, Any]:
    """Every state attribute of the aggregate, pending events aside."""
    return {k: v for k, v in vars(project).items() if k != "_pending_events"}


def assert_refused(
    project: KeyProject, error: type[E], code: str, command: Callable[[], object]
) -> E:
    """Run a command that must be refused with exactly ``error`` (whose ``code`` is ``code``)
    and check that it left the project as it was: same version, no new pending events, same
    state. Returns the error for further checks (``field``, ``detail``)."""
    version = project.version
    pending = len(project.pending_events)
    before = copy.deepcopy(state(project))
    with pytest.raises(error) as refused:
        command()
    assert type(refused.value) is error
    assert refused.value.code == code
    assert project.version == version
    assert len(project.pending_events) == pending
    assert state(project) == before
    return refused.value


def assert_invalid(project: KeyProject, field: str, command: Callable[[], object]) -> None:
    """A command refused as invalid input naming ``field``, the project left unchanged."""
    refused = assert_refused(project, errors.InvalidInput, "invalid_input", command)
    assert refused.field == field

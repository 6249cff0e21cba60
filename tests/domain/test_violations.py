"""Suspected violations referred for handling under law (包容审慎监管)."""

from __future__ import annotations

import pytest

from domain import errors
from domain.violations import ViolationReferral
from tests.domain.factory import (
    TODAY,
    assert_invalid,
    assert_refused,
    district_project,
    major_project,
    with_closed_letter,
    with_letter,
)


def test_violation_is_referred_without_a_letter() -> None:
    project = district_project()
    referral_id = project.refer_violation(
        description=" 未批先建 ", legal_basis=" 《环境影响评价法》第三十一条 ", today=TODAY
    )
    assert referral_id == "X1"
    assert project.violations == (
        ViolationReferral("X1", "未批先建", "《环境影响评价法》第三十一条", TODAY),
    )
    assert [type(e).__name__ for e in project.collect_events()] == ["ViolationReferred"]


@pytest.mark.parametrize("legal_basis", [None, "", "  "], ids=["none", "empty", "whitespace"])
def test_referral_without_legal_basis_records_none(legal_basis: str | None) -> None:
    project = major_project()
    project.refer_violation(description="未批先建", legal_basis=legal_basis, today=TODAY)
    assert project.violations[0].legal_basis is None


def test_violation_is_referred_naming_a_letter() -> None:
    project = with_letter()
    project.refer_violation(description="拒不整改", legal_basis=None, today=TODAY, letter_id="L1")
    assert (project.violations[0].letter_id, project.violations[0].issue_id) == ("L1", None)


def test_violation_is_referred_naming_a_letter_and_issue() -> None:
    project = with_letter(issues=2)
    project.refer_violation(
        description="数据造假", legal_basis=None, today=TODAY, letter_id="L1", issue_id="L1-I2"
    )
    assert (project.violations[0].letter_id, project.violations[0].issue_id) == ("L1", "L1-I2")


def test_violation_may_name_a_closed_letter() -> None:
    project = with_closed_letter()
    project.refer_violation(
        description="整改后复查发现问题", legal_basis=None, today=TODAY, letter_id="L1"
    )
    assert project.violations[0].letter_id == "L1"


def test_referrals_are_numbered_in_order() -> None:
    project = major_project()
    first = project.refer_violation(description="一", legal_basis=None, today=TODAY)
    second = project.refer_violation(description="二", legal_basis=None, today=TODAY)
    assert (first, second) == ("X1", "X2")


def test_referral_naming_an_unknown_letter_is_refused() -> None:
    project = with_letter()
    assert_refused(
        project,
        errors.LetterNotFound,
        "letter_not_found",
        lambda: project.refer_violation(
            description="未批先建", legal_basis=None, today=TODAY, letter_id="L9"
        ),
    )


def test_referral_naming_an_unknown_issue_is_refused() -> None:
    project = with_letter(issues=2)
    assert_refused(
        project,
        errors.IssueNotFound,
        "issue_not_found",
        lambda: project.refer_violation(
            description="未批先建", legal_basis=None, today=TODAY, letter_id="L1", issue_id="L1-I3"
        ),
    )


def test_referral_naming_an_issue_without_its_letter_is_refused() -> None:
    project = with_letter()
    assert_invalid(
        project,
        "letter_id",
        lambda: project.refer_violation(
            description="未批先建", legal_basis=None, today=TODAY, issue_id="L1-I1"
        ),
    )


def test_referral_without_description_is_refused() -> None:
    project = major_project()
    assert_invalid(
        project,
        "description",
        lambda: project.refer_violation(description=" ", legal_basis=None, today=TODAY),
    )

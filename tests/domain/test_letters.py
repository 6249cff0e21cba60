"""Reminder letters (温馨提醒函) and the issue-by-issue rectification loop (整改闭环)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from domain import errors
from domain.letters import (
    FoundIn,
    Issue,
    IssueSpec,
    IssueStatus,
    LetterStatus,
    Rectification,
    ReminderLetter,
    Review,
    Severity,
)
from domain.project import KeyProject
from tests.domain.factory import (
    IN_A_MONTH,
    TODAY,
    TOMORROW,
    YESTERDAY,
    accept,
    assert_invalid,
    assert_refused,
    major_project,
    spec,
    submit,
    with_closed_letter,
    with_letter,
)

Command = Callable[[KeyProject], object]


def _issue(project: KeyProject, issue_id: str, letter_id: str = "L1") -> Issue:
    issue = project.reminder_letters[letter_id].issue(issue_id)
    assert issue is not None
    return issue


def _return(project: KeyProject, issue_id: str, letter_id: str = "L1") -> None:
    project.return_rectification(
        letter_id=letter_id, issue_id=issue_id, reason="证据不足", today=TODAY
    )


def _close(project: KeyProject, letter_id: str = "L1") -> None:
    project.close_reminder_letter(letter_id=letter_id, today=TODAY)


# --- issuing -----------------------------------------------------------------------------------


def test_letter_is_issued_with_numbered_issues() -> None:
    project = major_project()
    specs = (
        IssueSpec(Severity.KEY, FoundIn.EXPERT_REVIEW, " 废气论证不足 ", " 补充核算 "),
        IssueSpec(Severity.GENERAL, FoundIn.PUBLIC_PARTICIPATION, "公示期不足", "重新公示"),
        IssueSpec(Severity.GENERAL, FoundIn.SITE_INSPECTION, "现场与报告不符", "更正"),
    )
    letter_id = project.issue_reminder_letter(
        letter_no=" 杭环提〔2024〕1号 ", deadline=IN_A_MONTH, issues=specs, today=TODAY
    )
    assert letter_id == "L1"
    assert project.reminder_letters == {
        "L1": ReminderLetter(
            "L1",
            "杭环提〔2024〕1号",
            TODAY,
            IN_A_MONTH,
            (
                Issue("L1-I1", Severity.KEY, FoundIn.EXPERT_REVIEW, "废气论证不足", "补充核算"),
                Issue(
                    "L1-I2",
                    Severity.GENERAL,
                    FoundIn.PUBLIC_PARTICIPATION,
                    "公示期不足",
                    "重新公示",
                ),
                Issue("L1-I3", Severity.GENERAL, FoundIn.SITE_INSPECTION, "现场与报告不符", "更正"),
            ),
        )
    }
    letter = project.reminder_letters["L1"]
    assert letter.status is LetterStatus.OPEN
    assert letter.closed_on is None
    assert all(i.status is IssueStatus.OPEN for i in letter.issues)
    assert [type(e).__name__ for e in project.collect_events()] == ["ReminderLetterIssued"]


def test_second_letter_numbers_its_issues_from_one() -> None:
    project = with_letter(issues=2)
    letter_id = project.issue_reminder_letter(
        letter_no="杭环提〔2024〕2号", deadline=IN_A_MONTH, issues=(spec(),), today=TODAY
    )
    assert letter_id == "L2"
    assert [i.id for i in project.reminder_letters["L2"].issues] == ["L2-I1"]


@pytest.mark.parametrize("found_in", list(FoundIn))
@pytest.mark.parametrize("severity", list(Severity))
def test_issue_of_every_severity_and_origin_is_accepted(
    severity: Severity, found_in: FoundIn
) -> None:
    project = major_project()
    project.issue_reminder_letter(
        letter_no="1号", deadline=TOMORROW, issues=(spec(severity, found_in),), today=TODAY
    )
    issue = _issue(project, "L1-I1")
    assert (issue.severity, issue.found_in) == (severity, found_in)


@pytest.mark.parametrize("letter_no", ["杭环提〔2024〕1号", " 杭环提〔2024〕1号 "])
def test_duplicate_letter_no_is_refused(letter_no: str) -> None:
    project = with_letter(letter_no="杭环提〔2024〕1号")
    assert_refused(
        project,
        errors.DuplicateLetterNo,
        "duplicate_letter_no",
        lambda: project.issue_reminder_letter(
            letter_no=letter_no, deadline=IN_A_MONTH, issues=(spec(),), today=TODAY
        ),
    )


def test_letter_no_of_a_closed_letter_is_not_reused() -> None:
    project = with_closed_letter()
    letter_no = project.reminder_letters["L1"].letter_no
    assert_refused(
        project,
        errors.DuplicateLetterNo,
        "duplicate_letter_no",
        lambda: project.issue_reminder_letter(
            letter_no=letter_no, deadline=IN_A_MONTH, issues=(spec(),), today=TODAY
        ),
    )


def test_letter_with_deadline_tomorrow_is_issued() -> None:
    project = major_project()
    project.issue_reminder_letter(letter_no="1号", deadline=TOMORROW, issues=(spec(),), today=TODAY)
    assert project.reminder_letters["L1"].deadline == TOMORROW


@pytest.mark.parametrize("deadline", [TODAY, YESTERDAY], ids=["today", "yesterday"])
def test_letter_with_deadline_today_or_earlier_is_refused(deadline: date) -> None:
    project = major_project()
    assert_invalid(
        project,
        "deadline",
        lambda: project.issue_reminder_letter(
            letter_no="1号", deadline=deadline, issues=(spec(),), today=TODAY
        ),
    )


def test_letter_without_issues_is_refused() -> None:
    project = major_project()
    assert_invalid(
        project,
        "issues",
        lambda: project.issue_reminder_letter(
            letter_no="1号", deadline=IN_A_MONTH, issues=(), today=TODAY
        ),
    )


def test_letter_without_letter_no_is_refused() -> None:
    project = major_project()
    assert_invalid(
        project,
        "letter_no",
        lambda: project.issue_reminder_letter(
            letter_no="  ", deadline=IN_A_MONTH, issues=(spec(),), today=TODAY
        ),
    )


@pytest.mark.parametrize(
    ("second", "field"),
    [
        (spec(description=" "), "issues[1].description"),
        (spec(requirement=""), "issues[1].requirement"),
    ],
    ids=["description", "requirement"],
)
def test_issue_without_description_or_requirement_is_refused_naming_it(
    second: IssueSpec, field: str
) -> None:
    project = major_project()
    assert_invalid(
        project,
        field,
        lambda: project.issue_reminder_letter(
            letter_no="1号", deadline=IN_A_MONTH, issues=(spec(), second), today=TODAY
        ),
    )


# --- the rectification loop --------------------------------------------------------------------


def test_full_loop_submit_return_resubmit_accept_close() -> None:
    project = with_letter(issues=1)
    project.submit_rectification(
        letter_id="L1",
        issue_id="L1-I1",
        summary=" 已补充核算 ",
        evidence=(" 核算报告.pdf ", "", "  ", "照片.jpg"),
        today=TODAY,
    )
    first = Rectification("已补充核算", ("核算报告.pdf", "照片.jpg"), TODAY)
    assert _issue(project, "L1-I1").status is IssueStatus.SUBMITTED
    assert _issue(project, "L1-I1").rectifications == (first,)

    project.return_rectification(letter_id="L1", issue_id="L1-I1", reason=" 证据不足 ", today=TODAY)
    returned = Review(False, "证据不足", TODAY)
    assert _issue(project, "L1-I1").status is IssueStatus.RETURNED
    assert _issue(project, "L1-I1").reviews == (returned,)

    project.submit_rectification(
        letter_id="L1",
        issue_id="L1-I1",
        summary="补充监测数据",
        evidence=("监测报告.pdf",),
        today=TOMORROW,
    )
    second = Rectification("补充监测数据", ("监测报告.pdf",), TOMORROW)
    assert _issue(project, "L1-I1").status is IssueStatus.SUBMITTED
    assert _issue(project, "L1-I1").rectifications == (first, second)

    project.accept_rectification(letter_id="L1", issue_id="L1-I1", comment=" 同意 ", today=TOMORROW)
    accepted = Review(True, "同意", TOMORROW)
    assert _issue(project, "L1-I1").status is IssueStatus.ACCEPTED
    assert _issue(project, "L1-I1").reviews == (returned, accepted)

    project.close_reminder_letter(letter_id="L1", today=TOMORROW)
    assert project.reminder_letters["L1"].status is LetterStatus.CLOSED
    assert project.reminder_letters["L1"].closed_on == TOMORROW
    assert [type(e).__name__ for e in project.collect_events()] == [
        "RectificationSubmitted",
        "RectificationReturned",
        "RectificationSubmitted",
        "RectificationAccepted",
        "ReminderLetterClosed",
    ]


@pytest.mark.parametrize("comment", [None, "", "  "], ids=["none", "empty", "whitespace"])
def test_acceptance_without_comment_records_none(comment: str | None) -> None:
    project = with_letter(issues=1)
    submit(project, "L1-I1")
    project.accept_rectification(letter_id="L1", issue_id="L1-I1", comment=comment, today=TODAY)
    assert _issue(project, "L1-I1").reviews == (Review(True, None, TODAY),)


def test_rectification_of_one_issue_leaves_the_others_open() -> None:
    project = with_letter(issues=2)
    submit(project, "L1-I2")
    assert _issue(project, "L1-I1").status is IssueStatus.OPEN
    assert _issue(project, "L1-I2").status is IssueStatus.SUBMITTED


def test_rectification_without_summary_is_refused() -> None:
    project = with_letter()
    assert_invalid(
        project,
        "summary",
        lambda: project.submit_rectification(
            letter_id="L1", issue_id="L1-I1", summary=" ", evidence=(), today=TODAY
        ),
    )


def test_return_without_reason_is_refused() -> None:
    project = with_letter()
    submit(project, "L1-I1")
    project.collect_events()
    assert_invalid(
        project,
        "reason",
        lambda: project.return_rectification(
            letter_id="L1", issue_id="L1-I1", reason="", today=TODAY
        ),
    )


def _to_status(project: KeyProject, status: IssueStatus) -> None:
    """Bring issue L1-I1 to ``status``."""
    if status is not IssueStatus.OPEN:
        submit(project, "L1-I1")
    if status is IssueStatus.RETURNED:
        _return(project, "L1-I1")
    if status is IssueStatus.ACCEPTED:
        accept(project, "L1-I1")
    project.collect_events()
    assert _issue(project, "L1-I1").status is status


REVIEWS: dict[str, Command] = {
    "accept": lambda p: accept(p, "L1-I1"),
    "return": lambda p: _return(p, "L1-I1"),
}


@pytest.mark.parametrize("review", REVIEWS.values(), ids=REVIEWS.keys())
@pytest.mark.parametrize("status", [IssueStatus.OPEN, IssueStatus.RETURNED, IssueStatus.ACCEPTED])
def test_review_of_an_issue_that_is_not_submitted_is_refused(
    review: Command, status: IssueStatus
) -> None:
    project = with_letter()
    _to_status(project, status)
    assert_refused(
        project, errors.IssueNotSubmitted, "issue_not_submitted", lambda: review(project)
    )


@pytest.mark.parametrize("status", [IssueStatus.SUBMITTED, IssueStatus.ACCEPTED])
def test_submission_on_a_submitted_or_accepted_issue_is_refused(status: IssueStatus) -> None:
    project = with_letter()
    _to_status(project, status)
    assert_refused(
        project,
        errors.IssueNotAwaitingRectification,
        "issue_not_awaiting_rectification",
        lambda: submit(project, "L1-I1"),
    )


# --- closing a letter --------------------------------------------------------------------------


def test_close_with_every_issue_open_is_refused() -> None:
    project = with_letter(issues=2)
    refused = assert_refused(
        project, errors.LetterHasOpenIssues, "letter_has_open_issues", lambda: _close(project)
    )
    assert "L1-I1" in refused.detail
    assert "L1-I2" in refused.detail


def test_close_with_one_of_two_issues_accepted_is_refused() -> None:
    project = with_letter(issues=2)
    submit(project, "L1-I1")
    accept(project, "L1-I1")
    project.collect_events()
    refused = assert_refused(
        project, errors.LetterHasOpenIssues, "letter_has_open_issues", lambda: _close(project)
    )
    assert "L1-I2" in refused.detail
    assert "L1-I1" not in refused.detail


@pytest.mark.parametrize("status", [IssueStatus.SUBMITTED, IssueStatus.RETURNED])
def test_close_with_an_issue_submitted_or_returned_is_refused(status: IssueStatus) -> None:
    project = with_letter(issues=1)
    _to_status(project, status)
    assert_refused(
        project, errors.LetterHasOpenIssues, "letter_has_open_issues", lambda: _close(project)
    )


def test_close_when_every_issue_is_accepted() -> None:
    project = with_letter(issues=2)
    for issue_id in ("L1-I1", "L1-I2"):
        submit(project, issue_id)
        accept(project, issue_id)
    project.close_reminder_letter(letter_id="L1", today=TOMORROW)
    letter = project.reminder_letters["L1"]
    assert (letter.status, letter.closed_on) == (LetterStatus.CLOSED, TOMORROW)
    assert letter.open_issues == ()


def test_closing_one_letter_leaves_another_open() -> None:
    project = with_closed_letter()
    project = with_letter(project, letter_no="2号")
    assert project.reminder_letters["L1"].status is LetterStatus.CLOSED
    assert project.reminder_letters["L2"].status is LetterStatus.OPEN


LETTER_WRITES: dict[str, Command] = {
    "submit": lambda p: submit(p, "L1-I1"),
    "accept": lambda p: accept(p, "L1-I1"),
    "return": lambda p: _return(p, "L1-I1"),
    "close": _close,
}


@pytest.mark.parametrize("write", LETTER_WRITES.values(), ids=LETTER_WRITES.keys())
def test_any_write_on_a_closed_letter_is_refused(write: Command) -> None:
    project = with_closed_letter()
    assert_refused(project, errors.LetterClosed, "letter_closed", lambda: write(project))


UNKNOWN_LETTER_WRITES: dict[str, Command] = {
    "submit": lambda p: submit(p, "L1-I1", letter_id="L9"),
    "accept": lambda p: accept(p, "L1-I1", letter_id="L9"),
    "return": lambda p: _return(p, "L1-I1", letter_id="L9"),
    "close": lambda p: _close(p, letter_id="L9"),
}


@pytest.mark.parametrize("write", UNKNOWN_LETTER_WRITES.values(), ids=UNKNOWN_LETTER_WRITES.keys())
def test_any_write_on_an_unknown_letter_is_refused(write: Command) -> None:
    project = with_letter()
    assert_refused(project, errors.LetterNotFound, "letter_not_found", lambda: write(project))


UNKNOWN_ISSUE_WRITES: dict[str, Command] = {
    "submit": lambda p: submit(p, "L1-I9"),
    "accept": lambda p: accept(p, "L1-I9"),
    "return": lambda p: _return(p, "L1-I9"),
}


@pytest.mark.parametrize("write", UNKNOWN_ISSUE_WRITES.values(), ids=UNKNOWN_ISSUE_WRITES.keys())
def test_any_write_on_an_unknown_issue_is_refused(write: Command) -> None:
    project = with_letter()
    assert_refused(project, errors.IssueNotFound, "issue_not_found", lambda: write(project))


def test_issue_of_another_letter_is_unknown_in_this_one() -> None:
    project = with_letter(issues=1)
    project = with_letter(project, issues=2, letter_no="2号")
    assert_refused(
        project,
        errors.IssueNotFound,
        "issue_not_found",
        lambda: submit(project, "L2-I2", letter_id="L1"),
    )

"""Early warnings (预警温馨提醒): each threshold at its edges, PRC working days with 调休,
each key raised once, nothing on a closed case, and the recorded warning itself."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from eventsourcing.utils import get_topic

from domain.helper_service import HelperReason, VisitKind
from domain.materials import DeferralReason
from domain.project import KeyProject
from domain.warnings import (
    RaisedWarning,
    WarningKind,
    WarningSpec,
    due_warnings,
    helper_visit_due_on,
)
from domain.working_days import is_working_day
from tests.domain.factory import (
    IN_A_MONTH,
    TODAY,
    TOMORROW,
    accept,
    major_project,
    registered,
    spec,
    submit,
    with_check,
    with_helper,
    with_letter,
    with_material,
)

# IN_A_MONTH (the deadline of with_letter's L1 and with_material's M1) is Wednesday
# 2024-07-17; no holiday near it, so its window of 3 working days opens on Friday 07-12.
BEFORE_THE_WINDOW = date(2024, 7, 11)  # Thu: Fri, Mon, Tue, Wed = 4 working days left
FIRST_IN_THE_WINDOW = date(2024, 7, 12)  # Fri: Mon, Tue, Wed = 3 left
IN_THE_WEEKEND = date(2024, 7, 13)  # Sat: still 3 left
DAY_AFTER = date(2024, 7, 18)


def keys(project: KeyProject, today: date, **kwargs: int) -> list[str]:
    return [w.key for w in due_warnings(project, today, **kwargs)]


def raise_all(project: KeyProject, today: date, **kwargs: int) -> list[str]:
    """Raises every due warning; returns their keys and leaves no events pending."""
    due = due_warnings(project, today, **kwargs)
    assert all(project.raise_warning(w, today) for w in due)
    project.collect_events()
    return [w.key for w in due]


def letter_due(deadline: date, issued_on: date, letter_no: str = "杭环提〔2024〕1号") -> KeyProject:
    project = major_project()
    project.issue_reminder_letter(
        letter_no=letter_no, deadline=deadline, issues=(spec(),), today=issued_on
    )
    project.collect_events()
    return project


def test_the_edges_below_are_around_the_factory_deadline() -> None:
    assert (IN_A_MONTH, IN_A_MONTH.weekday()) == (date(2024, 7, 17), 2)  # a Wednesday
    assert [is_working_day(BEFORE_THE_WINDOW + timedelta(days=n)) for n in range(7)] == [
        True,
        True,
        False,
        False,
        True,
        True,
        True,
    ]


# --- rectification deadlines (整改期限) ---------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (TODAY, []),
        (BEFORE_THE_WINDOW, []),
        (FIRST_IN_THE_WINDOW, ["letter:L1:due_soon"]),
        (IN_THE_WEEKEND, ["letter:L1:due_soon"]),
        (IN_A_MONTH, ["letter:L1:due_soon"]),  # the deadline day itself
        (DAY_AFTER, ["letter:L1:overdue"]),  # only the overdue one, never both at once
        (DAY_AFTER + timedelta(days=60), ["letter:L1:overdue"]),
    ],
    ids=[
        "issued",
        "day-before-window",
        "first-day",
        "weekend",
        "deadline-day",
        "day-after",
        "late",
    ],
)
def test_letter_deadline_thresholds(today: date, expected: list[str]) -> None:
    assert keys(with_letter(), today) == expected


def test_letter_due_soon_warning_names_the_letter_the_deadline_and_the_days_left() -> None:
    (warning,) = due_warnings(with_letter(), FIRST_IN_THE_WINDOW)
    assert warning == WarningSpec(
        key="letter:L1:due_soon",
        kind=WarningKind.RECTIFICATION_DUE_SOON,
        subject_id="L1",
        due_on=IN_A_MONTH,
        message="温馨提醒函 杭环提〔2024〕1号 的整改期限为 2024-07-17，还剩 3 个工作日",
    )
    (on_the_day,) = due_warnings(with_letter(), IN_A_MONTH)
    assert on_the_day.message.endswith("还剩 0 个工作日")


def test_letter_overdue_warning_counts_the_issues_not_yet_accepted() -> None:
    project = with_letter(issues=3)
    submit(project, "L1-I1")
    accept(project, "L1-I1")
    (warning,) = due_warnings(project, DAY_AFTER)
    assert warning.kind is WarningKind.RECTIFICATION_OVERDUE
    assert (warning.subject_id, warning.due_on) == ("L1", IN_A_MONTH)
    assert (
        warning.message
        == "温馨提醒函 杭环提〔2024〕1号 的整改期限 2024-07-17 已过，尚有 2 个问题未完成整改"
    )


def test_due_soon_then_overdue_each_once() -> None:
    project = with_letter()
    assert raise_all(project, FIRST_IN_THE_WINDOW) == ["letter:L1:due_soon"]
    for day in (IN_THE_WEEKEND, IN_A_MONTH):
        assert keys(project, day) == []
    assert raise_all(project, DAY_AFTER) == ["letter:L1:overdue"]
    assert keys(project, DAY_AFTER + timedelta(days=1)) == []
    assert list(project.warnings) == ["letter:L1:due_soon", "letter:L1:overdue"]


def test_a_passed_deadline_never_seen_in_its_window_raises_only_the_overdue_warning() -> None:
    project = with_letter()
    assert raise_all(project, DAY_AFTER) == ["letter:L1:overdue"]
    assert keys(project, DAY_AFTER) == []
    assert "letter:L1:due_soon" not in project.warnings


def test_a_closed_letter_warns_no_more() -> None:
    project = with_letter(issues=1)
    submit(project, "L1-I1")
    accept(project, "L1-I1")
    project.close_reminder_letter(letter_id="L1", today=TODAY)
    assert keys(project, IN_A_MONTH) == []
    assert keys(project, DAY_AFTER) == []


def test_each_letter_has_its_own_keys() -> None:
    project = with_letter()
    project.issue_reminder_letter(
        letter_no="杭环提〔2024〕2号", deadline=DAY_AFTER, issues=(spec(),), today=TODAY
    )
    assert keys(project, DAY_AFTER) == ["letter:L1:overdue", "letter:L2:due_soon"]


# --- working days around National Day 2024 (国庆节, with 调休) ------------------------------
# 2024-09-29 (Sun) and 2024-10-12 (Sat) are working days; 10-01 to 10-07 are off.


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2024, 9, 27), None),  # Fri: 09-29, 09-30, 10-08, 10-09 = 4 working days left
        (date(2024, 9, 28), None),  # Sat (off): still 4
        (date(2024, 9, 29), 3),  # Sun, a 调休 working day: 09-30, 10-08, 10-09
        (date(2024, 9, 30), 2),  # the holiday week counts for nothing
        (date(2024, 10, 3), 2),
        (date(2024, 10, 7), 2),
        (date(2024, 10, 8), 1),
        (date(2024, 10, 9), 0),  # the deadline day
    ],
)
def test_the_window_counts_prc_working_days_over_national_day(
    today: date, expected: int | None
) -> None:
    """Nine calendar days before a deadline of 2024-10-09 are only 3 working days; a plain
    Monday-to-Friday count would see 8 working days from 09-28 and warn a week late."""
    project = letter_due(date(2024, 10, 9), issued_on=date(2024, 9, 20))
    due = due_warnings(project, today)
    if expected is None:
        assert due == []
    else:
        (warning,) = due
        assert warning.key == "letter:L1:due_soon"
        assert warning.message.endswith(f"还剩 {expected} 个工作日")


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2024, 10, 9), []),  # Wed: 10-10, 10-11, 10-12 (调休 Sat), 10-14 = 4 left
        (date(2024, 10, 10), ["letter:L1:due_soon"]),  # 10-11, 10-12, 10-14 = 3 left
    ],
)
def test_a_make_up_saturday_counts_as_a_working_day(today: date, expected: list[str]) -> None:
    project = letter_due(date(2024, 10, 14), issued_on=date(2024, 9, 20))
    assert keys(project, today) == expected


def test_the_window_width_is_a_parameter() -> None:
    project = with_letter()
    assert keys(project, BEFORE_THE_WINDOW, soon_working_days=4) == ["letter:L1:due_soon"]
    assert keys(project, FIRST_IN_THE_WINDOW, soon_working_days=2) == []
    assert keys(project, date(2024, 7, 16), soon_working_days=0) == []
    assert keys(project, IN_A_MONTH, soon_working_days=0) == ["letter:L1:due_soon"]
    with pytest.raises(ValueError, match="soon_working_days"):
        due_warnings(project, TODAY, soon_working_days=-1)


def test_a_deadline_after_a_weekend_with_zero_days_warns_from_the_last_working_day() -> None:
    # deadline Monday 2024-07-22: on Friday 07-19 one working day is left, on Sat and Sun too.
    project = letter_due(date(2024, 7, 22), issued_on=TODAY)
    assert keys(project, date(2024, 7, 19), soon_working_days=0) == []
    assert keys(project, date(2024, 7, 20), soon_working_days=0) == []
    assert keys(project, date(2024, 7, 22), soon_working_days=0) == ["letter:L1:due_soon"]


# --- deferred materials (容缺材料) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (TODAY, []),
        (BEFORE_THE_WINDOW, []),
        (FIRST_IN_THE_WINDOW, ["material:M1:due_soon"]),
        (IN_A_MONTH, ["material:M1:due_soon"]),  # the promised day itself
        (DAY_AFTER, ["material:M1:overdue"]),
    ],
    ids=["deferred", "day-before-window", "first-day", "promised-day", "day-after"],
)
def test_material_promised_date_thresholds(today: date, expected: list[str]) -> None:
    assert keys(with_material(), today) == expected


def test_material_warnings_name_the_material_and_the_department() -> None:
    (soon,) = due_warnings(with_material(), FIRST_IN_THE_WINDOW)
    assert soon.kind is WarningKind.MATERIAL_DUE_SOON
    assert (soon.subject_id, soon.due_on) == ("M1", IN_A_MONTH)
    assert (
        soon.message
        == "容缺材料「规划许可证」（市规划和自然资源局）承诺于 2024-07-17 前补交，还剩 3 个工作日"
    )
    (late,) = due_warnings(with_material(), DAY_AFTER)
    assert late.kind is WarningKind.MATERIAL_OVERDUE
    assert (
        late.message
        == "容缺材料「规划许可证」（市规划和自然资源局）承诺补交日期 2024-07-17 已过，尚未补交"
    )


def test_material_due_soon_then_overdue_each_once_and_nothing_once_supplied() -> None:
    project = with_material()
    project.defer_material(
        material="节能审查意见",
        department="市发改委",
        reason=DeferralReason.NOT_DECISIVE,
        promised_by=IN_A_MONTH,
        today=TODAY,
    )
    assert raise_all(project, FIRST_IN_THE_WINDOW) == [
        "material:M1:due_soon",
        "material:M2:due_soon",
    ]
    project.supply_material(material_id="M2", note=None, today=IN_A_MONTH)
    assert raise_all(project, DAY_AFTER) == ["material:M1:overdue"]
    assert keys(project, DAY_AFTER + timedelta(days=30)) == []


# --- progress checks (定期调度) -------------------------------------------------------------


def test_progress_check_thresholds() -> None:
    project = with_check(due_on=TOMORROW)
    assert keys(project, TODAY) == []
    assert keys(project, TOMORROW) == []  # the due day itself
    (warning,) = due_warnings(project, TOMORROW + timedelta(days=1))
    assert warning == WarningSpec(
        "check:C1:overdue",
        WarningKind.PROGRESS_CHECK_OVERDUE,
        "C1",
        TOMORROW,
        "定期调度 C1 应于 2024-06-18 进行，已逾期未记录调度情况",
    )


def test_progress_check_overdue_once_and_the_next_check_has_its_own_key() -> None:
    project = with_check(due_on=TOMORROW)
    late = TOMORROW + timedelta(days=2)
    assert raise_all(project, late) == ["check:C1:overdue"]
    assert keys(project, late + timedelta(days=10)) == []
    project.record_check_outcome(
        check_id="C1", summary="已调度", next_due_on=late + timedelta(days=7), today=late
    )
    assert keys(project, late + timedelta(days=7)) == []
    assert keys(project, late + timedelta(days=8)) == ["check:C2:overdue"]


def test_a_recorded_check_warns_no_more() -> None:
    project = with_check(due_on=TOMORROW)
    project.record_check_outcome(check_id="C1", summary="完成", next_due_on=None, today=TOMORROW)
    assert keys(project, IN_A_MONTH) == []


# --- helper visits (助企服务员走访) ---------------------------------------------------------


def test_helper_visit_thresholds_from_the_dispatch() -> None:
    project = with_helper()  # dispatched TODAY, a visit every 30 days: due 2024-07-17
    assert helper_visit_due_on(project, "h-1") == IN_A_MONTH
    assert keys(project, IN_A_MONTH) == []
    (warning,) = due_warnings(project, DAY_AFTER)
    assert warning == WarningSpec(
        "helper:h-1:overdue:2024-07-17",
        WarningKind.HELPER_VISIT_OVERDUE,
        "h-1",
        IN_A_MONTH,
        "助企服务员 李帮扶（h-1）应于 2024-07-17 前走访（每 30 天一次），已逾期",
    )


def test_a_missed_cadence_warns_once_and_the_next_missed_cadence_warns_again() -> None:
    project = with_helper()
    assert raise_all(project, DAY_AFTER) == ["helper:h-1:overdue:2024-07-17"]
    assert keys(project, DAY_AFTER + timedelta(days=20)) == []  # still the same missed visit
    visited = date(2024, 7, 20)
    project.record_helper_visit(
        helper="h-1",
        visited_on=visited,
        kind=VisitKind.ON_SITE_HELP,
        findings="现场帮扶",
        follow_ups=None,
        today=visited,
    )
    assert keys(project, visited + timedelta(days=30)) == []  # 2024-08-19, due that day
    assert raise_all(project, visited + timedelta(days=31)) == ["helper:h-1:overdue:2024-08-19"]
    assert list(project.warnings) == [
        "helper:h-1:overdue:2024-07-17",
        "helper:h-1:overdue:2024-08-19",
    ]


def test_the_cadence_counts_from_the_latest_visit_whatever_order_they_were_recorded_in() -> None:
    project = with_helper()
    for visited in (date(2024, 7, 1), date(2024, 6, 20)):
        project.record_helper_visit(
            helper="h-1",
            visited_on=visited,
            kind=VisitKind.GUIDANCE,
            findings="指导",
            follow_ups=None,
            today=date(2024, 7, 2),
        )
    assert helper_visit_due_on(project, "h-1") == date(2024, 7, 31)
    assert keys(project, date(2024, 7, 31)) == []
    assert keys(project, date(2024, 8, 1)) == ["helper:h-1:overdue:2024-07-31"]


def test_each_helper_has_its_own_cadence_and_keys() -> None:
    project = with_helper()
    project.dispatch_helper(
        helper="h-2",
        name="周帮扶",
        reason=HelperReason.LEGACY_ISSUES,
        today=TODAY,
        visit_every_days=7,
    )
    assert keys(project, TODAY + timedelta(days=8)) == ["helper:h-2:overdue:2024-06-24"]


# --- once only, closure, the recorded warning ------------------------------------------


def test_raising_a_warning_records_it_once() -> None:
    project = with_letter()
    (warning,) = due_warnings(project, FIRST_IN_THE_WINDOW)
    version = project.version
    assert project.raise_warning(warning, FIRST_IN_THE_WINDOW) is True
    (event,) = project.collect_events()
    assert get_topic(type(event)) == "ecocase.KeyProject.WarningRaised"
    assert type(event).__name__ == "WarningRaised"
    recorded = RaisedWarning(
        "letter:L1:due_soon",
        WarningKind.RECTIFICATION_DUE_SOON,
        "L1",
        IN_A_MONTH,
        warning.message,
        FIRST_IN_THE_WINDOW,
    )
    assert vars(event)["warning"] == recorded
    assert project.warnings == {"letter:L1:due_soon": recorded}
    assert project.version == version + 1
    # The same key again, also on a later day, is no error and records nothing.
    assert project.raise_warning(warning, FIRST_IN_THE_WINDOW) is False
    assert project.raise_warning(warning, IN_A_MONTH) is False
    assert project.collect_events() == []
    assert project.version == version + 1
    assert project.warnings["letter:L1:due_soon"].raised_on == FIRST_IN_THE_WINDOW
    assert keys(project, IN_A_MONTH) == []


def test_due_warnings_is_pure() -> None:
    project = with_letter()
    before = (project.version, dict(project.warnings))
    first = due_warnings(project, DAY_AFTER)
    assert due_warnings(project, DAY_AFTER) == first
    assert (project.version, project.warnings) == before
    assert project.pending_events == []


def test_a_closed_project_gets_no_warnings_and_raising_one_records_nothing() -> None:
    project = with_check(with_helper(with_material()), due_on=TOMORROW)
    assert len(due_warnings(project, DAY_AFTER)) == 3  # material, check, helper
    late = due_warnings(project, DAY_AFTER)
    project.close(summary="环评已批复", today=TOMORROW)
    project.collect_events()
    assert project.is_closed
    assert due_warnings(project, DAY_AFTER) == []
    assert all(project.raise_warning(w, DAY_AFTER) is False for w in late)
    assert project.collect_events() == []
    assert project.warnings == {}


def test_a_new_project_has_no_warnings_and_nothing_is_due() -> None:
    project = registered()
    assert project.warnings == {}
    assert due_warnings(project, IN_A_MONTH) == []


def test_everything_due_at_once_in_a_stable_order() -> None:
    project = with_check(with_helper(with_material(with_letter())), due_on=TOMORROW)
    assert keys(project, DAY_AFTER) == [
        "letter:L1:overdue",
        "material:M1:overdue",
        "check:C1:overdue",
        "helper:h-1:overdue:2024-07-17",
    ]

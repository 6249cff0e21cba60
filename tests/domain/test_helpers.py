"""Helper-enterprise service officers (助企服务员): dispatch, cadence and visits."""

from __future__ import annotations

from datetime import date

import pytest

from domain import errors
from domain.helper_service import HelperDispatch, HelperReason, HelperVisit, VisitKind
from domain.project import DEFAULT_VISIT_EVERY_DAYS
from tests.domain.factory import (
    TODAY,
    TOMORROW,
    YESTERDAY,
    assert_invalid,
    assert_refused,
    major_project,
    with_helper,
)


@pytest.mark.parametrize("reason", list(HelperReason))
def test_helper_is_dispatched_for_each_reason(reason: HelperReason) -> None:
    project = major_project()
    project.dispatch_helper(helper=" h1 ", name=" 李帮扶 ", reason=reason, today=TODAY)
    assert project.helpers == {"h1": HelperDispatch("h1", "李帮扶", reason, TODAY, 30)}
    assert [type(e).__name__ for e in project.collect_events()] == ["HelperDispatched"]


def test_default_visiting_cadence_is_thirty_days() -> None:
    assert DEFAULT_VISIT_EVERY_DAYS == 30
    assert with_helper().helpers["h-1"].visit_every_days == 30


def test_duplicate_dispatch_of_one_helper_is_refused() -> None:
    project = with_helper(helper="h1")
    assert_refused(
        project,
        errors.HelperAlreadyDispatched,
        "helper_already_dispatched",
        lambda: project.dispatch_helper(
            helper="h1", name="李帮扶", reason=HelperReason.LEGACY_ISSUES, today=TOMORROW
        ),
    )


def test_two_different_helpers_may_be_dispatched() -> None:
    project = with_helper(helper="h1")
    project.dispatch_helper(
        helper="h2", name="王帮扶", reason=HelperReason.MEASURES_NOT_IN_PLACE, today=TODAY
    )
    assert list(project.helpers) == ["h1", "h2"]


@pytest.mark.parametrize("days", [1, 366])
def test_visit_cadence_at_the_edges_is_accepted(days: int) -> None:
    project = major_project()
    project.dispatch_helper(
        helper="h1",
        name="李帮扶",
        reason=HelperReason.COMPLEX_SITUATION,
        today=TODAY,
        visit_every_days=days,
    )
    assert project.helpers["h1"].visit_every_days == days


@pytest.mark.parametrize("days", [0, 367, -1])
def test_visit_cadence_outside_one_to_366_days_is_refused(days: int) -> None:
    project = major_project()
    assert_invalid(
        project,
        "visit_every_days",
        lambda: project.dispatch_helper(
            helper="h1",
            name="李帮扶",
            reason=HelperReason.COMPLEX_SITUATION,
            today=TODAY,
            visit_every_days=days,
        ),
    )


@pytest.mark.parametrize(("helper", "name", "field"), [("", "李", "helper"), ("h1", " ", "name")])
def test_dispatch_without_helper_id_or_name_is_refused(helper: str, name: str, field: str) -> None:
    project = major_project()
    assert_invalid(
        project,
        field,
        lambda: project.dispatch_helper(
            helper=helper, name=name, reason=HelperReason.COMPLEX_SITUATION, today=TODAY
        ),
    )


# --- visits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(VisitKind))
def test_visit_of_each_kind_is_recorded_today(kind: VisitKind) -> None:
    project = with_helper(helper="h1")
    visit_id = project.record_helper_visit(
        helper="h1",
        visited_on=TODAY,
        kind=kind,
        findings=" 危废暂存间未规范设置 ",
        follow_ups=" 一周内整改 ",
        today=TODAY,
    )
    assert visit_id == "V1"
    assert project.helper_visits == (
        HelperVisit("V1", "h1", TODAY, kind, "危废暂存间未规范设置", "一周内整改"),
    )
    assert [type(e).__name__ for e in project.collect_events()] == ["HelperVisitRecorded"]


def test_visits_are_numbered_in_order_across_helpers() -> None:
    project = with_helper(helper="h1", dispatched_on=YESTERDAY)
    project = with_helper(project, helper="h2", dispatched_on=YESTERDAY)
    first = project.record_helper_visit(
        helper="h1",
        visited_on=YESTERDAY,
        kind=VisitKind.GUIDANCE,
        findings="一",
        follow_ups=None,
        today=TODAY,
    )
    second = project.record_helper_visit(
        helper="h2",
        visited_on=TODAY,
        kind=VisitKind.ON_SITE_HELP,
        findings="二",
        follow_ups=None,
        today=TODAY,
    )
    assert (first, second) == ("V1", "V2")
    assert [v.helper for v in project.helper_visits] == ["h1", "h2"]


@pytest.mark.parametrize("follow_ups", [None, "", "   "], ids=["none", "empty", "whitespace"])
def test_visit_without_follow_ups_records_none(follow_ups: str | None) -> None:
    project = with_helper(helper="h1")
    project.record_helper_visit(
        helper="h1",
        visited_on=TODAY,
        kind=VisitKind.GUIDANCE,
        findings="正常",
        follow_ups=follow_ups,
        today=TODAY,
    )
    assert project.helper_visits[0].follow_ups is None


def test_visit_for_an_undispatched_helper_is_refused() -> None:
    project = with_helper(helper="h1")
    assert_refused(
        project,
        errors.HelperNotDispatched,
        "helper_not_dispatched",
        lambda: project.record_helper_visit(
            helper="h9",
            visited_on=TODAY,
            kind=VisitKind.GUIDANCE,
            findings="正常",
            follow_ups=None,
            today=TODAY,
        ),
    )


def _visit_on(visited_on: date, dispatched_on: date = TODAY) -> None:
    project = with_helper(helper="h1", dispatched_on=dispatched_on)
    assert_invalid(
        project,
        "visited_on",
        lambda: project.record_helper_visit(
            helper="h1",
            visited_on=visited_on,
            kind=VisitKind.ON_SITE_HELP,
            findings="正常",
            follow_ups=None,
            today=TODAY,
        ),
    )


def test_visit_dated_tomorrow_is_refused() -> None:
    _visit_on(TOMORROW)


def test_visit_dated_before_the_dispatch_is_refused() -> None:
    _visit_on(YESTERDAY, dispatched_on=TODAY)


def test_visit_on_the_dispatch_day_in_the_past_is_accepted() -> None:
    project = with_helper(helper="h1", dispatched_on=YESTERDAY)
    project.record_helper_visit(
        helper="h1",
        visited_on=YESTERDAY,
        kind=VisitKind.EXPERT_CONSULTATION,
        findings="专家意见已转达",
        follow_ups=None,
        today=TODAY,
    )
    assert project.helper_visits[0].visited_on == YESTERDAY


def test_visit_without_findings_is_refused() -> None:
    project = with_helper(helper="h1")
    assert_invalid(
        project,
        "findings",
        lambda: project.record_helper_visit(
            helper="h1",
            visited_on=TODAY,
            kind=VisitKind.GUIDANCE,
            findings="  ",
            follow_ups=None,
            today=TODAY,
        ),
    )

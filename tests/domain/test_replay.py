"""Replaying a project's events rebuilds it exactly; every event has a fixed, stable topic."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from domain.helper_service import HelperReason, VisitKind
from domain.intervention import Stage
from domain.letters import FoundIn, Severity
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import KeyProject
from domain.tiers import Tier
from domain.warnings import due_warnings
from tests.domain.factory import IN_A_MONTH, TODAY, TOMORROW, register, spec, state

Events = Sequence[CanMutateAggregate[UUID]]

#: Every event type of the aggregate, by its stored topic, in the order the history below
#: first raises it. Stored events name these topics forever: changing one breaks old events.
EXPECTED_TOPICS = (
    "ecocase.KeyProject.Registered",
    "ecocase.KeyProject.EarlyInterventionStarted",
    "ecocase.KeyProject.ProgressCheckScheduled",
    "ecocase.KeyProject.ProgressCheckOutcomeRecorded",
    "ecocase.KeyProject.OfficerAssigned",
    "ecocase.KeyProject.OfficerReleased",
    "ecocase.KeyProject.LeadHandedOver",
    "ecocase.KeyProject.HelperDispatched",
    "ecocase.KeyProject.HelperVisitRecorded",
    "ecocase.KeyProject.MaterialDeferred",
    "ecocase.KeyProject.MaterialSupplied",
    "ecocase.KeyProject.ReminderLetterIssued",
    "ecocase.KeyProject.RectificationSubmitted",
    "ecocase.KeyProject.RectificationReturned",
    "ecocase.KeyProject.RectificationAccepted",
    "ecocase.KeyProject.ReminderLetterClosed",
    "ecocase.KeyProject.ViolationReferred",
    "ecocase.KeyProject.WarningRaised",
    "ecocase.KeyProject.ProjectClosed",
    "ecocase.KeyProject.AuditNoteAdded",
)


def _history() -> KeyProject:
    """A project taken through every kind of command; its events are left pending."""
    p = register(Tier.DISTRICT_KEY, Tier.PROVINCIAL_KEY, two_high_one_low=True)
    p.start_early_intervention(stage=Stage.PRELIMINARY_DESIGN, guidance="指导", today=TODAY)
    p.schedule_progress_check(due_on=TOMORROW, today=TODAY)
    p.record_check_outcome(check_id="C1", summary="正常", next_due_on=IN_A_MONTH, today=TOMORROW)
    p.record_check_outcome(check_id="C2", summary="完成", next_due_on=None, today=IN_A_MONTH)
    p.assign_officer(officer="u1", name="张主办", role=OfficerRole.LEAD, today=TODAY)
    p.assign_officer(officer="u2", name="李协办", role=OfficerRole.CO_ORGANIZER, today=TODAY)
    p.release_officer(officer="u1", reason="岗位调整", today=TOMORROW)
    p.assign_officer(officer="u3", name="王主办", role=OfficerRole.LEAD, today=TOMORROW)
    p.hand_over_lead(
        from_officer="u3", to_officer="u4", name="赵主办", reason="交接", today=TOMORROW
    )
    p.dispatch_helper(
        helper="h1",
        name="赵帮扶",
        reason=HelperReason.MEASURES_NOT_IN_PLACE,
        today=TODAY,
        visit_every_days=14,
    )
    p.record_helper_visit(
        helper="h1",
        visited_on=TODAY,
        kind=VisitKind.ON_SITE_HELP,
        findings="雨污未分流",
        follow_ups="两周内整改",
        today=TOMORROW,
    )
    p.defer_material(
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=IN_A_MONTH,
        today=TODAY,
    )
    p.defer_material(
        material="节能审查意见",
        department="市发改委",
        reason=DeferralReason.NOT_DECISIVE,
        promised_by=IN_A_MONTH,
        today=TODAY,
    )
    p.supply_material(material_id="M1", note="已补交", today=TOMORROW)
    p.issue_reminder_letter(
        letter_no="杭环提〔2024〕1号",
        deadline=IN_A_MONTH,
        issues=(spec(), spec(Severity.GENERAL, FoundIn.RADIATION_PERMIT, "台账缺失", "补建台账")),
        today=TODAY,
    )
    day = TOMORROW
    p.submit_rectification(
        issue_id="L1-I1", summary="一改", evidence=("a.pdf",), letter_id="L1", today=day
    )
    p.return_rectification(issue_id="L1-I1", reason="不充分", letter_id="L1", today=day)
    p.submit_rectification(
        issue_id="L1-I1", summary="二改", evidence=("b.pdf",), letter_id="L1", today=day
    )
    p.accept_rectification(issue_id="L1-I1", comment="同意", letter_id="L1", today=day)
    p.submit_rectification(
        issue_id="L1-I2", summary="已建台账", evidence=(), letter_id="L1", today=day
    )
    p.accept_rectification(issue_id="L1-I2", comment=None, letter_id="L1", today=day)
    p.close_reminder_letter(letter_id="L1", today=IN_A_MONTH)
    p.refer_violation(
        description="未批先建",
        legal_basis="《环境影响评价法》第三十一条",
        today=TOMORROW,
        letter_id="L1",
        issue_id="L1-I2",
    )
    due = due_warnings(p, IN_A_MONTH)  # M2 due today, h1's visit overdue
    assert len(due) == 2
    for warning in due:
        assert p.raise_warning(warning, today=IN_A_MONTH)
    assert not p.raise_warning(due[0], today=IN_A_MONTH)
    p.close(summary="环评已批复", today=IN_A_MONTH)
    p.add_audit_note(note="审计抽查", today=IN_A_MONTH)
    return p


def _replay(events: Events) -> KeyProject:
    def apply(aggregate: Any, event: CanMutateAggregate[UUID]) -> Any:
        return event.mutate(aggregate)

    rebuilt = functools.reduce(apply, events, None)
    assert isinstance(rebuilt, KeyProject)
    return rebuilt


def test_replay_rebuilds_every_state_attribute() -> None:
    original = _history()
    events = original.collect_events()
    rebuilt = _replay(events)
    original_state, rebuilt_state = vars(original), vars(rebuilt)
    assert original_state.keys() == rebuilt_state.keys()
    for name, value in original_state.items():
        assert rebuilt_state[name] == value, name
    assert rebuilt == original


def test_replayed_project_has_no_pending_events() -> None:
    events = _history().collect_events()
    assert _replay(events).pending_events == []


def test_replay_is_deterministic() -> None:
    events = _history().collect_events()
    assert state(_replay(events)) == state(_replay(events))


def test_replaying_a_prefix_gives_the_state_at_that_version() -> None:
    original = _history()
    events = original.collect_events()
    at_five = _replay(events[:5])
    assert at_five.version == 5
    assert at_five.status == "open"
    assert at_five.progress_checks["C2"].summary == "完成"
    assert at_five.officers == ()


def test_history_versions_run_from_one_without_gaps() -> None:
    original = _history()
    events = original.collect_events()
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    assert original.version == len(events)
    assert {e.originator_id for e in events} == {original.id}


def test_every_event_topic_is_the_fixed_ecocase_topic() -> None:
    events = _history().collect_events()
    topics = [get_topic(type(e)) for e in events]
    assert all(t.startswith("ecocase.KeyProject.") for t in topics)
    assert tuple(dict.fromkeys(topics)) == EXPECTED_TOPICS


def test_every_topic_resolves_back_to_its_event_class() -> None:
    events = _history().collect_events()
    for event in events:
        assert resolve_topic(get_topic(type(event))) is type(event)


def test_aggregate_topic_is_fixed() -> None:
    assert get_topic(KeyProject) == "ecocase.KeyProject"
    assert resolve_topic("ecocase.KeyProject") is KeyProject
    assert get_topic(KeyProject.Registered) == "ecocase.KeyProject.Registered"


def test_every_event_class_of_the_aggregate_is_in_the_expected_topics() -> None:
    """A new event class must be added to EXPECTED_TOPICS (and so to this history)."""
    declared = {
        get_topic(value)
        for name, value in vars(KeyProject).items()
        if isinstance(value, type)
        and issubclass(value, KeyProject.Event)
        and name not in ("Event", "Created")
    }
    assert declared == set(EXPECTED_TOPICS)

"""Optimistic concurrency: a write naming a stale version (If-Match) is refused and records
nothing; writes naming no version are retried on conflict, so none is ever lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import TypeVar

import pytest

from application.cases import Acting, Cases
from application.mapper import stamp_of
from application.store import CaseStore
from domain import errors
from domain.actor import Actor
from domain.materials import DeferralReason
from domain.project import KeyProject
from tests.conftest import RegisterMajor

WRITERS = 50
T = TypeVar("T")


def all_at_once(count: int, write: Callable[[int], T]) -> list[T | Exception]:
    """Runs ``write(0..count-1)`` on ``count`` threads released together."""
    start = threading.Barrier(count)

    def run(n: int) -> T | Exception:
        start.wait()
        try:
            return write(n)
        except Exception as e:  # noqa: BLE001 - every outcome is asserted on by the test
            return e

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_write_with_the_current_version_succeeds(
    cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    noted = cases.add_audit_note(
        Acting(officer, "req-1", expected_version=1), project.id, note="资料齐全"
    )
    assert noted.version == 2


def test_write_with_a_stale_version_is_refused_and_records_nothing(
    cases: Cases, store: CaseStore, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    cases.add_audit_note(Acting(officer, "req-1", expected_version=1), project.id, note="第一条")
    with pytest.raises(errors.VersionMismatch) as refused:
        cases.add_audit_note(
            Acting(officer, "req-stale", expected_version=1), project.id, note="基于旧版本的备注"
        )
    assert refused.value.code == "version_mismatch"
    assert (refused.value.expected, refused.value.actual) == (1, 2)
    after = cases.get(officer, project.id)
    assert after.version == 2
    assert [n.note for n in after.audit_notes] == ["第一条"]
    assert len(store.recorder.select_events(project.id)) == 2
    assert "req-stale" not in {
        e.stamp.request_id for e in cases.history(officer, project.id) if e.stamp
    }


def test_write_expecting_a_future_version_is_refused(
    cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    with pytest.raises(errors.VersionMismatch):
        cases.add_audit_note(Acting(officer, "req-x", expected_version=5), project.id, note="x")
    assert cases.get(officer, project.id).version == 1


@pytest.mark.timeout(120)
def test_racing_writes_expecting_the_same_version_let_exactly_one_through(
    cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    outcomes = all_at_once(
        8,
        lambda n: cases.add_audit_note(
            Acting(officer, f"req-{n}", expected_version=1), project.id, note=f"并发备注 {n}"
        ),
    )
    winners = [o for o in outcomes if isinstance(o, KeyProject)]
    refusals = [o for o in outcomes if not isinstance(o, KeyProject)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, errors.VersionMismatch) for o in refusals), refusals
    after = cases.get(officer, project.id)
    assert after.version == 2
    assert len(after.audit_notes) == 1


@pytest.mark.timeout(120)
def test_fifty_concurrent_writes_without_a_version_are_all_recorded(
    cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    outcomes = all_at_once(
        WRITERS,
        lambda n: cases.add_audit_note(
            Acting(officer, f"req-{n}"), project.id, note=f"并发审计备注 #{n:02d}"
        ),
    )
    assert all(isinstance(o, KeyProject) for o in outcomes), [
        o for o in outcomes if not isinstance(o, KeyProject)
    ]
    after = cases.get(officer, project.id)
    assert after.version == 1 + WRITERS
    notes = [n.note for n in after.audit_notes]
    assert len(notes) == len(set(notes)) == WRITERS
    assert set(notes) == {f"并发审计备注 #{n:02d}" for n in range(WRITERS)}
    history = cases.history(officer, project.id)
    assert [e.version for e in history] == list(range(1, WRITERS + 2))
    stamps = [e.stamp for e in history[1:]]
    assert all(s is not None and s.actor == officer for s in stamps)
    assert {s.request_id for s in stamps if s} == {f"req-{n}" for n in range(WRITERS)}


@pytest.mark.timeout(120)
def test_concurrent_deferrals_each_get_their_own_material_id(
    cases: Cases, store: CaseStore, officer: Actor, register_major: RegisterMajor
) -> None:
    """Each retry recomputes on the latest state, so ids (M1, M2, …) never collide."""
    project = register_major()
    count = 20
    outcomes = all_at_once(
        count,
        lambda n: cases.defer_material(
            Acting(officer, f"req-{n}"),
            project.id,
            material=f"材料{n}",
            department="市发改委",
            reason=DeferralReason.NOT_DECISIVE,
            promised_by=date(2026, 12, 31),
        ),
    )
    results = [o for o in outcomes if isinstance(o, tuple)]
    assert len(results) == count, outcomes
    after = cases.get(officer, project.id)
    assert after.version == 1 + count
    assert sorted(after.deferred_materials) == sorted(f"M{i}" for i in range(1, count + 1))
    for n, (_, material_id) in enumerate(results):
        assert after.deferred_materials[material_id].material == f"材料{n}"
    for domain_event in store.events.get(project.id, gt=1):
        stamp = stamp_of(domain_event)
        assert stamp is not None
        assert stamp.actor == officer

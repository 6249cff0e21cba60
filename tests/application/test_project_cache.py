"""The in-process project cache (no database): least recently used out, the newer of racing
puts kept, projects heard behind stay behind, entries loaded before ``all_behind`` not kept;
and the cheap ``KeyProject.__deepcopy__`` the cache hands out: a copy is the caller's own."""

from __future__ import annotations

import copy
import inspect
import threading
import uuid
from collections.abc import Callable
from datetime import date

import pytest

from application.project_cache import Cached, ProjectCache
from domain.helper_service import HelperReason, VisitKind
from domain.intervention import Stage
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import KeyProject
from domain.warnings import WarningKind, WarningSpec
from tests.domain.factory import (
    IN_A_MONTH,
    OTHER_PROJECT_CODE,
    TODAY,
    accept,
    major_project,
    register,
    registered,
    spec,
    state,
    submit,
    with_check,
    with_closed_letter,
    with_helper,
    with_letter,
    with_material,
    with_officer,
)


def project_at(version: int, project_code: str = OTHER_PROJECT_CODE) -> KeyProject:
    """A registered project carried to ``version`` with audit notes, its events collected."""
    project = registered(project_code=project_code)
    for n in range(2, version + 1):
        project.add_audit_note(note=f"备注 {n}", today=TODAY)
    project.collect_events()
    assert project.version == version
    return project


def entry(project: KeyProject) -> Cached:
    return Cached(project, head=None)


def code(n: int) -> str:
    return f"2024-330100-44-01-{n:06d}"


# --- the cache --------------------------------------------------------------------------------


def test_a_cache_holds_at_least_one_project() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ProjectCache(0)


def test_the_least_recently_used_project_goes_first_when_the_cache_is_full() -> None:
    cache = ProjectCache(3)
    a, b, c, d = (project_at(1, code(n)) for n in range(1, 5))
    for project in (a, b, c):
        cache.put(project.id, entry(project))
    assert cache.get(a.id) is not None  # a is now the most recently used

    cache.put(d.id, entry(d))

    assert len(cache) == 3
    assert cache.get(b.id) is None
    for kept in (a, c, d):
        held = cache.get(kept.id)
        assert held is not None
        assert held.project is kept


@pytest.mark.timeout(60)
def test_racing_puts_keep_the_newest_version() -> None:
    """Every thread puts the newest version first and then older ones (as a read loaded before
    a save would): whichever put comes last, the newest stays."""
    newest = 12
    versions = [project_at(v) for v in range(1, newest + 1)]
    project_id = versions[0].id
    cache = ProjectCache(4)
    threads = 8
    start = threading.Barrier(threads)

    def put_all(seed: int) -> None:
        older = versions[:-1]  # every thread in its own order: rotated by its number
        older = older[seed % len(older) :] + older[: seed % len(older)]
        start.wait()
        for _ in range(50):
            cache.put(project_id, entry(versions[-1]))
            for project in older:
                cache.put(project_id, entry(project))

    workers = [threading.Thread(target=put_all, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    held = cache.get(project_id)
    assert held is not None
    assert held.project.version == newest
    assert held.project is versions[-1]
    assert len(cache) == 1


def test_a_project_heard_saved_at_a_later_version_is_behind() -> None:
    cache = ProjectCache(10)
    v2, v3 = project_at(2), project_at(3)
    cache.put(v2.id, entry(v2))
    held = cache.get(v2.id)
    assert held is not None
    assert not cache.is_behind(held)

    cache.saw(v2.id, 3)
    assert cache.is_behind(held)

    cache.saw(v2.id, 2)  # older news, heard late, does not undo the newer
    assert cache.is_behind(held)

    cache.put(v3.id, entry(v3))
    fresh = cache.get(v3.id)
    assert fresh is not None
    assert fresh.project.version == 3
    assert not cache.is_behind(fresh)


def test_an_entry_put_after_the_news_of_a_later_save_is_behind() -> None:
    """A read that loaded version 4 before another process saved 5 puts its entry after the
    notification of 5 arrived: the entry is behind from the start."""
    cache = ProjectCache(10)
    v4 = project_at(4)
    cache.saw(v4.id, 5)
    cache.put(v4.id, entry(v4))
    held = cache.get(v4.id)
    assert held is not None
    assert cache.is_behind(held)


def test_a_project_never_heard_of_is_not_behind() -> None:
    cache = ProjectCache(10)
    project = project_at(3)
    cache.saw(uuid.uuid4(), 9)
    assert not cache.is_behind(entry(project))


def test_a_project_heard_behind_stays_behind_while_other_projects_are_heard() -> None:
    """The cache holds P at version 1 and hears that P was saved at 2; nobody reads P. Then
    other processes save other projects (a busy office). P's entry must still not pass for the
    stored head: answered as current, version 1 would be served for as long as P is not saved
    again."""
    cache = ProjectCache(1)
    p = project_at(1)
    cache.put(p.id, entry(p))

    def current() -> bool:
        held = cache.get(p.id)  # dropped, or held and known to be behind: not current
        return held is not None and not cache.is_behind(held)

    assert current()
    cache.saw(p.id, 2)
    assert not current()

    for _ in range(10):
        cache.saw(uuid.uuid4(), 1)

    assert not current(), "version 1 passes for the stored head again"


def test_all_behind_drops_every_entry() -> None:
    cache = ProjectCache(10)
    a, b = project_at(1, code(1)), project_at(2, code(2))
    cache.put(a.id, entry(a))
    cache.put(b.id, entry(b))
    cache.all_behind()
    assert len(cache) == 0
    assert cache.get(a.id) is None
    assert cache.get(b.id) is None


def test_an_entry_loaded_before_all_behind_is_not_kept() -> None:
    cache = ProjectCache(10)
    loaded = project_at(2)
    generation = cache.generation  # read before loading, as CaseStore.get_project does

    cache.all_behind()  # e.g. the LISTEN was (re)established while the load ran
    cache.put(loaded.id, entry(loaded), generation)

    assert cache.get(loaded.id) is None
    assert len(cache) == 0

    cache.put(loaded.id, entry(loaded), cache.generation)  # loaded in the current generation
    held = cache.get(loaded.id)
    assert held is not None
    assert held.project is loaded


def test_dropping_a_project_forgets_only_that_project() -> None:
    cache = ProjectCache(10)
    a, b = project_at(1, code(1)), project_at(1, code(2))
    cache.put(a.id, entry(a))
    cache.put(b.id, entry(b))
    cache.drop(a.id)
    cache.drop(uuid.uuid4())  # unknown: nothing happens
    assert cache.get(a.id) is None
    assert cache.get(b.id) is not None


# --- KeyProject.__deepcopy__ ------------------------------------------------------------------


def busy_project() -> KeyProject:
    """A major project with one of nearly everything: intervention and check C1, lead officer
    u-lead-1, helper h-1, deferred material M1, letter L1 with L1-I1 submitted and L1-I2 open."""
    project = with_letter(with_material(with_helper(with_officer(with_check()))), issues=2)
    submit(project, "L1-I1")
    project.collect_events()
    return project


def letter_all_accepted() -> KeyProject:
    project = with_letter(issues=1)
    submit(project, "L1-I1")
    accept(project, "L1-I1")
    project.collect_events()
    return project


WARNING = WarningSpec(
    "material:M1:due_soon", WarningKind.MATERIAL_DUE_SOON, "M1", IN_A_MONTH, "容缺材料即将到期"
)

#: Every command of the aggregate, each on a project it is valid on.
COMMANDS: list[tuple[str, Callable[[], KeyProject], Callable[[KeyProject], object]]] = [
    (
        "start_early_intervention",
        major_project,
        lambda p: p.start_early_intervention(stage=Stage.APPROVAL, guidance="指导", today=TODAY),
    ),
    (
        "schedule_progress_check",
        busy_project,
        lambda p: p.schedule_progress_check(due_on=IN_A_MONTH, today=TODAY),
    ),
    (
        "record_check_outcome",
        busy_project,
        lambda p: p.record_check_outcome(
            check_id="C1", summary="按期推进", next_due_on=IN_A_MONTH, today=TODAY
        ),
    ),
    (
        "assign_officer",
        busy_project,
        lambda p: p.assign_officer(
            officer="u-joint-1", name="协办", role=OfficerRole.JOINT, today=TODAY
        ),
    ),
    (
        "release_officer",
        busy_project,
        lambda p: p.release_officer(officer="u-lead-1", reason="岗位调整", today=TODAY),
    ),
    (
        "hand_over_lead",
        busy_project,
        lambda p: p.hand_over_lead(
            from_officer="u-lead-1", to_officer="u-lead-2", name="接任", reason="调岗", today=TODAY
        ),
    ),
    (
        "dispatch_helper",
        busy_project,
        lambda p: p.dispatch_helper(
            helper="h-2", name="郑华", reason=HelperReason.LEGACY_ISSUES, today=TODAY
        ),
    ),
    (
        "record_helper_visit",
        busy_project,
        lambda p: p.record_helper_visit(
            helper="h-1",
            visited_on=TODAY,
            kind=VisitKind.GUIDANCE,
            findings="现场指导",
            follow_ups="跟进",
            today=TODAY,
        ),
    ),
    (
        "defer_material",
        busy_project,
        lambda p: p.defer_material(
            material="排水许可",
            department="市城管局",
            reason=DeferralReason.NOT_DECISIVE,
            promised_by=IN_A_MONTH,
            today=TODAY,
        ),
    ),
    (
        "supply_material",
        busy_project,
        lambda p: p.supply_material(material_id="M1", note="已补交", today=TODAY),
    ),
    (
        "issue_reminder_letter",
        busy_project,
        lambda p: p.issue_reminder_letter(
            letter_no="杭环提〔2024〕2号", deadline=IN_A_MONTH, issues=(spec(),), today=TODAY
        ),
    ),
    ("submit_rectification", busy_project, lambda p: submit(p, "L1-I2")),
    ("accept_rectification", busy_project, lambda p: accept(p, "L1-I1")),
    (
        "return_rectification",
        busy_project,
        lambda p: p.return_rectification(
            letter_id="L1", issue_id="L1-I1", reason="证据不足", today=TODAY
        ),
    ),
    (
        "close_reminder_letter",
        letter_all_accepted,
        lambda p: p.close_reminder_letter(letter_id="L1", today=TODAY),
    ),
    (
        "refer_violation",
        busy_project,
        lambda p: p.refer_violation(
            description="未批先建",
            legal_basis="环境影响评价法第二十五条",
            letter_id="L1",
            issue_id="L1-I1",
            today=TODAY,
        ),
    ),
    ("close", with_closed_letter, lambda p: p.close(summary="结案", today=TODAY)),
    ("add_audit_note", busy_project, lambda p: p.add_audit_note(note="审计抽查", today=TODAY)),
    ("raise_warning", busy_project, lambda p: p.raise_warning(WARNING, TODAY)),
]


def test_every_command_of_the_aggregate_is_covered() -> None:
    """A new command must join COMMANDS, so that its state change is checked on a copy."""
    public = {
        name
        for name, member in vars(KeyProject).items()
        if inspect.isfunction(member) and not name.startswith("_") and name != "create_id"
    }
    assert public == {name for name, _, _ in COMMANDS}


@pytest.mark.parametrize(
    ("build", "command"), [(b, c) for _, b, c in COMMANDS], ids=[n for n, _, _ in COMMANDS]
)
def test_a_command_on_a_copy_leaves_the_original_as_it_was(
    build: Callable[[], KeyProject], command: Callable[[KeyProject], object]
) -> None:
    original = build()
    before = copy.deepcopy(state(original))  # the generic deep copy: the values themselves
    attributes = dict(vars(original))

    copied = copy.deepcopy(original)
    command(copied)

    assert copied.version == original.version + 1
    assert len(copied.pending_events) == 1
    assert state(copied) != state(original)
    assert state(original) == before
    assert vars(original).keys() == attributes.keys()
    assert all(vars(original)[name] is value for name, value in attributes.items())
    assert original.pending_events == []


def test_a_copy_starts_equal_to_its_original() -> None:
    original = busy_project()
    copied = copy.deepcopy(original)
    assert copied is not original
    assert type(copied) is KeyProject
    assert state(copied) == state(original)
    assert copied.version == original.version
    assert copied.id == original.id


def test_a_copy_does_not_share_pending_events_with_its_original() -> None:
    original = register()  # its Registered event still pending
    [registered_event] = original.pending_events

    copied = copy.deepcopy(original)
    copied.add_audit_note(note="只在副本上", today=TODAY)

    assert original.pending_events == [registered_event]
    assert len(copied.pending_events) == 2

    collected = copied.collect_events()
    assert len(collected) == 2
    assert copied.pending_events == []
    assert original.pending_events == [registered_event]
    assert original.version == 1
    assert original.audit_notes == ()


def test_a_copy_within_a_container_is_copied_once() -> None:
    """deepcopy's memo: the same project twice in one structure is one copy."""
    original = major_project()
    pair = copy.deepcopy([original, original])
    assert pair[0] is pair[1]
    assert pair[0] is not original


def test_a_copy_changes_through_its_own_dicts_only() -> None:
    """The copy-on-write state: a change on the copy gives the copy a new dict and leaves the
    original's dict (still shared before the change) untouched."""
    original = busy_project()
    copied = copy.deepcopy(original)
    assert copied.deferred_materials is original.deferred_materials  # shared until a change

    copied.defer_material(
        material="排水许可",
        department="市城管局",
        reason=DeferralReason.NOT_DECISIVE,
        promised_by=date(2024, 7, 1),
        today=TODAY,
    )

    assert copied.deferred_materials is not original.deferred_materials
    assert sorted(copied.deferred_materials) == ["M1", "M2"]
    assert sorted(original.deferred_materials) == ["M1"]

"""The project cache of one process against the saves of another, on one PostgreSQL schema.

Two CaseStores on one schema play two processes. With ``keep_coherent()`` a store hears every
other process's saves and answers the projects nobody touched from its cache; without it, a
command's first attempt runs on the project as last seen, and a refusal or a conflict on that
stale state is retried on the stored one before it is given."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date

import pytest

from application.cases import Acting, Cases
from application.store import CaseStore
from domain import errors
from domain.actor import Actor, Role, Stamp
from domain.materials import DeferralReason, MaterialStatus
from domain.project import KeyProject
from domain.windows import Window
from tests import pg
from tests.conftest import Clock, register_major_project
from tests.domain.factory import TODAY, register

pytestmark = pytest.mark.postgres

OFFICER = Actor("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU)
RECORDER_TOPIC = "application.pg_recorder:OrderedRecorder"  # as application/settings.py sets

Opener = Callable[[], CaseStore]


def opener(schema: str, opened: list[CaseStore]) -> Opener:
    env = pg.postgres_env(schema, APPLICATION_RECORDER_TOPIC=RECORDER_TOPIC)

    def open_() -> CaseStore:
        opened.append(CaseStore(env=env))
        return opened[-1]

    return open_


@pytest.fixture
def open_store() -> Iterator[Opener]:
    """Opens CaseStores on one fresh schema (each one a process of the service); all are
    closed before the schema is dropped."""
    opened: list[CaseStore] = []
    with pg.fresh_schema() as schema:
        yield opener(schema, opened)
        for store in reversed(opened):
            store.close()


@pytest.fixture
def open_store_elsewhere() -> Iterator[Opener]:
    """Opens CaseStores on another fresh schema of the same database."""
    opened: list[CaseStore] = []
    with pg.fresh_schema() as schema:
        yield opener(schema, opened)
        for store in reversed(opened):
            store.close()


def unique_code() -> str:
    """A project code no other test uses: saves of every schema in the database are heard on
    one channel, and a project's id comes from its code."""
    return f"2024-330100-44-01-{uuid.uuid4().int % 10**6:06d}"


def stamp() -> Stamp:
    return Stamp(OFFICER, f"req-{uuid.uuid4().hex[:8]}")


def registered_in(store: CaseStore, project_code: str | None = None) -> KeyProject:
    project = register(project_code=project_code or unique_code())
    store.save(project, stamp=stamp())
    return project


def note_in(store: CaseStore, project_id: uuid.UUID, note: str) -> int:
    """Adds an audit note through ``store`` (on fresh state); the version it was stored at."""
    project = store.get_project(project_id)
    project.add_audit_note(note=note, today=TODAY)
    store.save(project, stamp=stamp())
    return project.version


def eventually(condition: Callable[[], bool], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def coherent(store: CaseStore) -> CaseStore:
    assert store.keep_coherent(), "the LISTEN is in place"
    return store


# --- keep_coherent ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_save_by_another_process_marks_the_cached_project_behind(open_store: Opener) -> None:
    a = coherent(open_store())
    b = open_store()
    p = registered_in(b)
    q = registered_in(b)
    assert a.get_project(p.id).version == 1
    assert a.get_project(q.id).version == 1
    assert eventually(lambda: a.cached_project(p.id) is not None)

    assert note_in(b, p.id, "另一进程的备注") == 2

    assert eventually(lambda: a.cached_project(p.id) is None), "A still answers P as version 1"
    now = a.get_project(p.id)
    assert now.version == 2
    assert [n.note for n in now.audit_notes] == ["另一进程的备注"]
    again = a.cached_project(p.id)  # the read brought the cache up to date
    assert again is not None
    assert again.version == 2
    untouched = a.cached_project(q.id)
    assert untouched is not None, "a project nobody saved is answered from the cache"
    assert untouched.version == 1


@pytest.mark.timeout(60)
def test_a_save_too_large_to_name_its_projects_marks_every_cached_project_behind(
    open_store: Opener,
) -> None:
    a = coherent(open_store())
    b = open_store()
    q = registered_in(b)
    a.get_project(q.id)
    assert eventually(lambda: a.cached_project(q.id) is not None)

    many = [register(project_code=f"2024-330100-44-02-{n:06d}") for n in range(300)]
    b.save(*many, stamp=stamp())  # its NOTIFY says only "*"

    assert eventually(lambda: a.cached_project(q.id) is None)
    assert a.get_project(q.id).version == 1


@pytest.mark.timeout(60)
def test_a_store_that_stopped_listening_answers_nothing_from_its_cache(
    open_store: Opener,
) -> None:
    a = coherent(open_store())
    b = open_store()
    p = registered_in(b)
    a.get_project(p.id)
    assert eventually(lambda: a.cached_project(p.id) is not None)
    assert a.coherence is not None

    a.coherence.stop()
    assert a.cached_project(p.id) is None
    assert note_in(b, p.id, "没有人听到") == 2
    assert a.get_project(p.id).version == 2  # a read asks the store for what came after


@pytest.mark.timeout(60)
def test_a_save_in_another_schema_does_not_mark_a_cached_project_behind(
    open_store: Opener, open_store_elsewhere: Opener
) -> None:
    """Two services (say staging and production) in two schemas of one database, with one
    project code registered in both: a save in the other schema changed nothing here, so the
    cached project stays answerable without a query."""
    a = coherent(open_store())
    b = open_store()
    elsewhere = open_store_elsewhere()
    project_code = unique_code()
    p = registered_in(b, project_code)
    r = registered_in(b)
    a.get_project(p.id)
    a.get_project(r.id)
    assert eventually(lambda: a.cached_project(p.id) is not None)

    registered_in(elsewhere, project_code)
    note_in(elsewhere, p.id, "另一个库的备注")
    # A save here, committed after those: once A has heard it, it has heard them too.
    note_in(b, r.id, "本库的备注")
    assert eventually(lambda: a.cached_project(r.id) is None)

    assert a.cached_project(p.id) is not None, "a save in another schema made P look behind"


# --- commands on a stale cache (no coherence) -------------------------------------------------


@pytest.fixture
def two_processes(open_store: Opener) -> tuple[Cases, Cases]:
    """The use cases on two stores of one schema, neither keeping its cache coherent."""
    return Cases(open_store(), clock=Clock()), Cases(open_store(), clock=Clock())


@pytest.mark.timeout(60)
def test_a_command_refused_on_the_stale_cache_is_retried_on_fresh_state(
    two_processes: tuple[Cases, Cases],
) -> None:
    """A registered P (cached, version 1); B defers a material; A marks it supplied. A's cache
    knows no such material: the refusal is not given before the stored state is asked."""
    a, b = two_processes
    p = register_major_project(a, Acting(OFFICER, "req-register"), unique_code())
    _, material_id = b.defer_material(
        Acting(OFFICER, "req-defer"),
        p.id,
        material="取水许可批复",
        department="市林水局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=date(2026, 12, 31),
    )
    assert a.store.get_project(p.id, fresh=False).version == 1  # A's cache is behind

    supplied = a.supply_material(Acting(OFFICER, "req-supply"), p.id, material_id, note="已补交")

    assert supplied.version == 3
    stored = b.get(OFFICER, p.id)
    assert stored.version == 3
    assert stored.deferred_materials[material_id].status is MaterialStatus.SUPPLIED
    assert [e.type for e in b.history(OFFICER, p.id)] == [
        "Registered",
        "MaterialDeferred",
        "MaterialSupplied",
    ]


@pytest.mark.timeout(60)
def test_if_match_is_decided_on_the_stored_version_not_the_cached_one(
    two_processes: tuple[Cases, Cases],
) -> None:
    a, b = two_processes
    p = register_major_project(a, Acting(OFFICER, "req-register"), unique_code())
    b.add_audit_note(Acting(OFFICER, "req-b1"), p.id, note="B 的第一条")
    assert a.store.get_project(p.id, fresh=False).version == 1  # A's cache is behind

    written = a.add_audit_note(
        Acting(OFFICER, "req-a-current", expected_version=2), p.id, note="A 基于版本 2"
    )
    assert written.version == 3

    b.add_audit_note(Acting(OFFICER, "req-b2"), p.id, note="B 的第二条")
    assert a.store.get_project(p.id, fresh=False).version == 3  # A last saw its own write
    with pytest.raises(errors.VersionMismatch) as refused:
        a.add_audit_note(
            Acting(OFFICER, "req-a-stale", expected_version=3), p.id, note="A 基于旧版本"
        )
    assert (refused.value.expected, refused.value.actual) == (3, 4)

    stored = b.get(OFFICER, p.id)
    assert stored.version == 4
    assert [n.note for n in stored.audit_notes] == ["B 的第一条", "A 基于版本 2", "B 的第二条"]
    assert "req-a-stale" not in {e.stamp.request_id for e in b.history(OFFICER, p.id) if e.stamp}

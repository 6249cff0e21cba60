"""Who may read, write and register which project (roles and window jurisdiction)."""

from __future__ import annotations

import pytest

from domain.access import may_read, may_register, may_write
from domain.actor import Actor, Role
from domain.officers import OfficerRole
from domain.windows import Window
from tests.domain.factory import TODAY, registered

OWN = Window.XIHU
OTHER = Window.XIAOSHAN
NOBODY: frozenset[str] = frozenset()
BRANCHES = [w for w in Window if w is not Window.CITY]


def actor(role: Role, unit: Window = OWN, sub: str = "u1") -> Actor:
    return Actor(sub, "张三", role, unit)


def on_case(sub: str = "u1") -> frozenset[str]:
    return frozenset({sub, "someone-else"})


# --- auditors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("window", list(Window))
def test_auditor_reads_every_window(window: Window) -> None:
    assert may_read(actor(Role.AUDITOR), window, NOBODY)


@pytest.mark.parametrize("officers", [NOBODY, on_case()], ids=["not_on_case", "on_case"])
@pytest.mark.parametrize("window", [OWN, OTHER, Window.CITY])
def test_auditor_writes_nothing(window: Window, officers: frozenset[str]) -> None:
    assert not may_write(actor(Role.AUDITOR), window, officers)


@pytest.mark.parametrize("window", [OWN, OTHER])
def test_auditor_registers_nothing(window: Window) -> None:
    assert not may_register(actor(Role.AUDITOR), window)


# --- officers ----------------------------------------------------------------------------------


def test_officer_reads_and_writes_own_window() -> None:
    assert may_read(actor(Role.OFFICER), OWN, NOBODY)
    assert may_write(actor(Role.OFFICER), OWN, NOBODY)


def test_officer_neither_reads_nor_writes_other_window_when_not_on_the_case() -> None:
    assert not may_read(actor(Role.OFFICER), OTHER, NOBODY)
    assert not may_write(actor(Role.OFFICER), OTHER, NOBODY)


def test_officer_reads_and_writes_other_window_when_on_the_case() -> None:
    assert may_read(actor(Role.OFFICER), OTHER, on_case("u1"))
    assert may_write(actor(Role.OFFICER), OTHER, on_case("u1"))


def test_another_officer_on_the_case_gives_no_access() -> None:
    assert not may_write(actor(Role.OFFICER, sub="u1"), OTHER, on_case("u2"))


def test_city_bureau_officer_does_not_write_branch_projects_unless_on_the_case() -> None:
    city_officer = actor(Role.OFFICER, unit=Window.CITY)
    assert not may_read(city_officer, OWN, NOBODY)
    assert not may_write(city_officer, OWN, NOBODY)
    assert may_write(city_officer, OWN, on_case())


def test_officer_access_follows_the_project_officer_network() -> None:
    project = registered(window=OTHER)
    guest = actor(Role.OFFICER, unit=OWN, sub="u-guest")
    assert not may_write(guest, project.window, project.officers_on_case)
    project.assign_officer(officer="u-guest", name="客", role=OfficerRole.JOINT, today=TODAY)
    assert may_write(guest, project.window, project.officers_on_case)
    project.release_officer(officer="u-guest", reason="完成", today=TODAY)
    assert not may_write(guest, project.window, project.officers_on_case)
    assert not may_read(guest, project.window, project.officers_on_case)


# --- supervisors -------------------------------------------------------------------------------


@pytest.mark.parametrize("window", list(Window))
def test_city_supervisor_reads_every_window(window: Window) -> None:
    assert may_read(actor(Role.SUPERVISOR, unit=Window.CITY), window, NOBODY)


@pytest.mark.parametrize("unit", BRANCHES)
def test_branch_supervisor_reads_own_window(unit: Window) -> None:
    assert may_read(actor(Role.SUPERVISOR, unit=unit), unit, NOBODY)


@pytest.mark.parametrize("window", [OTHER, Window.CITY])
def test_branch_supervisor_does_not_read_another_window(window: Window) -> None:
    assert not may_read(actor(Role.SUPERVISOR, unit=OWN), window, NOBODY)


def test_supervisor_writes_like_an_officer() -> None:
    supervisor = actor(Role.SUPERVISOR, unit=OWN)
    assert may_write(supervisor, OWN, NOBODY)
    assert not may_write(supervisor, OTHER, NOBODY)
    assert may_write(supervisor, OTHER, on_case())


def test_city_supervisor_reads_but_does_not_write_branch_projects() -> None:
    supervisor = actor(Role.SUPERVISOR, unit=Window.CITY)
    assert may_read(supervisor, OWN, NOBODY)
    assert not may_write(supervisor, OWN, NOBODY)
    assert may_write(supervisor, Window.CITY, NOBODY)


# --- admins ------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", list(Window))
def test_admin_reads_writes_and_registers_everywhere(window: Window) -> None:
    admin = actor(Role.ADMIN, unit=OWN)
    assert may_read(admin, window, NOBODY)
    assert may_write(admin, window, NOBODY)
    assert may_register(admin, window)


# --- registering -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OFFICER, Role.SUPERVISOR])
def test_staff_register_only_in_their_own_window(role: Role) -> None:
    assert may_register(actor(role, unit=OWN), OWN)
    assert not may_register(actor(role, unit=OWN), OTHER)


@pytest.mark.parametrize("role", [Role.OFFICER, Role.SUPERVISOR])
def test_city_bureau_staff_do_not_register_for_a_branch(role: Role) -> None:
    assert may_register(actor(role, unit=Window.CITY), Window.CITY)
    assert not may_register(actor(role, unit=Window.CITY), OWN)

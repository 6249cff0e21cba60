"""Shared fixtures: event stores of every kind, the use cases on a fixed clock, actors.

``store_env`` runs a test on POPO, a SQLite file and a fresh PostgreSQL schema (marked
``postgres``; never skipped: an unreachable server fails the test). Restrict a test to the
stores that persist with ``@pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)``
(``tests.pg.DURABLE_STORES``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import pytest

from application.cases import Acting, Cases
from application.store import CaseStore
from domain.actor import Actor, Role
from domain.builder import Builder, Contact
from domain.project import KeyProject
from domain.tiers import Tier
from domain.windows import Window
from tests.pg import STORE_KINDS, store_env_for, store_param

SHANGHAI = ZoneInfo("Asia/Shanghai")

#: The fixed "now" of the use cases in tests: 2026-12-04 10:00 in Hangzhou.
START = datetime(2026, 12, 4, 10, 0, tzinfo=SHANGHAI)

#: A valid 项目代码 and 统一社会信用代码 (阿里巴巴（中国）有限公司's published code).
PROJECT_CODE = "2024-330100-44-01-123456"
CREDIT_CODE = "91330100716105852F"


class Clock:
    """A settable clock for ``Cases(clock=...)``: returns ``now`` until the test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


class RegisterMajor(Protocol):
    """The ``register_major`` fixture: registers a valid major project and returns it."""

    def __call__(
        self,
        project_code: str = PROJECT_CODE,
        *,
        acting: Acting | None = None,
        window: Window = Window.XIHU,
    ) -> KeyProject: ...


def register_major_project(
    cases: Cases,
    acting: Acting,
    project_code: str = PROJECT_CODE,
    *,
    window: Window = Window.XIHU,
) -> KeyProject:
    """Registers a valid major project (城市重点 + 千项万亿) of ``window``."""
    return cases.register(
        acting,
        name="杭州湾新材料产业园一期工程",
        project_code=project_code,
        builder=Builder(
            name="杭州某新材料有限公司",
            credit_code=CREDIT_CODE,
            contact=Contact(name="李四", phone="0571-85085326", email="lisi@example.cn"),
        ),
        window=window,
        tiers=(Tier.CITY_KEY, Tier.QIANXIANG_WANYI),
        industry="新材料制造",
        location="杭州市西湖区三墩镇",
        two_high_one_low=False,
    )


@pytest.fixture(params=[store_param(kind) for kind in STORE_KINDS])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The eventsourcing environment of a fresh, empty store: popo, sqlite or postgres."""
    kind: str = request.param
    with store_env_for(kind, tmp_path) as env:
        yield env


@pytest.fixture
def store_kind(store_env: dict[str, str]) -> str:
    """The kind of store this test runs on: "popo", "sqlite" or "postgres"."""
    return store_env["PERSISTENCE_MODULE"].rpartition(".")[2]


@pytest.fixture
def open_store(store_env: dict[str, str]) -> Iterator[Callable[[], CaseStore]]:
    """Opens more CaseStores on the same store (as another process would); all are closed at
    teardown, before the store itself is removed."""
    opened: list[CaseStore] = []

    def open_() -> CaseStore:
        opened.append(CaseStore(env=store_env))
        return opened[-1]

    yield open_
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(open_store: Callable[[], CaseStore]) -> CaseStore:
    """A CaseStore on ``store_env``, closed at teardown."""
    return open_store()


@pytest.fixture
def clock() -> Clock:
    """The use cases' clock, at 2026-12-04 10:00 Asia/Shanghai until the test moves it."""
    return Clock()


@pytest.fixture
def cases(store: CaseStore, clock: Clock) -> Cases:
    return Cases(store, clock=clock)


@pytest.fixture
def officer() -> Actor:
    """An officer (经办人员) of the Xihu window."""
    return Actor(sub="officer-xihu-01", name="王芳", role=Role.OFFICER, unit=Window.XIHU)


@pytest.fixture
def auditor() -> Actor:
    """An auditor (审计/纪检) of the city bureau: reads everything, writes nothing."""
    return Actor(sub="auditor-city-01", name="赵敏", role=Role.AUDITOR, unit=Window.CITY)


@pytest.fixture
def register_major(cases: Cases, officer: Actor) -> RegisterMajor:
    """Registers a valid major project, by default as ``officer`` for the Xihu window."""

    def register(
        project_code: str = PROJECT_CODE,
        *,
        acting: Acting | None = None,
        window: Window = Window.XIHU,
    ) -> KeyProject:
        return register_major_project(
            cases, acting or Acting(officer, "req-register"), project_code, window=window
        )

    return register

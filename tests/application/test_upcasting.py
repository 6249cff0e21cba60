"""Events stored by an older version of a class are read by the newer one through its
``upcast_vN_vN+1`` functions, from the very bytes the old version stored.

Each "deployment" defines the test-only ``Gauge`` aggregate afresh under the same explicit
topics, after the previous definition's topics are forgotten, as a restarted process would
have them. (No ``from __future__ import annotations`` here: the classes are local to
functions, so their annotations must be objects, not names.)
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing import utils as es_utils
from eventsourcing.domain import Aggregate, Snapshot, event
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from application.mapper import stamp_of
from application.store import CaseStore
from domain.actor import Actor, Role, Stamp
from domain.windows import Window
from tests.pg import DURABLE_STORES

pytestmark = pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)

PREFIX = "ecocase.tests.upcasting.Gauge"
STAMP = Stamp(Actor("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU), "req-v1")


def forget_gauge_topics() -> None:
    """Unregisters every topic of the current ``Gauge`` definition (a process restart)."""
    with es_utils._topic_cache_lock:
        for topic in [t for t in es_utils._topic_cache if t.startswith(PREFIX)]:
            del es_utils._topic_cache[topic]
        for cls in [c for c, t in es_utils._type_cache.items() if t.startswith(PREFIX)]:
            del es_utils._type_cache[cls]


@pytest.fixture(autouse=True)
def _fresh_gauge_topics() -> Iterator[None]:
    forget_gauge_topics()
    yield
    forget_gauge_topics()


def deploy_gauge_v1() -> Any:
    """Version 1: a gauge installed at a site, calibrated with readings."""

    class Gauge(Aggregate):
        TOPIC = PREFIX
        site: str
        readings: tuple[Decimal, ...]

        class Event(Aggregate.Event):
            TOPIC = f"{PREFIX}.Event"

        class Created(Event, Aggregate.Created):
            TOPIC = f"{PREFIX}.Created"

        class Installed(Created):
            TOPIC = f"{PREFIX}.Installed"
            site: str

        class Calibrated(Event):
            TOPIC = f"{PREFIX}.Calibrated"
            reading: Decimal

        @event(Installed)
        def __init__(self, *, site: str) -> None:
            self.site = site
            self.readings = ()

        @event(Calibrated)
        def calibrate(self, reading: Decimal) -> None:
            self.readings = (*self.readings, reading)

    return Gauge


def deploy_gauge_v2() -> Any:
    """Version 2: the installation names its district (old ones were all in Xihu), each
    calibration its unit (old ones were mg/L); the aggregate's state changes to match."""

    class Gauge(Aggregate):
        TOPIC = PREFIX
        class_version = 2
        site: str
        district: Window
        readings: tuple[tuple[Decimal, str], ...]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """The state of a version 1 snapshot, as version 2 holds it."""
            state["district"] = "xihu"
            state["readings"] = [(reading, "mg/L") for reading in state["readings"]]

        class Event(Aggregate.Event):
            TOPIC = f"{PREFIX}.Event"

        class Created(Event, Aggregate.Created):
            TOPIC = f"{PREFIX}.Created"

        class Installed(Created):
            TOPIC = f"{PREFIX}.Installed"
            class_version = 2
            site: str
            district: Window

            @staticmethod
            def upcast_v1_v2(state: dict[str, Any]) -> None:
                state["district"] = "xihu"

        class Calibrated(Event):
            TOPIC = f"{PREFIX}.Calibrated"
            class_version = 2
            reading: Decimal
            unit: str

            @staticmethod
            def upcast_v1_v2(state: dict[str, Any]) -> None:
                state["unit"] = "mg/L"

        @event(Installed)
        def __init__(self, *, site: str, district: Window) -> None:
            self.site = site
            self.district = district
            self.readings = ()

        @event(Calibrated)
        def calibrate(self, reading: Decimal, unit: str) -> None:
            self.readings = (*self.readings, (reading, unit))

    return Gauge


def deploy_gauge_v3() -> Any:
    """Version 3: a calibration's ``reading`` is renamed ``value``."""

    class Gauge(Aggregate):
        TOPIC = PREFIX
        class_version = 2
        site: str
        district: Window
        readings: tuple[tuple[Decimal, str], ...]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """The state of a version 1 snapshot, as version 2 holds it."""
            state["district"] = "xihu"
            state["readings"] = [(reading, "mg/L") for reading in state["readings"]]

        class Event(Aggregate.Event):
            TOPIC = f"{PREFIX}.Event"

        class Created(Event, Aggregate.Created):
            TOPIC = f"{PREFIX}.Created"

        class Installed(Created):
            TOPIC = f"{PREFIX}.Installed"
            class_version = 2
            site: str
            district: Window

            @staticmethod
            def upcast_v1_v2(state: dict[str, Any]) -> None:
                state["district"] = "xihu"

        class Calibrated(Event):
            TOPIC = f"{PREFIX}.Calibrated"
            class_version = 3
            value: Decimal
            unit: str

            @staticmethod
            def upcast_v1_v2(state: dict[str, Any]) -> None:
                state["unit"] = "mg/L"

            @staticmethod
            def upcast_v2_v3(state: dict[str, Any]) -> None:
                state["value"] = state.pop("reading")

        @event(Installed)
        def __init__(self, *, site: str, district: Window) -> None:
            self.site = site
            self.district = district
            self.readings = ()

        @event(Calibrated)
        def calibrate(self, value: Decimal, unit: str) -> None:
            self.readings = (*self.readings, (value, unit))

    return Gauge


def events_of(store: CaseStore, gauge_id: UUID) -> list[Any]:
    """The gauge's events, decoded (typed ``Any``: their classes are defined at run time)."""
    return list(store.events.get(gauge_id))


def loaded(store: CaseStore, gauge_id: UUID) -> Any:
    """The gauge as the repository gives it (from a snapshot when there is one)."""
    return store.repository.get(gauge_id)


def replayed(store: CaseStore, gauge_id: UUID) -> Any:
    """The gauge from its events alone, ignoring snapshots."""
    gauge = None
    for domain_event in events_of(store, gauge_id):
        gauge = domain_event.mutate(gauge)
    return gauge


def stored_bytes(store: CaseStore, gauge_id: UUID) -> list[bytes]:
    return [bytes(e.state) for e in store.recorder.select_events(gauge_id)]


def save_v1_gauge(store: CaseStore) -> tuple[UUID, list[bytes]]:
    """Deploys version 1, records a gauge with two calibrations, returns the bytes saved."""
    gauge = deploy_gauge_v1()(site="闸口断面")
    gauge.calibrate(Decimal("1.20"))
    gauge.calibrate(Decimal("0.035"))
    recordings = store.save(gauge, stamp=STAMP)
    saved = [bytes(r.notification.state) for r in recordings]
    assert stored_bytes(store, gauge.id) == saved
    for payload in saved:
        assert set(msgspec.json.decode(payload)).isdisjoint({"class_version", "district", "unit"})
    gauge_id: UUID = gauge.id
    return gauge_id, saved


def test_v1_events_in_the_store_are_read_as_v2_with_the_upcast_fields(
    store: CaseStore, open_store: Callable[[], CaseStore]
) -> None:
    gauge_id, v1_bytes = save_v1_gauge(store)
    forget_gauge_topics()
    gauge_v2 = deploy_gauge_v2()

    restarted = open_store()
    installed, first, second = events_of(restarted, gauge_id)
    assert type(installed) is gauge_v2.Installed
    assert installed.district is Window.XIHU
    assert installed.site == "闸口断面"
    assert type(first) is gauge_v2.Calibrated
    assert (first.reading, first.unit) == (Decimal("1.20"), "mg/L")
    assert type(first.reading) is Decimal
    assert (second.reading, second.unit) == (Decimal("0.035"), "mg/L")
    assert stamp_of(second) == STAMP
    assert all(type(e.timestamp) is datetime for e in (installed, first, second))

    gauge = loaded(restarted, gauge_id)
    assert type(gauge) is gauge_v2
    assert gauge.district is Window.XIHU
    assert gauge.readings == ((Decimal("1.20"), "mg/L"), (Decimal("0.035"), "mg/L"))
    # Reading through the upcasts changed nothing that was stored.
    assert stored_bytes(restarted, gauge_id) == v1_bytes


def test_v2_writes_its_class_version_and_v1_and_v2_events_are_both_read_as_v3(
    store: CaseStore, open_store: Callable[[], CaseStore]
) -> None:
    gauge_id, v1_bytes = save_v1_gauge(store)
    forget_gauge_topics()
    deploy_gauge_v2()
    v2_store = open_store()
    gauge = loaded(v2_store, gauge_id)
    gauge.calibrate(Decimal("8.5"), "μg/L")
    (recording,) = v2_store.save(gauge, stamp=Stamp(STAMP.actor, "req-v2"))
    v2_payload = msgspec.json.decode(recording.notification.state)
    assert v2_payload["class_version"] == 2
    assert v2_payload["unit"] == "μg/L"

    forget_gauge_topics()
    gauge_v3 = deploy_gauge_v3()
    v3_store = open_store()
    events = events_of(v3_store, gauge_id)
    assert [type(e) for e in events] == [gauge_v3.Installed] + [gauge_v3.Calibrated] * 3
    assert [(e.value, e.unit) for e in events[1:]] == [
        (Decimal("1.20"), "mg/L"),
        (Decimal("0.035"), "mg/L"),
        (Decimal("8.5"), "μg/L"),
    ]
    assert all(not hasattr(e, "reading") for e in events[1:])
    assert [stamp_of(e) for e in events][-2:] == [STAMP, Stamp(STAMP.actor, "req-v2")]
    assert loaded(v3_store, gauge_id).readings[-1] == (Decimal("8.5"), "μg/L")
    assert stored_bytes(v3_store, gauge_id) == [*v1_bytes, bytes(recording.notification.state)]


def test_v1_payload_inserted_with_the_recorder_is_read_as_v2(store: CaseStore) -> None:
    """A payload exactly as version 1 wrote it, put in with the recorder itself."""
    gauge_v2 = deploy_gauge_v2()
    gauge_id = UUID("0b5f5a4e-8a63-4c70-9d1b-6c8e2f7a9d01")
    installed = (
        b'{"timestamp":"2025-06-01T02:00:00Z","originator_topic":"' + PREFIX.encode() + b'",'
        b'"site":"\xe4\xb8\x83\xe5\xa0\xa1\xe6\x96\xad\xe9\x9d\xa2",'  # 七堡断面 in UTF-8
        b'"meta":{"actor":{"sub":"officer-xihu-01","name":"\xe7\x8e\x8b\xe8\x8a\xb3",'
        b'"role":"officer","unit":"xihu"},"request_id":"req-v1"}}'
    )
    calibrated = b'{"timestamp":"2025-06-02T02:00:00Z","reading":"2.50","meta":null}'
    store.recorder.insert_events(
        [
            StoredEvent(gauge_id, 1, f"{PREFIX}.Installed", installed),
            StoredEvent(gauge_id, 2, f"{PREFIX}.Calibrated", calibrated),
        ]
    )
    assert stored_bytes(store, gauge_id) == [installed, calibrated]

    first, second = events_of(store, gauge_id)
    assert type(first) is gauge_v2.Installed
    assert (first.site, first.district) == ("七堡断面", Window.XIHU)
    assert first.timestamp == datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
    assert stamp_of(first) == STAMP
    assert (second.reading, second.unit) == (Decimal("2.50"), "mg/L")
    assert stamp_of(second) is None
    gauge = loaded(store, gauge_id)
    assert (gauge.site, gauge.district, gauge.version) == ("七堡断面", Window.XIHU, 2)


def test_new_field_without_an_upcast_fails_loudly_instead_of_guessing(
    store: CaseStore, open_store: Callable[[], CaseStore]
) -> None:
    gauge_id, _ = save_v1_gauge(store)
    forget_gauge_topics()
    gauge_v2 = deploy_gauge_v2()
    # A careless version 2 that adds a field but forgets to bump class_version.
    gauge_v2.Calibrated.class_version = 1
    restarted = open_store()
    with pytest.raises(MapperDeserialisationError, match=r"Calibrated of .* v2.*unit"):
        events_of(restarted, gauge_id)


def test_snapshot_taken_by_v1_is_upcast_when_v2_reads_it(
    store: CaseStore, open_store: Callable[[], CaseStore]
) -> None:
    gauge_id, _ = save_v1_gauge(store)
    store.take_snapshot(gauge_id)
    assert store.snapshots is not None
    (v1_snapshot,) = store.snapshots.recorder.select_events(gauge_id)
    assert "class_version" not in msgspec.json.decode(v1_snapshot.state)["state"]
    forget_gauge_topics()
    gauge_v2 = deploy_gauge_v2()

    restarted = open_store()
    gauge = loaded(restarted, gauge_id)
    assert type(gauge) is gauge_v2
    assert gauge.district is Window.XIHU
    assert gauge.readings == ((Decimal("1.20"), "mg/L"), (Decimal("0.035"), "mg/L"))
    assert gauge == replayed(restarted, gauge_id)


def test_snapshot_taken_by_v2_is_read_as_it_was_not_upcast_again(
    store: CaseStore, open_store: Callable[[], CaseStore]
) -> None:
    gauge_v2 = deploy_gauge_v2()
    gauge = gauge_v2(site="浦沿", district=Window.BINJIANG)
    gauge.calibrate(Decimal("0.5"), "μg/L")
    store.save(gauge, stamp=STAMP)
    store.take_snapshot(gauge.id)

    restarted = open_store()
    assert restarted.snapshots is not None
    (snapshot,) = restarted.snapshots.get(gauge.id)
    assert isinstance(snapshot, Snapshot)
    from_snapshot: Any = snapshot.mutate(None)
    assert from_snapshot.district is Window.BINJIANG
    assert from_snapshot.readings == ((Decimal("0.5"), "μg/L"),)
    assert from_snapshot == gauge == replayed(restarted, gauge.id)
    assert loaded(restarted, gauge.id) == gauge

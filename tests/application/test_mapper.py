"""The msgspec mapper gives back what went in: types, values and the stamp, in memory and
through every store (events and snapshots)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
import pytest
from eventsourcing.domain import Aggregate, DomainEventProtocol, Snapshot, event
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from application.mapper import META, MsgspecMapper, NoTranscoder, stamp_of
from application.store import CaseStore
from domain.actor import Actor, Role, Stamp
from domain.windows import Window

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Grade(StrEnum):
    FIRST = "一级"
    SECOND = "二级"


@dataclass(frozen=True)
class Lab:
    name: str
    accredited_on: date


@dataclass(frozen=True)
class Reading:
    value: Decimal
    taken_at: datetime
    lab: Lab | None = None


@dataclass(frozen=True)
class Site:
    name: str
    grade: Grade
    readings: tuple[Reading, ...]
    lab: Lab | None = None


class Sample(Aggregate):
    """A test-only aggregate carrying every kind of value the mapper must keep."""

    TOPIC = "ecocase.tests.mapper.Sample"

    label: str
    grade: Grade
    amount: Decimal
    sampled_on: date
    sampled_at: datetime
    tags: tuple[str, ...]
    sites: dict[str, Site]
    remark: str | None
    readings: tuple[Reading, ...]

    class Event(Aggregate.Event):
        TOPIC = "ecocase.tests.mapper.Sample.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "ecocase.tests.mapper.Sample.Created"

    class Taken(Created):
        TOPIC = "ecocase.tests.mapper.Sample.Taken"
        label: str
        grade: Grade
        amount: Decimal
        sampled_on: date
        sampled_at: datetime
        tags: tuple[str, ...]
        sites: dict[str, Site]
        remark: str | None

    @event(Taken)
    def __init__(
        self,
        *,
        label: str,
        grade: Grade,
        amount: Decimal,
        sampled_on: date,
        sampled_at: datetime,
        tags: tuple[str, ...],
        sites: dict[str, Site],
        remark: str | None,
    ) -> None:
        self.label = label
        self.grade = grade
        self.amount = amount
        self.sampled_on = sampled_on
        self.sampled_at = sampled_at
        self.tags = tags
        self.sites = sites
        self.remark = remark
        self.readings = ()

    @event("Measured", topic="ecocase.tests.mapper.Sample.Measured")
    def measure(self, reading: Reading, remark: str | None) -> None:
        self.readings = (*self.readings, reading)
        self.remark = remark


LAB = Lab("浙江省环境监测中心", date(2019, 3, 1))
SAMPLED_AT = datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=SHANGHAI)


def take_sample() -> Sample:
    sample = Sample(
        label="钱塘江断面 水样（COD）",
        grade=Grade.SECOND,
        amount=Decimal("12.50"),
        sampled_on=date(2026, 12, 4),
        sampled_at=SAMPLED_AT,
        tags=("地表水", "国控"),
        sites={
            "闸口": Site(
                "闸口",
                Grade.FIRST,
                (Reading(Decimal("0.0300"), SAMPLED_AT, LAB),),
                LAB,
            ),
            "七堡": Site("七堡", Grade.SECOND, ()),
        },
        remark=None,
    )
    sample.measure(Reading(Decimal("-1E+3"), datetime(2026, 12, 5, 1, 0, tzinfo=UTC)), "复测")
    sample.measure(Reading(Decimal("3.14159265358979323846"), SAMPLED_AT), None)
    return sample


STAMP = Stamp(Actor("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU), "req-测试-1")


def mapper() -> MsgspecMapper:
    return MsgspecMapper(transcoder=NoTranscoder())


def round_trip(domain_event: DomainEventProtocol[Any]) -> tuple[StoredEvent, Any]:
    m = mapper()
    stored = m.to_stored_event(domain_event)
    return stored, m.to_domain_event(stored)


def assert_sample_values(sample: Sample) -> None:
    """Every value with its exact type, not just equal to the original."""
    assert type(sample.grade) is Grade
    assert sample.grade is Grade.SECOND
    assert type(sample.amount) is Decimal
    assert str(sample.amount) == "12.50"
    assert type(sample.sampled_on) is date
    assert sample.sampled_at == SAMPLED_AT
    assert sample.sampled_at.utcoffset() == timedelta(hours=8)
    assert sample.tags == ("地表水", "国控")
    assert type(sample.tags) is tuple
    assert sample.remark is None
    site = sample.sites["闸口"]
    assert type(site) is Site
    assert type(site.grade) is Grade
    assert type(site.readings) is tuple
    assert site.readings[0] == Reading(Decimal("0.0300"), SAMPLED_AT, LAB)
    assert str(site.readings[0].value) == "0.0300"
    assert type(site.readings[0].lab) is Lab
    assert sample.sites["七堡"].readings == ()
    assert sample.sites["七堡"].lab is None
    assert sample.label == "钱塘江断面 水样（COD）"
    assert type(sample.readings) is tuple
    assert [str(r.value) for r in sample.readings] == ["-1E+3", "3.14159265358979323846"]
    assert sample.readings[0].taken_at.utcoffset() == timedelta(0)


# --- the mapper alone ---------------------------------------------------------------------
def test_every_event_decodes_equal_to_the_event_encoded() -> None:
    events = take_sample().collect_events()
    assert len(events) == 3
    for domain_event in events:
        stored, decoded = round_trip(domain_event)
        assert type(decoded) is type(domain_event)
        assert vars(decoded) == vars(domain_event)
        assert stored.originator_id == domain_event.originator_id
        assert stored.originator_version == domain_event.originator_version


def test_decoded_events_keep_types_of_dates_enums_decimals_tuples_and_nested_values() -> None:
    decoded = [round_trip(e)[1] for e in take_sample().collect_events()]
    created = decoded[0]
    assert isinstance(created, Sample.Taken)
    assert type(created.originator_id) is UUID
    assert type(created.timestamp) is datetime
    assert created.timestamp.utcoffset() == timedelta(0)
    sample = None
    for domain_event in decoded:
        sample = domain_event.mutate(sample)
    assert isinstance(sample, Sample)
    assert_sample_values(sample)


def test_decimals_are_stored_as_exact_strings_and_chinese_text_as_utf8() -> None:
    created = take_sample().collect_events()[0]
    stored, _ = round_trip(created)
    payload = msgspec.json.decode(stored.state)
    assert payload["amount"] == "12.50"
    assert payload["sites"]["闸口"]["readings"][0]["value"] == "0.0300"
    assert "钱塘江断面 水样（COD）".encode() in stored.state
    assert stored.topic == "ecocase.tests.mapper.Sample.Taken"


def test_internal_ids_are_not_repeated_inside_the_payload() -> None:
    stored, _ = round_trip(take_sample().collect_events()[1])
    payload = msgspec.json.decode(stored.state)
    assert "originator_id" not in payload
    assert "originator_version" not in payload
    assert "class_version" not in payload  # version 1 classes write no class_version


def test_stamp_travels_as_meta_and_comes_back_as_a_stamp() -> None:
    measured = take_sample().collect_events()[1]
    object.__setattr__(measured, META, STAMP)
    stored, decoded = round_trip(measured)
    assert msgspec.json.decode(stored.state)[META] == {
        "actor": {
            "sub": "officer-xihu-01",
            "name": "王芳",
            "role": "officer",
            "unit": "xihu",
        },
        "request_id": "req-测试-1",
    }
    stamp = stamp_of(decoded)
    assert stamp == STAMP
    assert stamp is not None
    assert stamp.actor.role is Role.OFFICER
    assert stamp.actor.unit is Window.XIHU


def test_event_without_stamp_decodes_without_meta() -> None:
    _, decoded = round_trip(take_sample().collect_events()[2])
    assert META not in vars(decoded)
    assert stamp_of(decoded) is None


def test_payload_of_wrong_type_fails_loudly_naming_the_event() -> None:
    stored, _ = round_trip(take_sample().collect_events()[1])
    broken = msgspec.json.decode(stored.state)
    broken["reading"]["value"] = {"not": "a decimal"}
    bad = StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, msgspec.json.encode(broken)
    )
    with pytest.raises(MapperDeserialisationError, match=r"Sample\.Measured .* v2"):
        mapper().to_domain_event(bad)


def test_snapshot_state_round_trips_with_its_types() -> None:
    sample = take_sample()
    sample.collect_events()
    snapshot = Snapshot.take(sample)
    _, decoded = round_trip(snapshot)
    assert isinstance(decoded, Snapshot)
    restored = decoded.mutate(None)
    assert isinstance(restored, Sample)
    assert restored == sample
    assert_sample_values(restored)


# --- through every store ------------------------------------------------------------------
def test_aggregate_reads_back_equal_and_typed_from_the_store(
    store: CaseStore, open_store: Callable[[], CaseStore], store_kind: str
) -> None:
    sample = take_sample()
    store.save(sample, stamp=STAMP)
    # A second store on the same database decodes with cold caches, as another process would
    # (POPO keeps its events in the one store object).
    reader = store if store_kind == "popo" else open_store()
    loaded: Sample = reader.repository.get(sample.id)
    assert loaded == sample
    assert loaded.version == 3
    assert_sample_values(loaded)


def test_every_stored_event_carries_the_stamp(store: CaseStore) -> None:
    sample = take_sample()
    store.save(sample, stamp=STAMP)
    events = list(store.events.get(sample.id))
    assert [type(e).__name__ for e in events] == ["Taken", "Measured", "Measured"]
    assert all(stamp_of(e) == STAMP for e in events)
    raw = store.recorder.select_events(sample.id)
    assert all(msgspec.json.decode(r.state)[META]["request_id"] == "req-测试-1" for r in raw)


def test_save_without_stamp_is_refused(store: CaseStore) -> None:
    sample = take_sample()
    with pytest.raises(TypeError, match="Stamp"):
        store.save(sample)
    assert store.recorder.select_events(sample.id) == []


def test_snapshot_in_the_store_restores_the_same_aggregate(
    store: CaseStore, open_store: Callable[[], CaseStore], store_kind: str
) -> None:
    sample = take_sample()
    store.save(sample, stamp=STAMP)
    store.take_snapshot(sample.id)
    assert store.snapshots is not None
    reader = store if store_kind == "popo" else open_store()
    assert reader.snapshots is not None
    snapshots = list(reader.snapshots.get(sample.id))
    assert [s.originator_version for s in snapshots] == [3]
    assert isinstance(snapshots[0], Snapshot)
    restored = snapshots[0].mutate(None)
    assert isinstance(restored, Sample)
    assert restored == sample
    assert_sample_values(restored)
    assert reader.repository.get(sample.id) == sample

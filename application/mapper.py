"""Stored-event serialisation with msgspec (eventsourcing 9.5.6 ships none).

Each stored payload is the JSON of the event's fields. Decoding is typed: a msgspec struct is
built once per event class from its annotations, so dates, enums, Decimals, tuples and nested
value objects come back as they went in. The stamp (who acted, in which request, and ``prev``,
the hash of the project's previous stored event: see :func:`chain_hash`) travels as an extra
``meta`` field. Old payloads (``class_version`` below the class's) are decoded untyped,
passed through the class's ``upcast_vN_vN+1`` functions, then converted.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Callable, Hashable
from datetime import datetime
from functools import cache
from typing import Any, cast

import msgspec
from eventsourcing.domain import CanSnapshotAggregate, DomainEventProtocol
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

from domain.actor import Actor, Stamp

_SKIP = frozenset({"originator_id", "originator_version"})
_ENCODER = msgspec.json.Encoder(decimal_format="string")
_UNTYPED = msgspec.json.Decoder()

META = "meta"  # key of the Stamp in every stored payload


def _fields(cls: type[Any]) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    return [
        (name, hint)
        for name, hint in hints.items()
        if name not in _SKIP
        and typing.get_origin(hint) is not typing.ClassVar
        and not isinstance(hint, typing.TypeVar)
    ]


@cache
def _event_struct(cls: type[Any]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (n, msgspec.Raw if n == "state" and issubclass(cls, CanSnapshotAggregate) else h)
        for n, h in _fields(cls)
    ]
    fields.append((META, Stamp | None, None))
    return msgspec.defstruct(f"Stored{cls.__name__}", fields, kw_only=True)


@cache
def _aggregate_state_struct(cls: type[Any]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("_created_on", datetime),
        ("_modified_on", datetime),
    ]
    fields += [(n, h) for n, h in _fields(cls) if not n.isupper()]
    return msgspec.defstruct(f"State{cls.__name__}", fields, kw_only=True, rename=None)


@cache
def _decoder(struct: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(struct)


class _StoredStamp(msgspec.Struct, omit_defaults=True):
    """How a Stamp is written: as the dataclass, but without ``prev`` when it is "" (a first
    event, or an event not recorded by the store), so unchained payloads stay as they were.
    Stamps are read back into the Stamp dataclass itself (``prev`` defaults to "")."""

    actor: Actor
    request_id: str
    prev: str = ""


def _as_dict(struct: msgspec.Struct) -> dict[str, Any]:
    return {f: getattr(struct, f) for f in struct.__struct_fields__}


class NoTranscoder(Transcoder):
    """Placeholder: the msgspec mapper encodes and decodes by itself."""

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


class MsgspecMapper(Mapper[Any]):
    """A Mapper whose transcoding is msgspec, typed by the event classes' annotations."""

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        cls = type(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        stamp = state.get(META)
        if isinstance(stamp, Stamp):
            state[META] = _StoredStamp(stamp.actor, stamp.request_id, stamp.prev)
        if isinstance(domain_event, CanSnapshotAggregate):
            state["state"] = msgspec.Raw(_ENCODER.encode(state["state"]))
        payload = _ENCODER.encode(state)
        if self.compressor:
            payload = self.compressor.compress(payload)
        if self.cipher:
            payload = self.cipher.encrypt(payload)
        return StoredEvent(originator_id, originator_version, get_topic(cls), payload)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        cls = resolve_topic(stored_event.topic)
        try:
            state = self.decode_state(cast(type[Any], cls), stored_event.state)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError) as e:
            msg = (
                f"cannot decode stored event {stored_event.topic} of "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e
        convert = find_id_convertor(
            cast(Any, cls), cast(Hashable, type(stored_event.originator_id))
        )
        state["originator_id"] = convert(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return cast(DomainEventProtocol[Any], domain_event)

    def decode_state(self, cls: type[Any], payload: bytes) -> dict[str, Any]:
        if self.cipher:
            payload = self.cipher.decrypt(payload)
        if self.compressor:
            payload = self.compressor.decompress(payload)
        struct = _event_struct(cast(Hashable, cls))
        class_version = getattr(cls, "class_version", 1)
        if class_version == 1:
            state = _as_dict(_decoder(struct).decode(payload))
        else:
            state = self._upcast(cls, struct, payload, class_version)
        if issubclass(cls, CanSnapshotAggregate):
            aggregate_cls = resolve_topic(state["topic"])
            aggregate_struct = _aggregate_state_struct(aggregate_cls)
            aggregate_version = getattr(aggregate_cls, "class_version", 1)
            if aggregate_version == 1:
                state["state"] = _as_dict(_decoder(aggregate_struct).decode(state["state"]))
            else:
                # Upcast an older state before typing it, as for events; the class_version
                # kept in the state tells Snapshot.mutate() it is current (no second upcast).
                state["state"] = self._upcast(
                    aggregate_cls, aggregate_struct, state["state"], aggregate_version
                )
                state["state"]["class_version"] = aggregate_version
        if state[META] is None:
            del state[META]
        return state

    @staticmethod
    def _upcast(
        event_cls: type[Any], struct: type[msgspec.Struct], payload: bytes, class_version: int
    ) -> dict[str, Any]:
        raw: dict[str, Any] = _UNTYPED.decode(payload)
        from_version = raw.pop("class_version", 1)
        while from_version < class_version:
            upcast: Callable[[dict[str, Any]], None] = getattr(
                event_cls, f"upcast_v{from_version}_v{from_version + 1}"
            )
            upcast(raw)
            from_version += 1
        return _as_dict(msgspec.convert(raw, struct))


def stamp_of(domain_event: object) -> Stamp | None:
    """The stamp recorded with an event, if any (snapshots and unstamped events have none)."""
    meta = vars(domain_event).get(META)
    return meta if isinstance(meta, Stamp) else None


def chain_hash(stored_event: StoredEvent) -> str:
    """The hex SHA-256 of a stored record, as the recorder holds it: over the UTF-8 of
    ``originator_id`` (the UUID's canonical 36-character text) + "\\n" + ``originator_version``
    (decimal) + "\\n" + ``topic`` + "\\n", then the stored ``state`` bytes as they are (after
    any compression or encryption; they include the record's own ``meta.prev``).

    The next event of the project carries it as ``meta.prev``: a hash chain per project."""
    s = stored_event
    digest = hashlib.sha256(f"{s.originator_id}\n{s.originator_version}\n{s.topic}\n".encode())
    digest.update(bytes(stored_event.state))
    return digest.hexdigest()

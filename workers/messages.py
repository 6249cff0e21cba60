"""Queue payloads: ids and primitives only (the third msgspec family, apart from stored events
and HTTP bodies), and the msgspec encoder dramatiq uses for every message."""

from __future__ import annotations

from typing import Any

import dramatiq
import msgspec


class EventNotice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One stored event to process, named by its position in the notification log."""

    notification_id: int
    project_id: str
    version: int
    topic: str


class MsgspecEncoder(dramatiq.Encoder):
    """dramatiq's messages as msgspec JSON (its default is the stdlib json module)."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(dict[str, Any])

    def encode(self, data: dict[str, Any]) -> bytes:
        return self._encoder.encode(data)

    def decode(self, data: bytes) -> dict[str, Any]:
        try:
            return self._decoder.decode(data)
        except msgspec.DecodeError as e:
            # dramatiq's DecodeError has an untyped __init__
            raise dramatiq.DecodeError("cannot decode message", data, e) from None  # type: ignore[no-untyped-call]

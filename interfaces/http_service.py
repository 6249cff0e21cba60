"""Service endpoints: health and the 16 acceptance windows."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State

from domain.windows import WINDOWS
from interfaces.views import WindowView, window_view


class StoreHealth(msgspec.Struct):
    kind: str
    ok: bool
    max_notification_id: int | None = None
    error: str | None = None


class BrokerHealth(msgspec.Struct):
    kind: str  # "redis", or "in-process" on the embedded default
    ok: bool
    error: str | None = None


class ProjectionHealth(msgspec.Struct):
    name: str
    position: int
    lag: int | None


class Health(msgspec.Struct):
    status: str
    store: StoreHealth
    broker: BrokerHealth
    projections: list[ProjectionHealth]


class Live(msgspec.Struct):
    status: str


_LIVE = Live(status="ok")


@get(
    "/health/live",
    summary="Liveness only: the process answers (no store, no broker; for load balancers)",
    tags=["service"],
    exclude_from_auth=True,
)
async def live() -> Live:
    return _LIVE


@get(
    "/health",
    summary="Liveness and the state of the event store and broker",
    tags=["service"],
    exclude_from_auth=True,
    sync_to_thread=True,
)
def health(state: State) -> Response[Health]:
    store_health = _store_health(state)
    head = store_health.max_notification_id
    index = state.index
    position = index.position()
    broker = _broker_health(state)
    body = Health(
        # Commands need only the store: a broker outage degrades notifications, not writes.
        status="ok" if store_health.ok and broker.ok else "degraded",
        store=store_health,
        broker=broker,
        projections=[
            ProjectionHealth(
                "project_index", position, None if head is None else max(0, head - position)
            ),
            _relay_health(state, head),
        ],
    )
    return Response(body, status_code=200 if store_health.ok else 503)


def _broker_health(state: State) -> BrokerHealth:
    if state.redis is None:
        return BrokerHealth(kind="in-process", ok=True)
    try:
        return BrokerHealth(kind="redis", ok=bool(state.redis.ping()))
    except Exception as e:  # noqa: BLE001 - health reports any broker failure, never raises
        return BrokerHealth(kind="redis", ok=False, error=type(e).__name__)


def _relay_health(state: State, head: int | None) -> ProjectionHealth:
    """How far the outbox relay has sent the event store to the queue."""
    try:
        position = state.relay.position()
    except Exception:  # noqa: BLE001 - health reports, never raises
        return ProjectionHealth("relay", -1, None)
    return ProjectionHealth("relay", position, None if head is None else max(0, head - position))


def _store_health(state: State) -> StoreHealth:
    kind = state.settings.store
    try:
        head = state.cases.store.recorder.max_notification_id()
    except Exception as e:  # noqa: BLE001 - health reports any store failure, never raises
        return StoreHealth(kind=kind, ok=False, error=type(e).__name__)
    return StoreHealth(kind=kind, ok=True, max_notification_id=head or 0)


@get(
    "/windows",
    summary="The 16 permit acceptance windows (许可受理窗口) with their phones",
    tags=["service"],
    sync_to_thread=False,
)
def windows() -> list[WindowView]:
    return [window_view(w) for w in WINDOWS]


ROUTES: list[Any] = [live, health, windows]

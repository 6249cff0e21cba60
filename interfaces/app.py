"""The composition root: ``create_app()`` builds the HTTP service and, on the embedded default
(no Redis), the relay and a worker inside it; nothing connects at import time."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import redis
import swagger_ui
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from application.audit import AuditTrail
from application.cases import Cases, shanghai_now
from application.notifications import Notifications
from application.project_index import ProjectIndex
from application.settings import Settings, load_settings
from application.sqldb import open_database
from application.store import CaseStore
from application.supervision import Supervision
from interfaces.auth import jwt_auth
from interfaces.dashboard import DASHBOARD_ROUTES, TEMPLATES
from interfaces.http_audit import AuditController
from interfaces.http_integrity import project_integrity_check
from interfaces.http_notifications import list_notifications
from interfaces.http_projects import CachedReads, ProjectController
from interfaces.http_service import ROUTES
from interfaces.http_supervision import SupervisionController
from interfaces.logs import configure_logging
from interfaces.middleware import bind_actor_and_project, request_context
from interfaces.problems import EXCEPTION_HANDLERS
from workers.processes import EmbeddedWorkers
from workers.relay import Relay

SWAGGER = "/static/swagger"


def _redis_probe(url: str | None) -> redis.Redis | None:
    """For /health only: the API never sends to the broker (the relay does)."""
    if not url:
        return None
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _cases(state: State) -> Cases:
    cases: Cases = state.cases
    return cases


def _index(state: State) -> ProjectIndex:
    index: ProjectIndex = state.index
    return index


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = shanghai_now,
    configure_logs: bool = True,
) -> Litestar:
    settings = settings or load_settings()
    if configure_logs:
        configure_logging(settings.log_format, settings.log_level)
    auth = jwt_auth(settings.secret)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = CaseStore(env=settings.store_env())
        store.keep_coherent()  # PostgreSQL: reads of cached projects need no query
        index = ProjectIndex(store, settings.store_env())
        db = open_database(settings.store_env())
        supervision = Supervision(store, settings.store_env())
        if settings.projections_in_api:
            index.start()
            supervision.start()
        workers = None
        if settings.embedded_workers:
            workers = EmbeddedWorkers(settings, os.environ, store=store, db=db, index=index)
            workers.start()
        app.state.update(
            settings=settings, cases=Cases(store, clock=clock), index=index, db=db,
            audit=AuditTrail(db), notifications=Notifications(db), workers=workers,
            relay=workers.relay if workers else Relay.observer(store, db),
            redis=_redis_probe(settings.redis_url),
            supervision=supervision,
        )  # fmt: skip
        try:
            yield
        finally:
            if workers is not None:
                workers.stop()
            index.stop()
            index.close()
            supervision.close()
            db.close()
            store.close()
            if app.state.redis is not None:
                app.state.redis.close()

    app = Litestar(
        route_handlers=[
            *ROUTES,
            ProjectController,
            AuditController,
            list_notifications,
            project_integrity_check,
            SupervisionController,
            *DASHBOARD_ROUTES,
            create_static_files_router(
                path=SWAGGER,
                directories=[Path(swagger_ui.__file__).parent / "static"],
                include_in_schema=False,
            ),
        ],
        lifespan=[lifespan],
        template_config=TEMPLATES,
        on_app_init=[auth.on_app_init],
        dependencies={
            "cases": Provide(_cases, sync_to_thread=False),
            "index": Provide(_index, sync_to_thread=False),
        },
        before_request=bind_actor_and_project,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="ecocase",
            version="1",
            description="Key-project service cases of 杭环发〔2024〕35号 (Hangzhou ecology & "
            "environment bureau). Every write is an event; errors are RFC 9457 problems.",
            path="/schema",
            render_plugins=[
                SwaggerRenderPlugin(
                    js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                    css_url=f"{SWAGGER}/swagger-ui.css",
                    standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
                    path="/",
                    favicon=f"<link rel='icon' href='{SWAGGER}/favicon-32x32.png'>",
                ),
            ],
        ),
        logging_config=None,  # structlog is configured by configure_logging()
        debug=False,
    )
    # Outermost, around Litestar's own exception handling, so that every response (401s and
    # unknown routes too) carries the request id and gets its access-log line; reads of
    # known projects by a known token are answered there, before Litestar.
    app.state.cached_reads = CachedReads(app, settings.secret)
    app.asgi_handler = request_context(app.asgi_handler, app.state.cached_reads)
    return app

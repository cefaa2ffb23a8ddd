"""The app factory: settings in, a FastAPI app out; the archive opens in the lifespan.

Opening the archive, loading the models and the index, and starting the ingest worker
(which resumes the jobs a previous server left unfinished) happen before the first request
is served, and the worker is stopped, the job in hand re-queued, on shutdown. A read-only
archive starts no worker: its jobs stay as they are, and every write answers 409.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from api.server import routes_ingest, routes_media, routes_search
from api.server.auth import require_read
from api.server.errors import (RETRY_AFTER, handle_operational, handle_out_of_range,
                               handle_project_error, handle_validation_error, operational_errors,
                               out_of_range_errors)
from api.server.metrics import Metrics, MetricsMiddleware
from api.server.deps import ArchiveDep, StateDep
from api.server.schemas import HealthOut, InfoOut, error_responses
from api.server.settings import ServerSettings, resolve_keys
from api.server.state import ServerState
from api.server.worker import IngestWorker
from vidsonar.errors import UnreachableError, VidsonarError

log = logging.getLogger(__name__)

STATIC = resources.files("api.server").joinpath("static")


def _open(app: FastAPI) -> ServerState:
    settings: ServerSettings = app.state.settings
    state = ServerState.open(settings, app.state.metrics)
    app.state.keys, app.state.key_file = resolve_keys(settings, state.archive.home.root,
                                                      state.archive.read_only)
    if settings.warm_up:
        state.warm_up()
    if state.archive.read_only:
        return state
    state.worker = IngestWorker(state.archive, state.jobs, on_file=lambda outcome:
                                state.metrics.files.labels(outcome).inc(),
                                within=[*state.roots, state.upload_dir])
    state.worker.start()
    return state


@asynccontextmanager
async def lifespan(app: FastAPI):
    state = await run_in_threadpool(_open, app)
    app.state.server = state
    try:
        yield
    finally:
        state.stop_following()
        if state.worker is not None:
            await run_in_threadpool(state.worker.stop)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    app = FastAPI(
        title="vidsonar",
        summary="Find the moment in your footage by describing it, in any language.",
        version=_version(),
        lifespan=lifespan,
        description="Writes (uploads, ingest jobs, deletes) need an API key in the `X-API-Key` "
                    "header; reads need one only when the server is configured so.",
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.keys, app.state.key_file = [], None
    app.add_exception_handler(VidsonarError, handle_project_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    for exc in out_of_range_errors():
        app.add_exception_handler(exc, handle_out_of_range)
    for exc in operational_errors():
        app.add_exception_handler(exc, handle_operational)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.include_router(routes_search.router)
    app.include_router(routes_media.router)
    app.include_router(routes_ingest.router)
    _system_routes(app)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def _system_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC.joinpath("index.html")), media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/api/health", response_model=HealthOut, tags=["system"],
             summary="Liveness and readiness, with counts",
             responses={503: {"description": "Degraded: the ingest worker is not running; or "
                                             "unavailable: the catalog database or the index "
                                             "server is unreachable"}})
    def health(state: StateDep, response: Response) -> dict | JSONResponse:
        alive = state.worker is not None and state.worker.alive
        read_only = state.archive.read_only  # no worker, by design
        try:
            counts, jobs = state.catalog.counts(), state.jobs.counts()
            vectors = state.store.index.count
        except UnreachableError as exc:  # the threads wait it out; so does this route
            return JSONResponse({"status": "unavailable", "detail": str(exc), "error": type(exc).__name__,
                                 "space": state.space.name, "worker_alive": alive,
                                 "read_only": read_only}, 503, headers={"Retry-After": str(RETRY_AFTER)})
        if not (alive or read_only):
            response.status_code = 503
        return {"status": "ok" if alive or read_only else "degraded", "space": state.space.name,
                "videos": counts["videos"], "snippets": counts["snippets"],
                "index_vectors": vectors, "jobs": jobs,
                "worker_alive": alive, "read_only": read_only}

    @app.get("/api/info", response_model=InfoOut, tags=["system"], dependencies=[Depends(require_read)],
             summary="The archive: counts, concept space, index type and size",
             responses=error_responses(401, 403, 503))
    def info(archive: ArchiveDep, check_thumbnails: Annotated[bool, Query(
            description="Also count the snippets whose thumbnail is missing or damaged (as "
                        "`vidsonar info --check-thumbnails`): reads every snippet row and lists "
                        "every video's thumbnail folder, so slow on a large archive; without it "
                        "both counts are null")] = False) -> dict:
        return archive.info(check_thumbnails=check_thumbnails)

    @app.get("/metrics", tags=["system"], summary="Prometheus metrics",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics(state: StateDep) -> Response:
        """Always answered: where the catalog or the index cannot be reached, its
        ``vidsonar_reachable`` reads 0 and its gauges keep their last reading, so a scrape
        during an outage still gets the request counters that show what it costs."""
        m = state.metrics

        def catalog() -> None:
            for status, n in state.jobs.counts().items():
                m.jobs.labels(status).set(n)
            counts = state.catalog.counts()
            for status in ("videos", "failed", "pending"):
                m.videos.labels("ok" if status == "videos" else status).set(counts[status])

        def index() -> None:
            m.vectors.set(state.store.index.count)
        for store, read in (("catalog", catalog), ("index", index)):
            try:
                read()
            except UnreachableError as exc:
                log.debug("/metrics: %s", exc)
                m.reachable.labels(store).set(0)
            else:
                m.reachable.labels(store).set(1)
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("vidsonar")
    except PackageNotFoundError:
        return "0"

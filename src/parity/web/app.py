"""The app factory: settings in, a FastAPI app out. Nothing happens at import time.

The database is opened when the app starts (lifespan) and closed when it stops. Results come
from a ``ResultStore`` (``parity.reports.results``), so pages slice precomputed frames.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from parity.access import LoginThrottle, Scope, User
from parity.access.grant import create_all_tables
from parity.db import Database, open_database
from parity.errors import ConfigurationError
from parity.reports.results import ResultStore
from parity.settings import Settings
from parity.web.choice import ChoiceMiddleware
from parity.web.computing import Computations, start_keeping_warm
from parity.web.errors import install_error_handlers
from parity.web.security import RefusalAuditMiddleware, SecurityHeadersMiddleware, check_path_params
from parity.web.templating import make_templates

if TYPE_CHECKING:
    from parity.interop.mesh.worker import MeshWorker

HERE = Path(__file__).parent
API_PREFIX = "/api/v1"


class AppState:
    """What request handlers share: settings, the database, results, templates, login throttle."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.results = ResultStore(db, structure=settings.structure)
        self.templates = make_templates(settings)
        self.throttle = LoginThrottle(db)
        self.scopes = ScopeCache()
        self.computations = Computations()
        self.compute_wait: float | None = None  # see create_app


class ScopeCache:
    """Scopes by (data version, user, as_of): a trust's caseload is a query over events, so it is
    worked out once per data version rather than on every request. Small and bounded."""

    MAX_ENTRIES = 512

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, Scope] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: str, user: User, as_of: date, build: Callable[[], Scope]) -> Scope:
        key = (version, user.username, user.role, user.org_code, user.disabled, as_of)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        scope = build()
        with self._lock:
            self._entries[key] = scope
            while len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)
        return scope


#: PostgreSQL advisory lock key held while a server process makes missing tables and indexes.
SCHEMA_LOCK_KEY = 7_061_726_974


@contextlib.contextmanager
def _one_process_at_a_time(db: Database) -> Iterator[None]:
    """On PostgreSQL, hold a session advisory lock: several server processes starting together (``parity serve
    --workers``) would otherwise all find a table missing and make it, and all but one fail on PostgreSQL's
    catalogue ("duplicate key value violates unique constraint")."""
    if db.kind != "postgres":
        yield
        return
    db.execute("SELECT pg_advisory_lock(?)", [SCHEMA_LOCK_KEY])
    try:
        yield
    finally:
        db.execute("SELECT pg_advisory_unlock(?)", [SCHEMA_LOCK_KEY])


def _mesh_worker(settings: Settings, db: Database) -> MeshWorker | None:
    """Start the MESH worker (send, track, poll) when ``PARITY_MESH_CONFIG`` is set (M4)."""
    if not settings.mesh_config:
        return None
    from parity.interop.mesh import load_mesh_config
    from parity.interop.mesh.worker import MeshWorker

    worker = MeshWorker(db, load_mesh_config(settings.mesh_config), settings.mesh_poll_seconds)
    worker.start()
    return worker


def create_app(settings: Settings, *, db: Database | None = None, keep_warm: bool = False,
               compute_wait: float | None = None) -> FastAPI:
    """Build the web app. ``db`` lets tests pass an open database; otherwise ``settings.database_url``
    is opened at start-up (it must already hold loaded data: ``parity load`` first). ``keep_warm`` (``parity
    serve``) works out the default reporting date's pages in the background at start-up and after each load
    (``parity.web.computing.keep_warm``). ``compute_wait`` (``parity serve``: ``computing.WAIT_SECONDS``) is how
    long a page waits for figures being computed before it says so; None waits until they are ready."""
    if not settings.secret_key:
        raise ConfigurationError("a session secret key is required (set PARITY_SECRET_KEY)")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = db is None
        database = open_database(settings.database_url) if own else db
        assert database is not None
        with database.lock, _one_process_at_a_time(database):
            # Every table now, while this server can still write them all: beside it on a DuckDB file,
            # other commands only read (parity.db.shared), and a missing table there cannot be made.
            create_all_tables(database)
        if own and database.shared is not None:
            # A DuckDB file shared with the command line: keep it for writing between writes until a
            # command asks for it (parity.db.shared), so an audited page pays no re-attach.
            database.shared.make_sticky()
        app.state.parity = AppState(settings, database)
        app.state.parity.compute_wait = compute_wait
        worker = _mesh_worker(settings, database)
        # The default reporting date's pages, worked out now and after every load (parity.web.computing).
        warm = start_keeping_warm(app.state.parity) if keep_warm else None
        try:
            yield
        finally:
            if warm is not None:
                warm.set()
            if worker is not None:
                worker.stop()
            if own:
                database.close()

    app = FastAPI(
        # Malformed path parameters are refused before any route (or audit write) runs.
        dependencies=[Depends(check_path_params)],
        title="Parity",
        summary="Physical health checks for people with severe mental illness: measures and worklists.",
        version="1",
        lifespan=lifespan,
        # The default Swagger/ReDoc pages load scripts from a CDN, and nothing here may; the API is
        # described by the OpenAPI document and a server-rendered page (routes/api_docs.py).
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.add_middleware(ChoiceMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="parity_session",
        max_age=int(timedelta(hours=settings.session_hours).total_seconds()),
        same_site="strict",
        https_only=settings.cookie_secure,
    )
    app.add_middleware(RefusalAuditMiddleware)
    # Added last, so outermost: it sees the session cookie too and marks it Secure over https.
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    install_error_handlers(app)

    from parity.web.routes import (
        admin,
        api,
        api_docs,
        assessments,
        auth,
        care,
        dashboard,
        followup,
        health,
        inequalities,
        messages,
        patients,
        practices,
        programme,
        published,
        trust,
    )

    for module in (health, auth, dashboard, inequalities, published, programme, practices, care, followup, patients,
                   trust, messages, assessments, admin, api_docs):
        app.include_router(module.router)
    app.include_router(api.router, prefix=API_PREFIX)
    return app


def app_from_env() -> FastAPI:
    """The app of one ``parity serve --workers N`` process: settings from the environment (``parity serve``
    puts the database URL there), the session key from its file, as one process would."""
    from parity.web.computing import WAIT_SECONDS

    return create_app(Settings.from_env().with_secret_key(), keep_warm=True, compute_wait=WAIT_SECONDS)

"""The officer service over HTTP (issue 13): FastAPI on one store, every request authenticated and audited.

:func:`create_app` builds the application for a store file; ``linkage serve`` runs it with uvicorn. Each
request carries ``Authorization: Bearer TOKEN`` (:func:`linkage.access.authenticate`): none, or one the
store does not know, is a 401; a role without the right to the endpoint's action
(:data:`linkage.access.PERMISSIONS`) a 403; more than the per-token rate a 429 with ``Retry-After``. Every
request, refused or answered, is appended to the store's audit (:func:`linkage.access.write_audit`): who,
the route's pattern (never a path holding a record id), the body's fields as a hash, the identities the
answer names, the status and the time taken.

Every error has one shape, ``{"error": {"status": 404, "code": "not_found", "message": "..."}}``; no stack
trace leaves the server (an unexpected error is a 500 with a message that says so, and its traceback goes
to the server's log, which never holds a request's values). The application log holds the route, the
status, the user and the time, never a name, NIK or other value.

The service holds the store for its life (:class:`Service`): requests read it on cursors of their own, in
worker threads, side by side; matches are scored by the warm scorer (:mod:`linkage.warm`) against its
snapshot in memory; writers (decisions, registrations, link runs started with ``POST /v1/runs``) take
turns under one lock and share the process's database. When a write commits, a new snapshot is swapped in
whole, so that a match sees a link run's result all at once, never half of it (README, "Links while the
service runs").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import duckdb
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from linkage.access import Action, User, allowed, authenticate, read_audit, write_audit
from linkage.config import Config
from linkage.decide import KINDS, decide
from linkage.errors import InputError, LinkageError, NotFoundError, StoreError
from linkage.history import history
from linkage.query import QUERY_FIELDS, query
from linkage.schema import FIELDS
from linkage.spec import load_spec
from linkage.store import Store
from linkage.warm import Scorer

__all__ = ["DEFAULT_RATE", "ApiError", "Context", "Service", "create_app", "guarded", "threshold_args"]

log = logging.getLogger(__name__)

DEFAULT_RATE: Final = 120
"""Requests a token may make per minute, in bursts of up to that many (a counter serves one person)."""

_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than 200, in the service's one error shape."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"status": status, "code": _CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimit:
    """A token bucket per user: ``per_minute`` requests a minute, refilled continuously."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> float:
        """Take one request for ``key``; return 0 when allowed, else the seconds until one is."""
        now = self.clock()
        rate = self.per_minute / 60.0
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(self.per_minute), now))
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate


class RunBody(BaseModel):
    """A link run: files on the server to ingest first (none: link what is stored), and whether in full."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(default_factory=list, max_length=1000, description="paths of files on the server")
    full: bool = Field(False, description="re-link every record (default: what is new or changed)")


class DecisionBody(BaseModel):
    """A must-link or cannot-link decision between two stored applications."""

    kind: str = Field(description="must_link or cannot_link")
    record_id_a: str = Field(min_length=1, max_length=200)
    record_id_b: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=1000, description="why, in the officer's words")


MAX_FIELD_CHARS: Final = 1000
"""The longest value a field of a registered application may hold (a longer one is a 422)."""

def _fields_model(name: str, fields: Sequence[str], required: Collection[str], **extra: Any) -> type[BaseModel]:
    """A body of the schema's ``fields`` (text, at most :data:`MAX_FIELD_CHARS`; ``required`` ones needed),
    and ``extra`` fields; an unknown field is named in a 422, not dropped."""
    made: type[BaseModel] = create_model(  # type: ignore[call-overload]
        name,
        __config__=ConfigDict(extra="forbid"),
        **{
            f.name: (
                str if f.name in required else str | None,
                Field(... if f.name in required else None, min_length=1 if f.name in required else 0,
                      max_length=MAX_FIELD_CHARS, description=f"{f.meaning} (e.g. {f.example})"),
            )
            for f in FIELDS
            if f.name in fields
        },
        **extra,
    )
    return made


ApplicationBody = _fields_model("ApplicationBody", [f.name for f in FIELDS], {f.name for f in FIELDS if f.required})
"""One new application, in the schema's roles (linkage/schema.py): ``record_id`` and ``full_name`` needed."""

MAX_CANDIDATES: Final = 100
"""The most candidate identities one match returns."""

MatchBody = _fields_model(
    "MatchBody",
    QUERY_FIELDS,
    {"full_name"},
    limit=(int, Field(10, ge=1, le=MAX_CANDIDATES, description="the most candidate identities returned")),
)
"""One applicant at the counter, in the schema's roles (:data:`linkage.query.QUERY_FIELDS`), and ``limit``."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    """A link run the service runs for an admin: ingest the given files (if any), then link."""

    job_id: str
    inputs: list[str]
    full: bool
    state: str = "queued"  # queued, running, succeeded, failed
    submitted_at: str = ""
    finished_at: str | None = None
    run_id: str | None = None
    message: str | None = None

    def public(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Jobs:
    """The link runs of the service, one at a time in a worker thread, while queries go on being answered."""

    found: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, service: Service, inputs: list[Path], *, full: bool) -> Job:
        job = Job(f"job-{uuid.uuid4().hex[:12]}", [str(p) for p in inputs], full, submitted_at=_now())
        with self._lock:
            self.found[job.job_id] = job
        threading.Thread(target=self._run, args=(service, job, inputs), daemon=True, name=job.job_id).start()
        return job

    def _run(self, service: Service, job: Job, inputs: list[Path]) -> None:
        from linkage.engine import link
        from linkage.pipeline import ingest

        with service.lock, service.job_threads():  # one writer at a time: decisions and registrations wait
            job.state = "running"
            try:
                if inputs:
                    ingest(inputs, service.config, db=service.db)
                run_id = link(service.db, service.config, full=job.full).run_id
                service.refresh()  # queries see the run's result from here on, all at once
                job.run_id = run_id
                job.finished_at, job.state = _now(), "succeeded"  # the state last: a poller sees both
            except LinkageError as exc:
                job.message, job.finished_at, job.state = str(exc), _now(), "failed"
            except Exception:
                log.exception("link job %s failed", job.job_id)
                job.message = "internal error: the service logged it"
                job.finished_at, job.state = _now(), "failed"


@dataclass
class Service:
    """The service's state: the store it holds open, its warm scorer, the rate limit and the writers' lock.

    The service holds the store for its life (DuckDB lets one process write a file) and is its only writer
    while it runs: requests read it on cursors of their own, side by side; writers (decisions,
    registrations, link runs) open it again in the same process, which shares the one database, and DuckDB's
    transactions keep each reader on the state it started from. Matches read the scorer's snapshot, swapped
    whole after each write (:meth:`refresh`).
    """

    db: Path
    rate: RateLimit
    config: Config = field(default_factory=Config)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: Store | None = None
    scorer: Scorer | None = None
    jobs: Jobs = field(default_factory=lambda: Jobs())

    def open(self) -> None:
        """Open the store for the service's life and warm the scorer (when the store has a model)."""
        self.held = Store(self.db, memory_limit=self.config.store.memory_limit)
        self.refresh()
        _warm_up()

    def close(self) -> None:
        if self.held is not None:
            self.held.close()
            self.held = None

    @contextmanager
    def store(self) -> Iterator[Store]:
        """A cursor of the held store for one request (its own transactions and TEMP tables)."""
        if self.held is None:
            self.open()
        assert self.held is not None
        try:
            cursor = Store.on(self.held.con.cursor())
        except duckdb.Error as exc:
            raise ApiError(503, f"the store cannot be read now: {exc}") from exc
        with cursor:
            yield cursor

    def writing(self, write: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Call ``write`` as the one writer (in a worker thread: the lock is never held across an ``await``)."""
        with self.lock:
            return write(*args, **kwargs)

    @contextmanager
    def job_threads(self) -> Iterator[None]:
        """DuckDB's threads for a link job: all but one core, so that matches keep one while the job runs."""
        assert self.held is not None
        before = int(self.held.scalar("SELECT current_setting('threads')"))
        self.held.sql("SET threads = ?", [max(1, before - 1)])
        try:
            yield
        finally:
            self.held.sql("SET threads = ?", [before])

    def refresh(self) -> None:
        """Swap in a snapshot of the store as written (after a decision, registration or link run)."""
        with self.store() as cursor:
            if self.scorer is not None:
                self.scorer.refresh(cursor)
                return
            try:
                self.scorer = Scorer(cursor, load_spec(None))
            except InputError as exc:  # no model yet: a match says so (linkage.query), and the next run warms it
                log.info("no warm scorer: %s", exc)


@dataclass
class Context:
    """What the audit needs of a request once it is answered."""

    action: Action
    route: str
    user: User | None = None
    fields: dict[str, Any] | None = None
    identities: list[str] = field(default_factory=list)


UserOf = Callable[["Service", Request], "User | None"]
"""How a request names its user: the API reads the bearer token, the pages their session cookie."""


async def guarded(
    service: Service, request: Request, context: Context, work: Callable[[], Awaitable[Any]], user_of: UserOf
) -> tuple[int, Any, dict[str, str] | None]:
    """Answer one request the way every endpoint and page does: user (401), rate (429), role (403), work, audit.

    Returns:
        ``(status, body, headers)``: 200 and what ``work`` returned, or the error's status and message.
    """
    started = time.perf_counter()
    status, body, headers = 200, None, None
    try:
        context.user = user_of(service, request)
        if context.user is None:
            raise ApiError(401, "a valid bearer token is needed", {"WWW-Authenticate": "Bearer"})
        wait = service.rate.take(context.user.name)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, f"too many requests: try again in {seconds} s", {"Retry-After": str(seconds)})
        if not allowed(context.user, context.action):
            raise ApiError(403, f"the role {context.user.role.value!r} may not {context.action.replace('_', ' ')}")
        body = await work()
    except ApiError as exc:
        status, body, headers = exc.status, exc.message, exc.headers
    except ValidationError as exc:
        status, body = 422, _invalid(exc.errors())
    except NotFoundError as exc:
        status, body = 404, str(exc)
    except LinkageError as exc:
        status, body = (409 if isinstance(exc, StoreError) else 400), str(exc)
    except Exception:
        log.exception("internal error on %s", context.route)  # the route only: no request values
        status, body = 500, "internal error: the service logged it; nothing was changed by this request"
    elapsed = 1000 * (time.perf_counter() - started)
    try:
        with service.store() as store:
            write_audit(
                store, user=context.user, endpoint=context.route, method=request.method, status=status,
                duration_ms=elapsed, fields=context.fields, identities=context.identities,
            )  # fmt: skip
    except Exception:
        log.exception("audit write failed on %s", context.route)
        if status == 200:
            status, body = 503, "the request could not be audited, so it is not answered"
    user = context.user.name if context.user else "-"
    log.info("%s %s %d %s %.1f ms", request.method, context.route, status, user, elapsed)
    return status, body, headers


def create_app(db: Path, *, rate_per_minute: int = DEFAULT_RATE, config: Config | None = None) -> FastAPI:
    """The officer service on the store at ``db`` (``config``: its settings, the defaults when ``None``).

    Raises:
        StoreError: no store at ``db``.
    """
    if not Path(db).exists():
        raise StoreError(f"no store at {db}: run `linkage link --db {db}` first")
    service = Service(Path(db), RateLimit(rate_per_minute), config or Config())
    service.open()  # the store held and the scorer warm before the first request

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        lifespan=lifespan,
        title="linkage officer service",
        version="1",
        description="Match one applicant against every office's applications; see an identity's history; "
        "record decisions. Every request needs `Authorization: Bearer TOKEN` and is audited.",
    )

    async def answered(
        request: Request, context: Context, work: Callable[[], Awaitable[Any]], status: int = 200
    ) -> JSONResponse:
        code, body, headers = await guarded(service, request, context, work, _bearer_user)
        if code != 200:
            return _error(code, str(body), headers)
        return JSONResponse(body, status_code=status)

    @app.get("/v1/identities/{identity_id}", summary="An identity's applications across offices, and why")
    async def get_identity(identity_id: str, request: Request) -> JSONResponse:
        context = Context("view_identities", "/v1/identities/{identity_id}")

        async def work() -> Any:
            with service.store() as store:
                found = history(store, identity_id)
            if found["found_as"] != "identity":
                raise NotFoundError(f"no identity {identity_id!r}: give an identity id (ID- and 16 hex digits)")
            context.identities = [found["identity_id"]]
            return _jsonable(found)

        return await answered(request, context, work)

    @app.get("/v1/applications/{record_id}", summary="One application, its identity and that identity's history")
    async def get_application(record_id: str, request: Request) -> JSONResponse:
        context = Context("view_applications", "/v1/applications/{record_id}")

        async def work() -> Any:
            with service.store() as store:
                found = history(store, record_id)
            if found["found_as"] == "identity":
                raise NotFoundError(f"{record_id!r} is an identity id: ask /v1/identities/{record_id}")
            context.identities = [found["identity_id"]] if found["identity_id"] else []
            return _jsonable(found)

        return await answered(request, context, work)

    @app.post(
        "/v1/decisions",
        summary="Record that two applications are, or are not, the same person",
        openapi_extra=_body_schema(DecisionBody),
    )
    async def post_decision(request: Request) -> JSONResponse:
        context = Context("decide", "/v1/decisions")

        async def work() -> Any:
            decision = await _body(request, DecisionBody, context)
            if decision.kind not in KINDS:
                raise InputError(f"unknown decision kind {decision.kind!r}: use {' or '.join(KINDS)}")
            assert context.user is not None  # answered() checked it
            made = await run_in_threadpool(
                    service.writing, decide, service.db, decision.kind, decision.record_id_a, decision.record_id_b,
                    by=context.user.name, reason=decision.reason, memory_limit=service.config.store.memory_limit,
                )  # fmt: skip
            return _jsonable(made.__dict__)

        return await answered(request, context, work)

    @app.post(
        "/v1/match",
        summary="Match one applicant against every office's applications: candidate identities, best first",
        openapi_extra=_body_schema(MatchBody),
    )
    async def post_match(request: Request) -> JSONResponse:
        context = Context("query", "/v1/match")

        async def work() -> Any:
            body = (await _body(request, MatchBody, context)).model_dump()
            limit = body.pop("limit")
            with service.store() as store:  # a cursor: queries on several threads run side by side
                answer = await run_in_threadpool(
                    query, store, body, limit=limit, dataset=service.config.dataset, scorer=service.scorer
                )
            context.identities = [c["identity_id"] for c in answer["candidates"]]
            return _jsonable(answer)

        return await answered(request, context, work)

    @app.post(
        "/v1/applications",
        summary="Register one new application and link it at once",
        openapi_extra=_body_schema(ApplicationBody),
    )
    async def post_application(request: Request) -> JSONResponse:
        context = Context("register", "/v1/applications")

        async def work() -> Any:
            fields = (await _body(request, ApplicationBody, context)).model_dump()
            answer, current = await run_in_threadpool(service.writing, registered, service, fields)
            if not current:  # matches see the new application once a new snapshot is loaded (seconds at 1M)
                threading.Thread(target=service.refresh, daemon=True, name="refresh").start()
            context.identities = [answer["identity_id"]] if answer["identity_id"] else []
            return _jsonable(answer)

        return await answered(request, context, work)

    @app.post(
        "/v1/runs",
        summary="Start a link run (admins): ingest the given files on the server, then link; queries go on",
        openapi_extra=_body_schema(RunBody),
        status_code=202,
    )
    async def post_run(request: Request) -> JSONResponse:
        context = Context("manage_runs", "/v1/runs")

        async def work() -> Any:
            body = await _body(request, RunBody, context)
            inputs = [Path(p) for p in body.inputs]
            missing = [str(p) for p in inputs if not p.is_file()]
            if missing:
                raise InputError(f"no such file on the server: {', '.join(repr(m) for m in missing)}")
            return service.jobs.start(service, inputs, full=body.full).public()

        return await answered(request, context, work, status=202)

    @app.get("/v1/runs/{job_id}", summary="A link run started through the service: its state (admins)")
    async def get_run(job_id: str, request: Request) -> JSONResponse:
        context = Context("manage_runs", "/v1/runs/{job_id}")

        async def work() -> Any:
            job = service.jobs.found.get(job_id)
            if job is None:
                raise NotFoundError(f"no run job {job_id!r} in this service")
            return job.public()

        return await answered(request, context, work)

    @app.get("/v1/audit", summary="The audit, newest first (admins)")
    async def get_audit(
        request: Request, since: str | None = None, user: str | None = None, limit: int = 100
    ) -> JSONResponse:
        context = Context("read_audit", "/v1/audit", fields={"since": since, "user": user, "limit": limit})

        async def work() -> Any:
            try:
                day = dt.date.fromisoformat(since) if since else None
            except ValueError as exc:
                raise InputError(f"since {since!r} is not a date: give YYYY-MM-DD") from exc
            with service.store() as store:
                return {"audit": read_audit(store, since=day, user=user, limit=limit)}

        return await answered(request, context, work)

    @app.get("/v1/threshold", summary="What moving the link threshold from A to B costs and gains (analysts)")
    async def get_threshold(request: Request) -> JSONResponse:
        # from, to and minutes_per_review are read by threshold_args, after the token is checked: a request
        # without one is a 401 (audited) whatever its parameters, and a bad number a 400 in the one shape
        asked = dict(request.query_params)
        context = Context("read_evaluations", "/v1/threshold", fields=asked)

        async def work() -> Any:
            from linkage.cutoff import cost

            from_, to, minutes = threshold_args(asked)
            with service.store() as store:
                found = await run_in_threadpool(cost, store, from_=from_, to=to, minutes_per_review=minutes)
            return _jsonable(found.to_dict())

        return await answered(request, context, work)

    # --- the analysts' samples, labels and estimates (issue 14 §5): their own module
    from linkage import label_web

    label_web.add_api(app, service, answered)
    # --- end of the analysts' endpoints

    from linkage import web  # here, not at the top: web.py builds on this module

    app.include_router(web.router(service))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/v1/"):  # a page: the same message, as a page
            return web.error_page(request, exc.status_code, str(exc.detail))
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith("/v1/"):
            return web.error_page(request, 422, _invalid(exc.errors()))
        return _error(422, _invalid(exc.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("internal error")
        if not request.url.path.startswith("/v1/"):
            return web.error_page(request, 500, "internal error: the service logged it")
        return _error(500, "internal error: the service logged it")

    return app


# An applicant with every field, normalised once at start (a made-up person in Bandar Lampung's region code).
_WARM_UP: Final = {"full_name": "Siti Aminah binti Ahmad", "birth_date": "1990-05-12", "nik": "1871015205900001",
                   "mother_name": "Aminah", "birth_place": "Bandar Lampung", "sex": "F", "phone": "081234567890",
                   "address": "Jl. Kartini 5 RT 01 RW 02 Kelurahan Palapa, Tanjung Karang Pusat",
                   "prior_passport_no": "B1234567"}  # fmt: skip


def _warm_up() -> None:
    """Do the one-time work of the first registration at start instead: it took 0.6 s more than the next ones,
    0.2 s of it reading lokal's region tables for the NIK and place rules and 0.2 s importing SciPy's graph
    module for clustering (a profile at 1M)."""
    import numpy as np

    from linkage.graph import component_labels
    from linkage.query import normalised_row

    normalised_row(_WARM_UP, warnings=[])
    component_labels(2, np.array([0]), np.array([1]))


def registered(service: Service, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """:func:`register` one application with the service's warm scorer, then patch the scorer's snapshot with
    it, so that the next match and the next registration see it at once. Return the answer, and whether the
    snapshot is the store's (when not, the caller loads a new one)."""
    answer = register(service.db, service.config, fields, service.scorer)
    with service.store() as cursor:
        return answer, service.scorer is not None and service.scorer.patch(cursor)


def register(db: Path, config: Config, fields: dict[str, Any], scorer: Scorer | None = None) -> dict[str, Any]:
    """Ingest one application and link it, as ``linkage ingest`` then ``linkage link`` would; return the
    identity it joined and the alerts it raised (linked and review).

    With the service's warm ``scorer``, the application is scored in memory (:meth:`linkage.warm.Scorer.prescore`)
    and the link run only clusters and publishes its pairs: the same run, pairs, identities and alerts, in a
    fraction of the time (``tests/test_server.py`` compares the two stores).

    Raises:
        InputError: the store holds the record id already, or the row was quarantined (its reason).
    """
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from linkage.alerts import alerts
    from linkage.engine import run_link
    from linkage.pipeline import ingest

    record_id = fields["record_id"]
    with Store(db, **config.store.options()) as store:  # the service's own database, shared
        if store.rows("SELECT 1 FROM applications WHERE record_id = ?", [record_id]):
            raise InputError(f"an application {record_id!r} is stored already: a new application needs a new id")
    with tempfile.TemporaryDirectory(prefix="linkage-register-") as folder:
        path = Path(folder) / "application.parquet"  # Parquet: no delimiter to sniff in a value
        pq.write_table(pa.table({f.name: pa.array([fields.get(f.name)], pa.string()) for f in FIELDS}), path)
        report = ingest([path], config, db=db)
    if report.quarantined:
        reasons = ", ".join(sorted(report.quarantined_by_reason))
        raise InputError(f"the application was not accepted: {reasons}")
    spec = scorer.spec if scorer is not None else load_spec(None)  # checking a spec's SQL takes 0.4 s
    with Store(db, **config.store.options()) as store:
        row = store.arrow("SELECT * FROM applications_normalised WHERE record_id = ?", [record_id]).to_pylist()[0]
        prescored = scorer.prescore(row, scorer.state) if scorer is not None else None
        summary = run_link(
            store, spec, config_hash=config.fingerprint(), threshold=spec.threshold,
            max_guard_size=config.link.max_guard_size, prescored=prescored,
        ).summary  # fmt: skip
        found = store.rows("SELECT identity_id FROM membership WHERE record_id = ?", [record_id])
        raised = alerts(store, records=[record_id])
    return {
        "record_id": record_id,
        "identity_id": found[0][0] if found else None,
        "run_id": summary.run_id,
        "alerts": raised,
    }


def threshold_args(asked: dict[str, str]) -> tuple[float, float, float]:
    """``from``, ``to`` and ``minutes_per_review`` (default 3) of a request's query as numbers, for
    :func:`linkage.cutoff.cost` (which checks their ranges).

    Raises:
        InputError: one is missing or not a number.

    >>> threshold_args({"from": "0.9", "to": "0.5"})
    (0.9, 0.5, 3.0)
    """
    values = []
    for name, default in (("from", None), ("to", None), ("minutes_per_review", "3")):
        given = asked.get(name, default)
        if given is None or not given.strip():
            raise InputError(f"give the thresholds from and to, e.g. ?from=0.9&to=0.8 ({name} is missing)")
        try:
            values.append(float(given))
        except ValueError:
            raise InputError(f"{name} must be a number, got {given[:40]!r}") from None
    return values[0], values[1], values[2]


def _invalid(errors: Sequence[Any]) -> str:
    """A validation failure as the fields and what is wrong with each, never their values."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', 'invalid')}"
        for e in errors
    )
    return f"invalid request: {problems}"


_Body = TypeVar("_Body", bound=BaseModel)
_T = TypeVar("_T")


async def _body(request: Request, model: type[_Body], context: Context) -> _Body:
    """The request's JSON body as ``model``, read after the token is checked (so that a request without one is
    a 401, audited, whatever its body); its fields go to the audit as a hash.

    Raises:
        ApiError: the body is not a JSON object (400).
        ValidationError: it does not fit ``model`` (422).
    """
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise ApiError(400, "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    context.fields = {str(k): v for k, v in data.items()}
    return model.model_validate(data)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The request body of ``model`` for the OpenAPI description (the endpoint reads the body itself)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _bearer_user(service: Service, request: Request) -> User | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with service.store() as store:
        return authenticate(store, token.strip())


def _jsonable(value: Any) -> Any:
    """Dates and other values as JSON: ISO text for dates, lists for tuples, numbers as they are."""
    import datetime as dt

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)

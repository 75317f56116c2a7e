"""The analysts' labelling page, estimates page and their API (issue 14 §1 page, §2 charts, §5 API).

:func:`add_pages` adds the pages to the officer pages' router (:func:`linkage.web.router`) and :func:`add_api`
the endpoints to the service (:func:`linkage.server.create_app`); both go through the same guard as every
other page and endpoint (user, rate, role, audit by route pattern).

* ``GET /labels`` (``?sample=ID``): the sample's next pair this analyst has not labelled, the two applications
  side by side with the fields that differ marked, three buttons (match, non-match, unsure; keys m, n, u) and a
  note. The labelling is **blind**: nothing of what the model made of the pair (its probability, its
  comparisons' weights, its stratum) is on the page until the analyst has labelled it; then the next page
  shows them for the pair just labelled (and ``GET /labels/{l}/{r}`` for any pair they labelled).
* ``POST /labels``: one label, with the session's CSRF token, by the logged-in user (:func:`store_label`).
* ``GET /estimates`` (``?threshold=&sample=``): :func:`linkage.estimate.estimate` with its intervals, the
  strata, and the threshold-selection and precision-recall charts (:mod:`linkage.label_charts`).
* ``GET /v1/samples``, ``GET /v1/samples/{id}/pairs``, ``POST /v1/labels``, ``GET /v1/estimates``: the same
  as JSON, in the API's one error shape.

Logs hold routes and counts, never a record's values (:mod:`linkage.labels` logs the label kind only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from linkage.errors import InputError
from linkage.estimate import estimate
from linkage.label_charts import estimates_at, pr_chart, threshold_chart
from linkage.labels import LABELS, pair_view, progress, sample_id_of, sample_pairs, samples, store_label
from linkage.sample import FIELDS

__all__ = ["LABEL_TEXTS", "MAX_PAIRS", "MAX_SAMPLE", "LabelBody", "SampleBody", "add_api", "add_pages"]

MAX_PAIRS: Final = 1000
MAX_SAMPLE: Final = 10_000
"""The most pairs one request draws (an analyst labels a few hundred)."""
"""The most pairs one ``GET /v1/samples/{id}/pairs`` returns."""
KEYS: Final = {"match": "m", "non-match": "n", "unsure": "u"}
"""The keyboard shortcut of each label on the labelling page."""

LABEL_TEXTS: Final[dict[str, dict[str, Any]]] = {
    "id": {
        "title": "Pelabelan pasangan",
        "legend": "Apakah dua permohonan ini orang yang sama?",
        "labels": {"match": "Cocok", "non-match": "Tidak cocok", "unsure": "Ragu"},
        "note": "Catatan (opsional)",
        "progress": "Sudah Anda labeli: {done} dari {total} pasangan",
        "field": "Isian",
        "left": "Permohonan kiri",
        "right": "Permohonan kanan",
        "differs": "berbeda",
        "all_done": "Semua pasangan sampel ini sudah Anda labeli.",
        "yours": "Label Anda",
        "previous": "Pasangan yang baru Anda labeli",
        "probability": "Probabilitas model",
        "waterfall": "Bobot per perbandingan",
        "comparison": "Perbandingan",
        "level": "Tingkat",
        "weight": "Bobot",
        "no_score": "Model tidak menyimpan rincian skor pasangan ini.",
        "shortcuts": "Tombol: m = cocok, n = tidak cocok, u = ragu (di luar kotak catatan).",
        "sample": "Sampel",
        "estimates": "Estimasi dari label",
        "open_pair": "Buka pasangan",
    },
    "en": {
        "title": "Label pairs",
        "legend": "Are these two applications the same person?",
        "labels": {"match": "Match", "non-match": "Non-match", "unsure": "Unsure"},
        "note": "Note (optional)",
        "progress": "Labelled by you: {done} of {total} pairs",
        "field": "Field",
        "left": "Left application",
        "right": "Right application",
        "differs": "differs",
        "all_done": "You have labelled every pair of this sample.",
        "yours": "Your label",
        "previous": "The pair you just labelled",
        "probability": "Model probability",
        "waterfall": "Weight by comparison",
        "comparison": "Comparison",
        "level": "Level",
        "weight": "Weight",
        "no_score": "The store holds no score breakdown for this pair.",
        "shortcuts": "Keys: m = match, n = non-match, u = unsure (outside the note box).",
        "sample": "Sample",
        "estimates": "Estimates from labels",
        "open_pair": "Open pair",
    },
}
"""The labelling and estimates pages' own texts, one dict per language with the same keys."""


class LabelBody(BaseModel):
    """One label of a sampled pair, by the requesting user."""

    model_config = ConfigDict(extra="forbid")
    record_id_l: str = Field(min_length=1, max_length=200)
    record_id_r: str = Field(min_length=1, max_length=200)
    label: str = Field(description=f"one of {', '.join(LABELS)}")
    note: str | None = Field(None, max_length=1000)


class SampleBody(BaseModel):
    """A sample to draw (``linkage review sample``): how many pairs, and the draw's seed."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(ge=1, le=MAX_SAMPLE, description="pairs to draw")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="the same store, n and seed draw the same pairs")


Page = Callable[..., Awaitable[Response]]


def add_pages(pages: APIRouter, service: Any, page: Page, shown: Callable[..., HTMLResponse],
              checked_csrf: Callable[..., Any]) -> None:  # fmt: skip
    """Add the labelling and estimates pages to the officer pages' router, with its session helpers."""
    from linkage.server import Context
    from linkage.web import _form, _quote, _see, language

    def texts(request: Request) -> dict[str, Any]:
        return LABEL_TEXTS[language(request)]

    @pages.get("/labels", response_class=HTMLResponse)
    async def label_next(request: Request, sample: str | None = None, after_l: str = "", after_r: str = "") -> Response:
        context = Context("read_labels", "/labels")

        async def work() -> Response:
            assert context.user is not None  # guarded() checked it
            who = context.user.name
            with service.store() as store:
                sample_id = sample_id_of(store, sample)
                done, total = progress(store, sample_id, who)
                found = sample_pairs(store, sample_id, unlabelled_by=who, limit=1)
                pair = pair_view(store, found[0]["record_id_l"], found[0]["record_id_r"], who) if found else None
                previous = pair_view(store, after_l, after_r, who) if after_l and after_r else None
            if previous is not None and previous["label"] is None:
                previous = None  # blind: never the model's view of a pair this analyst has not labelled
            return shown(request, "labels.html", context, lt=texts(request), fields=FIELDS, keys=KEYS,
                         sample_id=sample_id, done=done, total=total, pair=pair, previous=previous)  # fmt: skip

        return await page(request, context, work)

    @pages.get("/labels/{record_id_l}/{record_id_r}", response_class=HTMLResponse)
    async def label_pair(record_id_l: str, record_id_r: str, request: Request, sample: str | None = None) -> Response:
        context = Context("read_labels", "/labels/{record_id_l}/{record_id_r}")

        async def work() -> Response:
            assert context.user is not None
            who = context.user.name
            with service.store() as store:
                pair = pair_view(store, record_id_l, record_id_r, who)
                sample_id = sample_id_of(store, sample)
                done, total = progress(store, sample_id, who)
            return shown(request, "labels.html", context, lt=texts(request), fields=FIELDS, keys=KEYS,
                         sample_id=sample_id, done=done, total=total, pair=pair,
                         previous=pair if pair["label"] else None)  # fmt: skip

        return await page(request, context, work)

    @pages.post("/labels")
    async def label_post(request: Request) -> Response:
        form = await _form(request)
        a, b = form.get("record_id_l", "").strip(), form.get("record_id_r", "").strip()
        label, note, sample = form.get("label", ""), form.get("note", ""), form.get("sample", "")
        context = Context("write_labels", "/labels",
                          fields={"record_id_l": a, "record_id_r": b, "label": label, "note": note})  # fmt: skip

        async def work() -> Response:
            checked_csrf(request, form)
            assert context.user is not None
            if not a or not b:
                raise InputError("the form names no pair: reload the labelling page")
            await run_in_threadpool(service.writing, _stored, service, a, b, label, context.user.name, note)
            where = f"/labels?sample={_quote(sample)}&" if sample else "/labels?"
            return _see(f"{where}after_l={_quote(a)}&after_r={_quote(b)}#previous")

        return await page(request, context, work)

    @pages.get("/estimates", response_class=HTMLResponse)
    async def estimates_page(request: Request, threshold: float | None = None, sample: str | None = None) -> Response:
        context = Context("read_evaluations", "/estimates", fields={"threshold": threshold, "sample": sample})

        async def work() -> Response:
            with service.store() as store:
                found, curve = await run_in_threadpool(_estimates, store, threshold, sample)
            # Markup: the charts are SVG this code draws from numbers, its few texts escaped (label_charts.py);
            # every other value on the page is escaped by the template as usual
            return shown(request, "estimates.html", context, lt=texts(request), found=found,
                         threshold_svg=Markup(threshold_chart(curve)), pr_svg=Markup(pr_chart(curve)))  # fmt: skip

        return await page(request, context, work)


def _stored(service: Any, a: str, b: str, label: str, labeller: str, note: str | None) -> str:
    """Store one label on the service's own store (the one writer, under its lock)."""
    with service.store() as store:
        return store_label(store, a, b, label, labeller, note)


def _drawn(service: Any, n: int, seed: int) -> Any:
    """A sample drawn by the one writer (the draw is stored)."""
    from linkage.sample import draw
    from linkage.spec import load_spec

    with service.store() as store:
        return draw(store, service.scorer.spec if service.scorer is not None else load_spec(None), n, seed=seed)


def _stored_model(store: Any, model_id: str) -> dict[str, Any]:
    """A stored model's artefact by its id."""
    import json

    from linkage.errors import NotFoundError

    found = store.rows("SELECT artefact FROM models WHERE model_id = ?", [model_id], table="models")
    if not found:
        raise NotFoundError(f"no model {model_id!r} in the store: GET /v1/models lists them")
    artefact = found[0][0]
    return dict(json.loads(artefact) if isinstance(artefact, str) else artefact)


def _estimates(store: Any, threshold: float | None, sample: str | None) -> tuple[Any, list[Any]]:
    found = estimate(store, threshold=threshold, sample_id=sample)
    return found, estimates_at(store, sample_id=found.sample_id)


def add_api(app: FastAPI, service: Any, answered: Callable[..., Awaitable[JSONResponse]]) -> None:
    """Add the analysts' endpoints: samples (listed and drawn), their pairs, a label, the estimates, the models
    (listed and compared)."""
    from linkage.server import Context, _body, _body_schema, _jsonable

    @app.get("/v1/samples", summary="The store's samples to label, newest first (analysts)")
    async def get_samples(request: Request) -> JSONResponse:
        context = Context("read_labels", "/v1/samples")

        async def work() -> Any:
            with service.store() as store:
                return {"samples": _jsonable(samples(store))}

        return await answered(request, context, work)

    @app.get("/v1/samples/{sample_id}/pairs", summary="A sample's pairs with both applications' fields (analysts)")
    async def get_sample_pairs(sample_id: str, request: Request, unlabelled: bool = False, limit: int = 100) -> Any:
        context = Context("read_labels", "/v1/samples/{sample_id}/pairs",
                          fields={"unlabelled": unlabelled, "limit": limit})  # fmt: skip

        async def work() -> Any:
            if not 1 <= limit <= MAX_PAIRS:
                raise InputError(f"limit {limit} is outside 1-{MAX_PAIRS}")
            assert context.user is not None
            with service.store() as store:
                found = sample_id_of(store, sample_id)
                pairs = sample_pairs(store, found, unlabelled_by=context.user.name if unlabelled else None,
                                     limit=limit)  # fmt: skip
            return {"sample_id": found, "pairs": _jsonable(pairs)}

        return await answered(request, context, work)

    @app.post("/v1/labels", summary="Label one sampled pair: match, non-match or unsure (analysts)",
              openapi_extra=_body_schema(LabelBody))  # fmt: skip
    async def post_label(request: Request) -> JSONResponse:
        context = Context("write_labels", "/v1/labels")

        async def work() -> Any:
            body = await _body(request, LabelBody, context)
            assert context.user is not None
            sample_id = await run_in_threadpool(service.writing, _stored, service, body.record_id_l, body.record_id_r,
                                                body.label, context.user.name, body.note)  # fmt: skip
            a, b = sorted((body.record_id_l.strip(), body.record_id_r.strip()))
            return {"record_id_l": a, "record_id_r": b, "label": body.label.strip().lower(),
                    "labeller": context.user.name, "sample_id": sample_id}  # fmt: skip

        return await answered(request, context, work)

    @app.post("/v1/samples", summary="Draw a sample of pairs to label, as `linkage review sample` (analysts)",
              openapi_extra=_body_schema(SampleBody))  # fmt: skip
    async def post_sample(request: Request) -> JSONResponse:
        context = Context("write_labels", "/v1/samples")

        async def work() -> Any:
            body = await _body(request, SampleBody, context)
            drawn = await run_in_threadpool(service.writing, _drawn, service, body.n, body.seed)
            return {"sample_id": drawn.sample_id, "pairs": len(drawn.pairs), **_jsonable(drawn.design())}

        return await answered(request, context, work)

    @app.get("/v1/models", summary="The store's models, newest first (analysts)")
    async def get_models(request: Request) -> JSONResponse:
        context = Context("read_evaluations", "/v1/models")

        async def work() -> Any:
            with service.store() as store:
                rows = store.rows("SELECT model_id, run_id, created_at, records, comparisons FROM models "
                                  "ORDER BY created_at DESC, model_id", table="models")  # fmt: skip
            names = ("model_id", "run_id", "created_at", "records", "comparisons")
            return {"models": _jsonable([dict(zip(names, row, strict=True)) for row in rows])}

        return await answered(request, context, work)

    @app.get("/v1/models/compare", summary="Two of the store's models side by side, and on its labels (analysts)")
    async def get_models_compare(request: Request, a: str, b: str) -> JSONResponse:
        context = Context("read_evaluations", "/v1/models/compare", fields={"a": a, "b": b})

        async def work() -> Any:
            from linkage.compare import compare_models

            with service.store() as store:
                artefacts = [_stored_model(store, model_id) for model_id in (a, b)]
                found = await run_in_threadpool(compare_models, *artefacts, store=store)
            return _jsonable(found.to_dict())

        return await answered(request, context, work)

    @app.get("/v1/estimates", summary="Precision, recall and F1 estimated from labels, with intervals (analysts)")
    async def get_estimates(request: Request, threshold: float | None = None, sample: str | None = None) -> Any:
        context = Context("read_evaluations", "/v1/estimates", fields={"threshold": threshold, "sample": sample})

        async def work() -> Any:
            with service.store() as store:
                found = await run_in_threadpool(estimate, store, threshold=threshold, sample_id=sample)
            return _jsonable(found.to_dict())

        return await answered(request, context, work)

"""Batch runs: read, quarantine, normalise and store, as one atomic run with a manifest.

Ingesting is idempotent: an accepted row whose record_id the store holds with the same values is
*unchanged* and writes nothing; with other values it is an *update* that replaces the stored rows
(see :meth:`linkage.store.Store.merge_staged`); any other is *new*.

An ingest run is the stages ``read`` and ``normalise`` of :data:`linkage.engine.STAGES`, then it publishes
the records in one transaction; it records its timings under those names (``read``, ``normalise``,
``publish``).
Reading and writing happen in this process while worker processes normalise, so the stages
overlap; each stage's time is the time this process spent in it (normalise: waiting for workers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from linkage.clock import Clock, peak_rss_mb
from linkage.config import Config
from linkage.engine import STAGES
from linkage.errors import InputError
from linkage.ingest import Batch, read_files
from linkage.normalise import COLUMNS, normalise_batch, normalise_parallel
from linkage.readers import FileReport
from linkage.store import Merged, Store
from linkage.tables import APPLICATIONS_COLUMNS, ISSUE_COLUMNS, QUARANTINE_COLUMNS, STAGED, arrow_table

__all__ = ["IngestReport", "ingest"]

# the stages an ingest run times: read and normalise, then the publish of its records
_TIMED: Final = (*(s.name for s in STAGES if s.module in ("linkage.ingest", "linkage.normalise")), "publish")

Progress = Callable[[str, int], None]
"""Called with (file name, rows just read) as ingest goes."""


@dataclass
class IngestReport:
    """What one ingest run did. ``rows_read == accepted + quarantined`` and ``accepted == new + updated +
    unchanged`` always hold. Field issues count those found in every accepted row, unchanged ones too."""

    run_id: str
    db: str
    rows_read: int = 0
    accepted: int = 0
    new: int = 0
    """accepted rows whose record_id the store did not hold"""
    updated: int = 0
    """accepted rows that replaced a stored record with other values"""
    unchanged: int = 0
    """accepted rows identical to the stored record: nothing written"""
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    field_issues: int = 0
    field_issues_by_reason: dict[str, int] = field(default_factory=dict)
    files: list[FileReport] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    interrupted_runs: list[dict[str, str]] = field(default_factory=list)
    """runs a kill left ``running``, marked ``interrupted`` by this one (run_id, kind, started_at)"""

    @property
    def reconciles(self) -> bool:
        return (
            self.rows_read == self.accepted + self.quarantined
            and self.accepted == self.new + self.updated + self.unchanged
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reconciles"] = self.reconciles
        return out


def ingest(
    paths: Sequence[Path],
    config: Config,
    *,
    db: Path | None = None,
    progress: Progress | None = None,
    today: dt.date | None = None,
) -> IngestReport:
    """Ingest files into the store as one run: all of it becomes visible, or none of it.

    Args:
        paths: CSV, Parquet or ``.xlsx`` files.
        config: settings and column mapping.
        db: the DuckDB store (default: ``config.store.path``).
        progress: called with (file, rows) as rows are read.
        today: reference date for date checks (default: today).

    Returns:
        Counts (read; accepted as new, updated and unchanged; quarantined, by reason), field issues by
        reason, timings, peak memory.

    Raises:
        InputError: a file cannot be read at all, or too many rows were quarantined.
        StoreError: the store cannot be opened or written.
    """
    collecting = gc.isenabled()
    # Reading holds ~10^5 row lists at a time and creates no reference cycles: the cyclic collector's
    # passes over them cost more than reading (1M CSV rows: 25 s with it, measured in ingest_bench).
    gc.disable()
    try:
        return _ingest(paths, config, db, progress, today)
    finally:
        if collecting:
            gc.enable()


def _ingest(
    paths: Sequence[Path], config: Config, db: Path | None, progress: Progress | None, today: dt.date | None
) -> IngestReport:
    db_path = db or config.store.path
    clock = Clock()
    with Store(db_path, create=True, **config.store.options()) as store:
        interrupted = store.mark_interrupted()
        run_id = store.begin_run("ingest", [str(p) for p in paths], config.fingerprint())
        report = IngestReport(run_id=run_id, db=str(db_path), interrupted_runs=interrupted)
        quarantined: Counter[str] = Counter()
        issues: Counter[str] = Counter()
        work = functools.partial(
            _prepare,
            run_id=run_id,
            id_scheme=config.dataset.id_scheme,
            name_rules=config.dataset.name_rules,
            phone_region=config.dataset.phone_region,
            today=today,
            earliest=config.dataset.earliest_date,
        )
        try:
            with store.transaction(), contextlib.ExitStack() as bulk:
                # Into an empty store every record is new: write straight to the tables, no staging, and index
                # them after.
                staged = store.stage() if store.count("applications") else {}
                if not staged:
                    bulk.enter_context(store.unindexed(*STAGED))
                batches = read_files(paths, config, reports=report.files)
                timed = _timed(batches, clock, "read", progress)
                results = normalise_parallel(timed, work, workers=config.ingest.workers)
                for prepared in _timed(results, clock, "normalise"):
                    with clock.stage("publish"):
                        for table, rows in prepared.tables.items():
                            store.insert(staged.get(table, table), rows)
                    quarantined.update(prepared.quarantine_reasons)
                    issues.update(prepared.issue_reasons)
                _fill(report, quarantined, issues)
                _check_share(report, config)
                with clock.stage("publish"):
                    merged = (
                        store.merge_staged(run_id) if staged else Merged(new=report.accepted, updated=0, unchanged=0)
                    )
                report.new, report.updated, report.unchanged = merged.new, merged.updated, merged.unchanged
                report.seconds = {**dict.fromkeys(_TIMED, 0.0), **clock.summary()}
                report.peak_rss_mb = peak_rss_mb()
                store.finish_run(run_id, "succeeded", _manifest(report))
        except BaseException as exc:
            store.finish_run(run_id, "failed", {"error": type(exc).__name__})
            raise
    return report


def _timed(items: Iterator[Any], clock: Clock, stage: str, progress: Progress | None = None) -> Iterator[Any]:
    """Pass items through, adding the time spent producing each to the clock's ``stage``."""
    while True:
        t0 = time.perf_counter()
        try:
            item = next(items)
        except StopIteration:
            clock.add(stage, time.perf_counter() - t0)
            return
        clock.add(stage, time.perf_counter() - t0)
        if progress is not None:
            progress(item.file, item.accepted + len(item.quarantined))
        yield item


@dataclass
class _Prepared:
    """One batch, normalised and turned into Arrow tables by a worker, ready for the store."""

    tables: dict[str, pa.Table]
    quarantine_reasons: Counter[str]
    issue_reasons: Counter[str]


def _prepare(batch: Batch, *, run_id: str, **rules: Any) -> _Prepared:
    """Normalise a batch and build every table it adds (runs in a worker process)."""
    normalised = normalise_batch(batch.columns, **rules)
    n, q = batch.accepted, batch.quarantined
    raw: dict[str, list[Any]] = dict(batch.columns)
    raw.update(run_id=[run_id] * n, source_file=[batch.file] * n, source_row=batch.rows, extras=batch.extras)
    tables = {
        "applications": arrow_table(raw, APPLICATIONS_COLUMNS),
        "applications_normalised": arrow_table(normalised.columns, COLUMNS),
    }
    if q:
        tables["quarantine"] = arrow_table(
            {
                "run_id": [run_id] * len(q),
                "source_file": [x.file for x in q],
                "source_row": [x.row for x in q],
                "reason": [x.reason for x in q],
                "field": [x.field for x in q],
                "value": [x.value for x in q],
                "raw": [x.raw for x in q],
            },
            QUARANTINE_COLUMNS,
        )
    found = normalised.issues + batch.read_issues
    if found:
        tables["field_issues"] = arrow_table(
            {
                "run_id": [run_id] * len(found),
                "record_id": [i[0] for i in found],
                "field": [i[1] for i in found],
                "value": [i[2] for i in found],
                "reason": [i[3] for i in found],
            },
            ISSUE_COLUMNS,
        )
    return _Prepared(tables, Counter(x.reason for x in q), Counter(i[3] for i in found))


def _fill(report: IngestReport, quarantined: Counter[str], issues: Counter[str]) -> None:
    report.rows_read = sum(f.rows_read for f in report.files)
    report.accepted = sum(f.accepted for f in report.files)
    report.quarantined = sum(f.quarantined for f in report.files)
    report.quarantined_by_reason = dict(sorted(quarantined.items()))
    report.field_issues = sum(issues.values())
    report.field_issues_by_reason = dict(sorted(issues.items()))


def _check_share(report: IngestReport, config: Config) -> None:
    limit = config.ingest.max_quarantine_share
    if report.rows_read and report.quarantined / report.rows_read > limit:
        raise InputError(
            f"{report.quarantined} of {report.rows_read} rows quarantined, more than ingest.max_quarantine_share"
            f" = {limit}: nothing was stored. Check the column mapping (--config) and the files' format."
        )


def _manifest(report: IngestReport) -> dict[str, Any]:
    out = report.to_dict()
    out.pop("run_id")
    return out

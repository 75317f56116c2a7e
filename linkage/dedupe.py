"""``linkage dedupe`` and ``linkage train``: files in, identities (or a model) out, through the run engine.

A dedupe is an ingest into a fresh working store, a full link run of :mod:`linkage.engine` (the same
orchestration as ``linkage link --full``) and an export: ``clusters.parquet``, ``pairs.parquet``,
``no_identity_evidence.parquet`` (the records without identity evidence, each with its candidates: see
:func:`linkage.review.unevidenced`), ``summary.json``, ``report.html`` and, when it trained, ``model.json``
and the model's charts. The working store is ``DIR/store.duckdb``: a later dedupe into the same folder
replaces it, but a store that a dedupe did not make (a shared store from ``linkage ingest``) is never touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq

from linkage import charts, labelled, model, prepare, score, train
from linkage.clock import Clock, peak_rss_mb
from linkage.config import Config
from linkage.engine import drop_scratch, run_link, run_threshold
from linkage.errors import InputError, StoreError
from linkage.pipeline import ingest
from linkage.review import unevidenced
from linkage.spec import load_spec
from linkage.store import Store

__all__ = ["DedupeSummary", "Trained", "dedupe", "train_files", "train_with_labels"]

FileProgress = Callable[[str, int], None]
"""Called with (file name, rows just read) as ingest goes."""

WORKING_STORE: Final = "store.duckdb"
_KIND: Final = "dedupe"  # the run kind that marks a working store


@dataclass
class DedupeSummary:
    """Counts, timings and provenance of one dedupe run (written as ``summary.json``)."""

    out: str
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    pairs_scored: int = 0
    identities: int = 0
    multi_record_identities: int = 0
    largest_identity: int = 0
    no_identity_evidence: int = 0  # records with a name and nothing else: never linked on a score
    clusters_cut_by_guard: int = 0
    edges_cut_by_guard: int = 0
    model_id: str = ""
    model_trained: bool = False
    engine: str = "duckdb"  # where the model was trained and the pairs scored (link.engine, --engine)
    threshold: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _working_store(folder: Path) -> Path:
    """A fresh working store in ``folder``; an earlier dedupe's is replaced, any other store refused.

    Raises:
        StoreError: ``folder`` holds a store that no dedupe made (it is left as it is).
    """
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / WORKING_STORE
    if db.exists():
        try:
            with Store(db, read_only=True) as store:
                kinds = {kind for (kind,) in store.rows("SELECT DISTINCT kind FROM runs")}
        except StoreError:
            kinds = set()
        if _KIND not in kinds:
            raise StoreError(
                f"{db} is a store that no dedupe made (a shared store?): it is left as it is. "
                "Choose another --out folder for the dedupe, or link that store with `linkage link --db`."
            )
        for stale in (db, db.with_name(db.name + ".wal")):
            stale.unlink(missing_ok=True)
    return db


def train_files(
    paths: Sequence[Path], config: Config, out: Path, *, spec_path: Path | None = None,
    progress: FileProgress | None = None,
) -> tuple[str, Path]:  # fmt: skip
    """Train a model on the given files without labels and write it to ``out`` (plus its charts).

    Returns:
        The model id and the folder holding the charts (and the working store).
    """
    trained = _train(paths, config, out, spec_path=spec_path, progress=progress)
    return trained.model_id, Path(trained.charts)


@dataclass
class Trained:
    """A model trained with labels (:func:`train_with_labels`): where it went, and where its m came from."""

    model_id: str
    out: str
    charts: str
    min_labels: int = labelled.MIN_LABELS
    labelled_pairs: int = 0
    """labelled pairs (match or non-match) with stored levels"""
    labelled_matches: int = 0
    not_stored: int = 0
    """labelled pairs skipped: no stored pair to read their levels from (e.g. the outside slice)"""
    comparisons: list[labelled.MUpdate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_with_labels(
    paths: Sequence[Path], config: Config, out: Path, *, db: Path, min_labels: int = labelled.MIN_LABELS,
    spec_path: Path | None = None, progress: FileProgress | None = None,
) -> Trained:  # fmt: skip
    """Train as :func:`train_files` does, then take each comparison's m from the labelled pairs of the store
    ``db`` where it has at least ``min_labels`` labelled matches (:func:`linkage.labelled.m_from_labels`).

    The labels are read first (the store is opened read-only), so a missing store fails before training.

    Raises:
        StoreError: no store at ``db``, or it cannot be opened.
        InputError: nothing was accepted from ``paths``.
    """
    with Store(db, read_only=True, **config.store.options()) as store:
        found = labelled.labelled_levels(store)
    return _train(paths, config, out, spec_path=spec_path, progress=progress, labels=found, min_labels=min_labels)


def _train(
    paths: Sequence[Path], config: Config, out: Path, *, spec_path: Path | None, progress: FileProgress | None,
    labels: labelled.Labelled | None = None, min_labels: int = labelled.MIN_LABELS,
) -> Trained:  # fmt: skip
    """Train on ``paths``, with m from ``labels`` where they suffice; write the model, its charts; report."""
    spec = load_spec(spec_path)  # every SQL fragment checked before any long work
    work = out.with_suffix(".work")
    db = _working_store(work)
    report = ingest(paths, config, db=db, progress=progress)
    if report.accepted == 0:
        raise InputError("no application was accepted: nothing to train on (see the quarantine reasons)")
    with Store(db, **config.store.options()) as store:
        run_id = store.begin_run(_KIND, [str(p) for p in paths], config.fingerprint())
        prepare.prepare_full(store, spec)
        if config.link.engine == "spark":
            from linkage import spark

            linker = spark.trained_settings(store, spec, config.spark, config.spark.scratch or work / "spark")
        else:
            linker = train.train(store, spec)
        made = model.artefact(
            linker, spec=spec, data_fingerprint=prepare.data_fingerprint(store), config_hash=config.fingerprint()
        )
        trained = Trained(model_id="", out=str(out), charts=str(work), min_labels=min_labels)
        if labels is not None:
            made, updates = labelled.m_from_labels(made, labels, min_labels=min_labels)
            trained.labelled_pairs, trained.labelled_matches = len(labels.pairs), labels.matches
            trained.not_stored, trained.comparisons = labels.not_stored, list(updates)
        if labels is not None or isinstance(linker, dict):
            linker = model.from_artefact(store, made, spec)  # the charts show the m that the file holds
        trained.model_id = model.save(made, out)
        charts.model_charts(linker, work)
        store.finish_run(run_id, "succeeded", {"model_id": made["model_id"]})
    return trained


def dedupe(
    paths: Sequence[Path],
    config: Config,
    out: Path,
    *,
    model_path: Path | None = None,
    spec_path: Path | None = None,
    threshold: float | None = None,
    progress: FileProgress | None = None,
) -> DedupeSummary:
    """Deduplicate application files into identities; write clusters, pairs, summary and charts to ``out``.

    Args:
        paths: input files (CSV, Parquet, .xlsx).
        config: settings and column mapping.
        out: output folder (created).
        model_path: a model from ``linkage train``; prediction then never retrains.
        spec_path: the model spec (default ``configs/model.toml``).
        threshold: match probability at which records join one identity (default: the spec's).
        progress: called with (file, rows) as rows are read.

    Raises:
        InputError: nothing was accepted, or the model file is not a model.
        ConfigError: the spec is invalid, or ``threshold`` is not valid for it (checked before the ingest).
        StoreError: ``out`` holds a store that no dedupe made.
    """
    spec = load_spec(spec_path)  # every SQL fragment checked before any long work
    cut = run_threshold(spec, threshold)
    artefact = model.read_artefact(model_path) if model_path is not None else None
    summary = DedupeSummary(out=str(out), threshold=cut)
    clock = Clock()
    db = _working_store(out)
    with clock.stage("ingest"):
        report = ingest(paths, config, db=db, progress=progress)
    summary.rows_read, summary.accepted, summary.quarantined = report.rows_read, report.accepted, report.quarantined
    if report.accepted == 0:
        raise InputError("no application was accepted: nothing to deduplicate (see the quarantine reasons)")
    with Store(db, **config.store.options()) as store:
        run_id = store.begin_run(_KIND, [str(p) for p in paths], config.fingerprint())
        done = run_link(
            store, spec, config_hash=config.fingerprint(), full=True, artefact=artefact, threshold=cut,
            max_guard_size=config.link.max_guard_size, keep_scratch=True, within=run_id,
            engine=config.link.engine, spark=config.spark,
        )  # fmt: skip
        for stage, seconds in done.summary.seconds.items():
            if stage != "total":
                clock.add(stage, seconds)
        linked = done.summary
        summary.engine = linked.engine
        summary.pairs_scored, summary.model_id, summary.model_trained = (
            linked.pairs_scored, linked.model_id, linked.model_trained
        )  # fmt: skip
        summary.clusters_cut_by_guard, summary.edges_cut_by_guard = linked.guard_clusters_split, linked.guard_edges_cut
        with clock.stage("export"):
            sizes, summary.no_identity_evidence = _export(store, out)
            by_size = charts.identities_by_size(sizes)
            summary.identities = int(by_size.sum())
            summary.multi_record_identities = int(by_size[by_size.index > 1].sum())
            summary.largest_identity = int(by_size.index.max()) if len(by_size) else 0
            if summary.model_trained and done.artefact is not None:
                model.save(done.artefact, out / "model.json")
                charts.model_charts(done.linker, out)
            _report(store, done.linker, done.predictions, sizes, cut, summary, out / "report.html")
            drop_scratch(store)
        summary.seconds = clock.summary()
        summary.peak_rss_mb = peak_rss_mb()
        store.finish_run(run_id, "succeeded", summary.to_dict())
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    return summary


def _export(store: Store, out: Path) -> tuple[Any, int]:
    """``clusters.parquet`` (every record's identity, its size and the record's ``no_identity_evidence``
    flag), ``pairs.parquet`` (scored pairs with each comparison's level and weight) and
    ``no_identity_evidence.parquet`` (each record without identity evidence and its candidates), all in
    record-id order: the same input in any row order writes the same files. Returns the records' cluster
    sizes and the number of records without identity evidence."""
    clusters = store.arrow(
        """SELECT m.record_id, m.identity_id, count(*) OVER (PARTITION BY m.identity_id) AS cluster_size,
                  coalesce(n.no_identity_evidence, false) AS no_identity_evidence
           FROM membership m JOIN applications_normalised n USING (record_id) ORDER BY m.record_id""",
        table="clusters",
    )
    pq.write_table(clusters, out / "clusters.parquet")
    pairs = store.arrow("SELECT * FROM scored_pairs ORDER BY record_id_l, record_id_r", table="pairs")
    pq.write_table(pairs, out / "pairs.parquet")
    bare = unevidenced(store)
    bare.to_parquet(out / "no_identity_evidence.parquet", index=False)
    return clusters.column("cluster_size").to_pandas(), int(bare["record_id"].nunique())


def _report(
    store: Store, linker: Any, predictions: str | None, sizes: Any, cut: float, summary: DedupeSummary, path: Path
) -> None:
    """The dedupe's HTML report (:func:`linkage.charts.write_dedupe_report`) from the run's TEMP tables."""
    weights = store.df(
        "SELECT floor(match_weight) AS weight, count(*) AS pairs FROM scored_pairs GROUP BY 1 ORDER BY 1",
        table="report",
    )
    border = store.rows(
        """SELECT record_id_l, record_id_r FROM scored_pairs WHERE NOT vetoed
           ORDER BY abs(match_probability - ?), record_id_l, record_id_r LIMIT 5""",
        [cut],
        table="report",
    )
    waterfall = score.waterfalls(store, linker, predictions, list(border)) if predictions else None
    shown = {k: v for k, v in summary.to_dict().items() if k not in ("seconds", "peak_rss_mb")}
    model_chart = linker.visualisations.match_weights_chart().chart_dict
    charts.write_dedupe_report(path, weights, sizes, model_chart, waterfall, cut, shown)

"""The run engine: the stages of linkage in one tuple, and the one orchestration of a link run.

:data:`STAGES` lists every stage in data-flow order with the module that runs it and the tables it reads and
writes. An ingest run (:func:`linkage.pipeline.ingest`) runs ``read`` and ``normalise`` and publishes the
records; a link run (:func:`run_link`, behind ``linkage link``) runs ``prepare`` to ``publish``; ``linkage
dedupe`` is an ingest into a fresh working store, a full link run and an export (:mod:`linkage.dedupe`).

Two modes of link run:

* **full** (the first link, ``--full`` or ``--retrain``): every record is scored and clustered again. Each new
  cluster keeps the id of the old identity it shares most records with (:func:`linkage.identities.carry_over`).
* **incremental**: only the *pending* records (never linked, or changed since: ``relink``) are scored, against
  the stored records that a blocking rule pairs them with (found through ``block_index``) and among themselves;
  then only the identities those pairs touch are clustered again, with their stored pairs.

**Atomic.** Everything is computed in TEMP tables (and Splink's scratch tables, dropped at the end); the store's
tables change in one transaction in ``publish``, with the run's status. A run killed at any point leaves the
store as it was; its ``runs`` row stays ``running`` until the next ingest, link or decide marks it
``interrupted`` and reports it.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from linkage import model, prepare, score, train
from linkage.clock import Clock, Progress, peak_rss_mb
from linkage.cluster import recluster
from linkage.config import DEFAULT_MAX_GUARD_SIZE, Config, SparkSettings
from linkage.errors import ConfigError, InputError, Problem
from linkage.publish import publish
from linkage.spec import ModelSpec, load_spec
from linkage.store import Store, quote

if TYPE_CHECKING:
    from linkage.warm import Prescored

__all__ = [
    "DEFAULT_MAX_GUARD_SIZE",
    "STAGES",
    "LinkRun",
    "LinkSummary",
    "Stage",
    "link",
    "lookup",
    "run_link",
    "run_threshold",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One stage: its name, the module that runs it, the tables it reads and the tables it writes."""

    name: str
    module: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]


STAGES: Final = (
    Stage("read", "linkage.ingest", ("input files",), ("quarantine",)),
    Stage(
        "normalise", "linkage.normalise", ("rows read",), ("applications", "applications_normalised", "field_issues")
    ),
    Stage(
        "prepare",
        "linkage.prepare",
        ("applications_normalised", "membership", "relink", "block_index", "value_counts"),
        ("pending", "candidates", "model_input"),
    ),
    Stage("model", "linkage.train", ("model_input", "models"), ("the linker",)),
    Stage("score", "linkage.score", ("model_input",), ("scored_pairs",)),
    Stage(
        "cluster", "linkage.cluster", ("scored_pairs", "pairs", "decisions", "membership"), ("members", "identities")
    ),
    Stage(
        "publish",
        "linkage.publish",
        ("scored_pairs", "members", "model_input"),
        ("models", "pairs", "links", "membership", "identities", "events", "block_index", "value_counts", "runs"),
    ),
)
LINK_STAGES: Final = tuple(s.name for s in STAGES[2:])


@dataclass
class LinkSummary:
    """What one link run did (the run's manifest in ``runs.counts``)."""

    run_id: str
    mode: str = "incremental"
    records: int = 0  # records in the store
    linked: int = 0  # records (re)linked: the pending ones, or all of them in a full run
    candidates: int = 0  # stored records the pending ones were scored against (incremental)
    pairs_scored: int = 0  # pairs kept at or above the review floor
    reclustered: int = 0  # records whose identity was worked out again
    links: int = 0  # edges clustering kept among them (the link graph)
    guard_clusters_split: int = 0  # clusters the guard cut apart
    guard_edges_cut: int = 0
    identities: int = 0  # identities in use after the run
    created: int = 0
    merged: int = 0
    split: int = 0
    records_added: int = 0
    records_moved: int = 0
    decisions_applied: int = 0
    decision_conflicts: list[str] = field(default_factory=list)
    interrupted_runs: list[dict[str, str]] = field(default_factory=list)  # runs a kill left running, now marked
    model_id: str = ""
    model_trained: bool = False
    scored_warm: bool = False  # the pending record's pairs came from the service's warm scorer (run_link)
    engine: str = "duckdb"  # where the run trained and scored: duckdb, or spark (a full run with --engine spark)
    threshold: float = 0.0
    review_floor: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LinkRun:
    """A finished link run, with what its caller may still read in the same connection (dedupe's outputs)."""

    summary: LinkSummary
    linker: Any = None  # the Splink linker that scored (None when nothing was pending)
    predictions: str | None = None  # Splink's predictions table of a full run, until the scratch is dropped
    artefact: dict[str, Any] | None = None


def link(
    db: Path,
    config: Config,
    *,
    full: bool = False,
    spec_path: Path | None = None,
    model_path: Path | None = None,
    retrain: bool = False,
    threshold: float | None = None,
    progress: Progress | None = None,
) -> LinkSummary:
    """Link what is new in the store (or everything, ``full``) into identities, as one atomic run.

    Args:
        db: the store (``linkage ingest FILE --db PATH`` fills it).
        config: settings (the store's memory limit, the guard's ``link.max_guard_size``).
        full: score and cluster every record again, identity ids carried over.
        spec_path: the model spec (default ``configs/model.toml``).
        model_path: a model from ``linkage train`` to use (and store) instead of the store's own.
        retrain: train a new model on the store's records first (a full run).
        threshold: match probability at which pairs link (default: the spec's).
        progress: called with each stage's name as it starts.

    Raises:
        InputError: the store holds no applications, or the model file is missing or not a model.
        ConfigError: the spec is invalid, or ``threshold`` is not valid for it.
        StoreError: the store is missing, locked or cannot be written.
    """
    spec = load_spec(spec_path)
    cut = run_threshold(spec, threshold)  # before the store is opened: a bad value costs nothing
    artefact = model.read_artefact(model_path) if model_path is not None else None
    with Store(db, **config.store.options()) as store:
        inputs = [str(model_path)] if model_path else []
        found = run_link(
            store, spec, config_hash=config.fingerprint(), inputs=inputs, full=full, retrain=retrain,
            artefact=artefact, threshold=cut, max_guard_size=config.link.max_guard_size, progress=progress,
            engine=config.link.engine, spark=config.spark,
        )  # fmt: skip
        return found.summary


def run_link(
    store: Store,
    spec: ModelSpec,
    *,
    config_hash: str,
    inputs: list[str] | None = None,
    full: bool = False,
    retrain: bool = False,
    artefact: dict[str, Any] | None = None,
    threshold: float | None = None,
    max_guard_size: int = DEFAULT_MAX_GUARD_SIZE,
    progress: Progress | None = None,
    keep_scratch: bool = False,
    within: str | None = None,
    prescored: Prescored | None = None,
    engine: str = "duckdb",
    spark: SparkSettings | None = None,
) -> LinkRun:
    """Run the link stages on an open store as one run (see the module docstring); the store is left as published.

    ``keep_scratch`` leaves Splink's tables for the caller (dedupe draws waterfalls from them); the caller
    drops them with :func:`drop_scratch`. ``within``: the caller's own run, still going (a dedupe's).
    ``prescored``: the one pending application already scored by the service's warm scorer; an incremental run
    whose pending records, model, prior and floor it still fits clusters and publishes its pairs instead of
    scoring them again (the officer's registration: under a second instead of seconds at 1M records), and
    otherwise scores as always.
    ``engine``: ``spark`` trains and scores a full run on Spark (:mod:`linkage.spark`, with ``spark``'s
    settings); an incremental run scores in the store whatever the engine.
    """
    cut = run_threshold(spec, threshold)
    # runs a kill left running: this process holds the write lock
    interrupted = store.mark_interrupted(keep=[within] if within else [])
    drop_scratch(store)
    run_id = store.begin_run("link", inputs or [], config_hash)
    try:
        run = _Run(store, spec, run_id, cut, max_guard_size, progress, config_hash)
        run.summary.interrupted_runs = interrupted
        run.spark = spark or SparkSettings() if engine == "spark" else None
        return run.go(full, retrain, artefact, prescored)
    except BaseException as exc:
        store.finish_run(run_id, "failed", {"error": type(exc).__name__})
        raise
    finally:
        if not keep_scratch:
            drop_scratch(store)


def run_threshold(spec: ModelSpec, threshold: float | None) -> float:
    """The threshold a run links at: ``threshold`` when given (``--threshold``), else the spec's.

    A given threshold is checked by :class:`~linkage.spec.ModelSpec` itself, the one declaration of what a
    threshold may be: the spec is validated again with it in place, so its constraint (a probability strictly
    between 0 and 1) and the veto's check (a vetoed pair must stay below the threshold) both apply.

    Raises:
        ConfigError: ``threshold`` is not valid for this spec, each problem listed as for a spec file.
    """
    if threshold is None:
        return spec.threshold
    try:
        checked = ModelSpec.model_validate({**spec.model_dump(by_alias=True), "threshold": threshold})
    except ValidationError as exc:
        problems = [
            Problem(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else str(e["msg"]))
            for e in exc.errors()
        ]
        raise ConfigError(f"invalid threshold {threshold!r} for the model spec", problems=problems) from None
    return checked.threshold


def drop_scratch(store: Store) -> None:
    """Drop the tables Splink left in the store's main schema (a run's own, or a killed run's)."""
    for (name,) in store.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '\\_\\_splink\\_\\_%' ESCAPE '\\'"
        " AND table_schema = 'main'",
        table="scratch",
    ):
        store.sql(f"DROP TABLE IF EXISTS {quote(name)}", table="scratch")


class _Run:
    """One link run: the stages in order, their state in TEMP tables until ``publish``."""

    def __init__(
        self,
        store: Store,
        spec: ModelSpec,
        run_id: str,
        cut: float,
        max_guard_size: int,
        progress: Progress | None,
        config_hash: str,
    ) -> None:
        self.store, self.spec, self.cut, self.max_guard_size = store, spec, cut, max_guard_size
        self.config_hash = config_hash
        self.floor = min(spec.review_floor, cut)
        self.clock = Clock(progress)
        self.summary = LinkSummary(run_id=run_id, threshold=cut, review_floor=self.floor)
        self.spark: SparkSettings | None = None  # the Spark engine's settings, for a full run on Spark

    def go(
        self, full: bool, retrain: bool, artefact: dict[str, Any] | None, prescored: Prescored | None = None
    ) -> LinkRun:
        s, store, spec, clock = self.summary, self.store, self.spec, self.clock
        with clock.stage("prepare"):
            s.records = int(store.scalar("SELECT count(*) FROM applications_normalised"))
            if s.records == 0:
                raise InputError("the store holds no applications: run `linkage ingest FILE --db PATH` first")
            members = int(store.scalar("SELECT count(*) FROM membership"))
            full = full or retrain or not members
            s.mode = "full" if full else "incremental"
            if not full and prescored is not None and self._alone(prescored.record_id, members):
                store.sql("CREATE OR REPLACE TEMP TABLE pending AS SELECT ?::VARCHAR AS record_id",
                          [prescored.record_id], table="pending")  # fmt: skip
            else:
                store.sql(
                    """CREATE OR REPLACE TEMP TABLE pending AS
                       SELECT record_id FROM applications_normalised a
                       WHERE NOT EXISTS (SELECT 1 FROM membership m WHERE m.record_id = a.record_id)
                       UNION SELECT record_id FROM relink""",
                    table="pending",
                )
            idle = not full and not store.scalar(
                "SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM decisions WHERE applied_run IS NULL)"
            )
            if idle:
                return self._finish_idle()
            stored = artefact if artefact is not None else model.stored_artefact(store)
            scored = prescored if prescored is not None and not full and self._fits(prescored, stored) else None
            if full:
                s.linked = prepare.prepare_full(store, spec)
            elif scored is not None:
                s.linked, s.scored_warm = 1, True
                _prescored_tables(store, scored)
            else:
                s.linked, s.candidates = prepare.prepare_incremental(store, spec)
        with ExitStack() as on_spark:
            spark = self._spark(on_spark) if full and self.spark is not None else None
            with clock.stage("model"):
                if scored is not None:
                    assert stored is not None  # (checked in _fits)
                    linker = None
                elif spark is not None:
                    linker, stored = spark.model(None if retrain else stored)
                elif retrain or stored is None:
                    linker = train.train(store, spec)
                    stored = self._artefact(linker.misc.save_model_to_json())
                else:
                    linker = model.for_store(store, stored, spec, s.records, incremental=not full)
                assert stored is not None
                s.model_id = str(stored["model_id"])
            with clock.stage("score"):
                predictions = None
                if spark is not None:
                    s.pairs_scored, predictions = spark.predict(linker, self.floor)
                    linker = model.from_artefact(store, stored, spec)  # the store's own, for dedupe's charts
                elif full:
                    s.pairs_scored, predictions = score.predict(store, linker, spec, self.floor)
                elif scored is not None:
                    s.pairs_scored = scored.pairs.num_rows
                else:
                    s.pairs_scored = score.predict_new(store, linker, spec, self.floor)
        with clock.stage("cluster"):
            found = recluster(store, self.cut, full=full, run_id=s.run_id, max_guard_size=self.max_guard_size)
            s.reclustered, s.links = len(found.assigned), len(found.links)
            s.decision_conflicts = found.decision_conflicts
            s.guard_clusters_split, s.guard_edges_cut = found.report.clusters_changed, found.report.edges_cut
        with clock.stage("publish"):
            s.seconds = clock.summary()
            s.peak_rss_mb = peak_rss_mb()
            done = publish(
                store, spec, found, run_id=s.run_id, full=full, threshold=self.cut, model_id=s.model_id,
                artefact=stored, records=s.records, finish=s.to_dict(),
                identities=scored.identities if scored is not None else None,
            )  # fmt: skip
        s.created, s.merged, s.split = done.events["created"], done.events["merged"], done.events["split"]
        s.records_added, s.records_moved = done.events["record_added"], done.events["record_moved"]
        s.decisions_applied, s.identities = done.decisions_applied, done.identities
        s.seconds, s.peak_rss_mb = clock.summary(), peak_rss_mb()
        store.finish_run(s.run_id, "succeeded", s.to_dict())  # the manifest with publish's own time
        return LinkRun(s, linker, predictions, stored)

    def _artefact(self, trained: dict[str, Any]) -> dict[str, Any]:
        """The artefact of a model this run trained (Splink's settings ``trained``), with its provenance."""
        self.summary.model_trained = True
        return model.artefact(
            trained, spec=self.spec, data_fingerprint=prepare.data_fingerprint(self.store), config_hash=self.config_hash
        )

    def _spark(self, stack: ExitStack) -> _OnSpark:
        """The Spark engine for this run's model and score stages: a session held open until ``stack`` closes."""
        from linkage import spark

        assert self.spark is not None
        scratch = self.spark.scratch or Path(f"{self.store.path}.spark")
        self.summary.engine = "spark"
        session = stack.enter_context(spark.session(self.spark, scratch / self.summary.run_id))
        return _OnSpark(self, session, scratch / self.summary.run_id)

    def _alone(self, record_id: str, members: int) -> bool:
        """Whether ``record_id`` is the one record pending, known without the anti-join of every stored record
        with membership (0.15 s at 1M): it is stored, not a member and not to relink, nothing else is to relink,
        and the store holds one record more than membership. Membership only ever holds stored records (publish
        writes the records a run clustered; no record is deleted), so that one more is this one."""
        (stored, member, relinks), = self.store.rows(
            """SELECT EXISTS (SELECT 1 FROM applications_normalised WHERE record_id = $id),
                      EXISTS (SELECT 1 FROM membership WHERE record_id = $id),
                      (SELECT count(*) FROM relink)""",
            {"id": record_id},
            table="pending",
        )  # fmt: skip
        return bool(stored) and not member and not relinks and self.summary.records == members + 1

    def _fits(self, scored: Prescored, stored: dict[str, Any] | None) -> bool:
        """Whether the warm scorer's pairs are what this run would score: the one record pending, the store as
        the scorer's snapshot saw it, no open decision, and the same model, prior (the same records) and floor."""
        from linkage.warm import store_version

        store, s = self.store, self.summary
        pending = [r for (r,) in store.rows("SELECT record_id FROM pending", table="pending")]
        fits = (
            pending == [scored.record_id]
            and store_version(store) == scored.version
            and stored is not None
            and stored.get("model_id") == scored.model_id
            and s.records == scored.records
            and self.floor == scored.floor
            and not store.scalar("SELECT count(*) FROM decisions WHERE applied_run IS NULL", table="decisions")
        )
        if not fits:
            log.info("the warm scorer's pairs do not fit this run: it scores them itself")
        return fits

    def _finish_idle(self) -> LinkRun:
        """Nothing pending and no open decision: the run changes nothing but its own status."""
        s, store = self.summary, self.store
        s.identities = int(store.scalar("SELECT count(DISTINCT identity_id) FROM membership"))
        s.model_id = str((model.stored_artefact(store) or {}).get("model_id", ""))
        s.seconds, s.peak_rss_mb = self.clock.summary(), peak_rss_mb()
        store.finish_run(s.run_id, "succeeded", s.to_dict())
        return LinkRun(s)


@dataclass
class _OnSpark:
    """A full run's model and score stages on Spark (:mod:`linkage.spark`): the model input handed over as
    Parquet once, the model trained there (λ and u in the store, EM on Spark) or taken from the store, the
    pairs scored there and brought back."""

    run: _Run
    session: Any
    scratch: Path

    def __post_init__(self) -> None:
        from linkage import spark

        self.input = spark.export_input(self.run.store, self.scratch / "model_input.parquet")

    def model(self, stored: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        """The Spark linker of the run and the model's artefact as the store keeps it: trained here when
        ``stored`` is None, else ``stored`` applied to the store's records."""
        from linkage import spark

        run = self.run
        if stored is None:
            linker = spark.train(run.store, run.spec, self.session, self.input)
            return linker, run._artefact(spark.duckdb_settings(linker.misc.save_model_to_json(), run.spec))
        prior = model.applied_prior(stored, run.summary.records)
        settings = {**stored["splink"], "probability_two_random_records_match": prior}
        return spark.linker(self.session, run.spec, self.input, settings), stored

    def predict(self, linker: Any, floor: float) -> tuple[int, str]:
        from linkage import spark

        return spark.predict(self.run.store, linker, self.run.spec, floor, self.scratch / "predictions")


def _prescored_tables(store: Store, scored: Prescored) -> None:
    """The TEMP tables that prepare and score leave for cluster and publish, from the warm scorer's work:
    ``pending_input`` (the record's index keys), ``pending_counts`` (its own value counts), ``scored_pairs``."""
    import pyarrow as pa

    keys = pa.table({"record_id": [scored.record_id], "index_keys": [scored.index_keys]},
                    schema=pa.schema([("record_id", pa.string()), ("index_keys", pa.list_(pa.uint64()))]))  # fmt: skip
    for name, table in (("pending_input", keys), ("pending_counts", scored.counts), ("scored_pairs", scored.pairs)):
        with store.registered("_prescored", table):
            store.sql(f"CREATE OR REPLACE TEMP TABLE {quote(name)} AS SELECT * FROM _prescored", table=name)


def lookup(store: Store, record_id: str, spec: ModelSpec | None = None) -> tuple[Any, dict[str, float]]:
    """Score one stored application against the store as if it were new, writing nothing (TEMP tables only).

    Its candidates come from the block index, and it is scored with the store's model; the officer's query
    will score an application that is not stored yet along the same path (``benchmarks/link_bench.py``
    measures it). Returns the scored pairs (at or above the review floor, veto applied) and the seconds of
    each step (``prepare``, ``model``, ``score``).

    Raises:
        InputError: the store has no model yet.
    """
    spec = spec or load_spec(None)
    clock = Clock()
    with clock.stage("prepare"):
        store.sql("CREATE OR REPLACE TEMP TABLE pending AS SELECT ?::VARCHAR AS record_id", [record_id])
        prepare.prepare_incremental(store, spec)
    with clock.stage("model"):
        artefact = model.stored_artefact(store)
        if artefact is None:
            raise InputError("the store has no model yet: run `linkage link` first")
        records = int(store.scalar("SELECT count(*) FROM membership"))
        linker = model.for_store(store, artefact, spec, records, incremental=True)
    with clock.stage("score"):
        score.predict_new(store, linker, spec, min(spec.review_floor, spec.threshold))
        pairs = store.df("SELECT * FROM scored_pairs")
    drop_scratch(store)
    seconds = clock.summary()
    seconds.pop("total")
    return pairs, seconds

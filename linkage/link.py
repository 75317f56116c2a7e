"""``linkage link``: the store's applications into identities that keep their ids from run to run.

Stages, in order (:data:`STAGES`): ``prepare`` (which records to link, the model input), ``model`` (the
store's model, trained on the first link or with ``--retrain``), ``score`` (blocked pairs), ``cluster``
(components at the threshold, the guard, officers' decisions), ``carry`` (identity ids carried over,
events), ``write``.

Two modes:

* **full** (the first link, or ``--full``): every record is scored and clustered again. Each new cluster
  keeps the id of the old identity it shares most records with (ties: the smaller id, then the cluster
  of the smaller record id), so an identity keeps its id through any number of runs unless it merges
  into another one or splits; new ids only for new identities.
* **incremental**: only the *pending* records (never linked, or changed since: ``relink``) are scored,
  against the stored records that a blocking rule pairs them with and among themselves. The stored
  candidates are found through ``block_index`` (each linked record's blocking keys; the lookup table an
  officer's query will read too), so the cost grows with the batch, not with the store. Then only the
  identities those pairs touch are clustered again, with their stored pairs.

λ (the probability that two random records match) falls as the store grows: a model trained on ``n``
records is applied to ``N`` with λ·(n−1)/(N−1), the same expected number of matches per record.

**Atomic.** Everything is computed in TEMP tables (and Splink's scratch tables, dropped at the end); the
store's tables change in one transaction at the end, with the run's status. A run killed at any point
leaves the store as it was; its ``runs`` row stays ``running`` and the next ingest, link or decide marks it
``interrupted`` and reports it.
Every change of an identity is an event: created, merged, split, record_added, record_moved.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage import cluster, model
from linkage.config import Config
from linkage.errors import InputError
from linkage.store import Store

__all__ = ["STAGES", "LinkSummary", "carry_over", "link", "lookup"]

log = logging.getLogger(__name__)

STAGES: Final = ("prepare", "model", "score", "cluster", "carry", "write")

_EVIDENCE_SQL: Final = """
    SELECT record_id, nik, birth_date, mother_name_canonical, sex, full_name_keys AS full_name_tokens
    FROM applications_normalised"""


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
    threshold: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str], None]
"""Called with the name of each stage as it starts."""


def link(
    db: Path,
    config: Config,
    *,
    full: bool = False,
    spec_path: Path | None = None,
    model_path: Path | None = None,
    retrain: bool = False,
    progress: Progress | None = None,
) -> LinkSummary:
    """Link what is new in the store (or everything, ``full``) into identities, as one atomic run.

    Args:
        db: the store (``linkage ingest FILE --db PATH`` fills it).
        config: settings (the store's memory limit).
        full: score and cluster every record again, identity ids carried over.
        spec_path: the model spec (default ``configs/model.toml``).
        model_path: a model from ``linkage train`` to use (and store) instead of the store's own.
        retrain: train a new model on the store's records first (a full run).

    Raises:
        InputError: the store holds no applications, or the model file is missing.
        StoreError: the store cannot be opened or written.
    """
    spec = model.load_spec(spec_path)
    if model_path is not None and not model_path.exists():
        raise InputError(f"model file not found: {model_path} (make one with `linkage train`)")
    with Store(db, memory_limit=config.store.memory_limit) as store:
        interrupted = _clean(store)
        inputs = [str(model_path)] if model_path else []
        config_hash = config.fingerprint()
        run_id = store.begin_run("link", inputs, config_hash)
        try:
            run = _Run(store, spec, run_id, progress, config_hash)
            run.summary.interrupted_runs = interrupted
            return run.go(full or retrain, model_path, retrain)
        except BaseException as exc:
            store.finish_run(run_id, "failed", {"error": type(exc).__name__})
            raise
        finally:
            _drop_scratch(store)


def lookup(store: Store, record_id: str, spec: model.ModelSpec | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score one stored application against the store as if it were new: its candidates from the block
    index, scored with the store's model. Writes nothing (TEMP tables only).

    The officer's query will score an application that is not stored yet; this measures the same path
    (``benchmarks/link_bench.py``). Returns the scored pairs (at or above the review floor, veto applied)
    and the seconds of each step (``candidates``, ``model``, ``score``).
    """
    spec = spec or model.load_spec(None)
    run = _Run(store, spec, "lookup", None)
    clock = time.perf_counter()
    store.con.execute("CREATE OR REPLACE TEMP TABLE pending AS SELECT ?::VARCHAR AS record_id", [record_id])
    run.summary.mode = "incremental"
    run.summary.records = store.count("membership")
    run._prepare_incremental()
    seconds = {"candidates": time.perf_counter() - clock}
    clock = time.perf_counter()
    artefact, n_trained = run._stored_model(None)
    if artefact is None:
        raise InputError("the store has no model yet: run `linkage link` first")
    linker = run._model(artefact, n_trained, train=False)
    seconds["model"] = time.perf_counter() - clock
    clock = time.perf_counter()
    model.predict_new(store.con, linker, spec, run.floor)
    pairs = store.con.execute("SELECT * FROM scored_pairs").df()
    seconds["score"] = time.perf_counter() - clock
    _drop_scratch(store)
    return pairs, seconds


def _clean(store: Store) -> list[dict[str, str]]:
    """Mark the runs a kill left ``running`` as interrupted, and drop Splink's scratch tables they left."""
    interrupted = store.mark_interrupted()
    _drop_scratch(store)
    return interrupted


def _drop_scratch(store: Store) -> None:
    for (name,) in store.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '\\_\\_splink\\_\\_%' ESCAPE '\\'"
        " AND table_schema = 'main'"
    ):
        store.sql(f'DROP TABLE IF EXISTS "{name}"')


class _Run:
    """One link run: each method a stage, state in TEMP tables until :meth:`_write`."""

    def __init__(
        self, store: Store, spec: model.ModelSpec, run_id: str, progress: Progress | None, config_hash: str = ""
    ) -> None:
        self.config_hash = config_hash
        self.store, self.con, self.spec = store, store.con, spec
        self.summary = LinkSummary(run_id=run_id, threshold=spec.threshold)
        self.cut = spec.threshold
        self.floor = min(spec.review_floor, spec.threshold)
        self.progress = progress
        self.clock = time.perf_counter()
        self.index_keys, self.probe_keys = model.lookup_keys(spec.blocking)

    def _stage(self, name: str) -> None:
        now = time.perf_counter()
        if name != STAGES[0]:
            previous = STAGES[STAGES.index(name) - 1]
            self.summary.seconds[previous] = round(now - self.clock, 3)
        self.clock = now
        if self.progress is not None:
            self.progress(name)
        log.info("link: %s", name)

    def go(self, full: bool, model_path: Path | None, retrain: bool) -> LinkSummary:
        s, store, con = self.summary, self.store, self.con
        self._stage("prepare")
        s.records = store.count("applications_normalised")
        if s.records == 0:
            raise InputError("the store holds no applications: run `linkage ingest FILE --db PATH` first")
        full = full or store.count("membership") == 0
        s.mode = "full" if full else "incremental"
        con.execute(
            """CREATE OR REPLACE TEMP TABLE pending AS
               SELECT record_id FROM applications_normalised a
               WHERE NOT EXISTS (SELECT 1 FROM membership m WHERE m.record_id = a.record_id)
               UNION SELECT record_id FROM relink"""
        )
        open_decisions = store.count("decisions", "WHERE applied_run IS NULL")
        if not full and store.count("temp.pending") == 0 and open_decisions == 0:
            for stage in STAGES[1:]:
                self._stage(stage)
            return self._finish()
        artefact, n_trained = self._stored_model(model_path)
        if full:
            self._prepare_full()
        else:
            self._prepare_incremental()
        self._stage("model")
        linker = self._model(artefact, n_trained, retrain or artefact is None)
        self._stage("score")
        if full:
            s.pairs_scored, _ = model.predict(con, linker, self.spec, self.floor)
        else:
            s.pairs_scored = model.predict_new(con, linker, self.spec, self.floor)
        self._stage("cluster")
        clusters, report = self._cluster(full)
        self._stage("carry")
        old = con.execute("SELECT m.record_id, m.identity_id FROM membership m JOIN members USING (record_id)").df()
        assigned, events = carry_over(clusters, old, self._taken, s.run_id, report=report, new=self._pending_ids())
        self._stage("write")
        self._write(assigned, events, report, full)
        return self._finish()

    # --- prepare ---------------------------------------------------------------------------------

    def _prepare_full(self) -> None:
        self.summary.linked = self.summary.records
        model.prepare(self.con, self.spec)

    def _prepare_incremental(self) -> None:
        """The pending records' model input and keys, their stored candidates, and the model input of both."""
        con, spec = self.con, self.spec
        con.execute(
            """CREATE OR REPLACE TEMP TABLE pending_rows AS
               SELECT a.* FROM applications_normalised a JOIN pending USING (record_id)"""
        )
        self.summary.linked = self.store.count("temp.pending_rows")
        con.execute(model.MACROS)
        # the pending records' own counts: name tokens first (their model input needs them), then with
        # the term-frequency values of that model input
        con.execute(f"CREATE OR REPLACE TEMP TABLE pending_counts AS {_value_counts_sql('pending_rows', spec)}")
        self._counts("pending_rows", None)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pending_input AS
                SELECT *, {self.probe_keys} AS probe_keys, {self.index_keys} AS index_keys
                FROM (SELECT *, {model.block_keys(spec.blocking)} AS block_keys
                      FROM ({model.model_input_sql("pending_rows", "link_counts")}))"""
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE pending_counts AS "
            + _value_counts_sql("pending_rows", spec, inputs="pending_input")
        )
        con.execute(
            """CREATE OR REPLACE TEMP TABLE candidates AS
               SELECT DISTINCT m.record_id
               FROM block_index b
               JOIN (SELECT DISTINCT unnest(probe_keys) AS block_key FROM pending_input) USING (block_key)
               JOIN membership m USING (record_no)
               WHERE m.record_id NOT IN (SELECT record_id FROM pending)"""
        )
        self.summary.candidates = self.store.count("temp.candidates")
        con.execute(
            """CREATE OR REPLACE TEMP TABLE subset_rows AS
               SELECT a.* FROM applications_normalised a
               WHERE a.record_id IN (SELECT record_id FROM pending UNION ALL SELECT record_id FROM candidates)"""
        )
        self._counts("subset_rows", None)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE model_input AS
                SELECT *, {model.block_keys(spec.blocking)} AS block_keys,
                       record_id IN (SELECT record_id FROM pending) AS is_new
                FROM ({model.model_input_sql("subset_rows", "link_counts")})"""
        )
        self._counts("subset_rows", "model_input")

    def _counts(self, rows: str, inputs: str | None) -> None:
        """``link_counts``: the store's counts of the values in ``rows`` (name tokens) and in ``inputs`` (term
        frequency columns), with the pending records (``pending_counts``) counted in; ``link_totals``: each
        kind's total.

        Only the values these records hold are read from ``value_counts``: a join on a small table, where
        summing all of it took seconds at a million records.
        """
        tf = model.tf_columns(self.spec) if inputs else []
        needed = " UNION ".join(
            [f"SELECT DISTINCT 'full_name_token' AS kind, unnest(full_name_tokens) AS value FROM {rows}"]
            + [f"SELECT DISTINCT 'tf:{c}', {c}::VARCHAR FROM {inputs} WHERE {c} IS NOT NULL" for c in tf]
        )
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE link_counts AS
                WITH needed AS ({needed})
                SELECT kind, value, sum(n)::BIGINT AS n FROM (
                    SELECT v.kind, v.value, v.n FROM value_counts v JOIN needed USING (kind, value)
                    UNION ALL SELECT a.kind, a.value, a.n FROM pending_counts a JOIN needed USING (kind, value)
                ) GROUP BY kind, value"""
        )
        if inputs:
            self.con.execute(
                """CREATE OR REPLACE TEMP TABLE link_totals AS
                   SELECT kind, sum(n)::DOUBLE AS n FROM (
                       SELECT kind, n FROM value_counts WHERE kind LIKE 'tf:%'
                       UNION ALL SELECT kind, n FROM pending_counts WHERE kind LIKE 'tf:%'
                   ) GROUP BY kind"""
            )

    # --- model -----------------------------------------------------------------------------------

    def _stored_model(self, model_path: Path | None) -> tuple[dict[str, Any] | None, int]:
        if model_path is not None:
            artefact = json.loads(model_path.read_text(encoding="utf-8"))
        else:
            found = self.store.rows("SELECT artefact FROM models ORDER BY created_at DESC, model_id LIMIT 1")
            artefact = json.loads(found[0][0]) if found else None
        if artefact is None:
            return None, 0
        return artefact, int(str(artefact.get("data_fingerprint", "0-")).split("-")[0] or 0)

    def _model(self, artefact: dict[str, Any] | None, n_trained: int, train: bool) -> Any:
        s, con, spec = self.summary, self.con, self.spec
        if train:
            linker = model.train(con, spec)
            self.artefact = model.artefact(
                linker, spec=spec, data_fingerprint=model.data_fingerprint(con), config_hash=self.config_hash
            )
            s.model_trained = True
            s.model_id = str(self.artefact["model_id"])
            return linker
        assert artefact is not None
        self.artefact = artefact
        s.model_id = str(artefact["model_id"])
        trained = float(artefact["splink"]["probability_two_random_records_match"])
        prior = trained * (n_trained - 1) / (s.records - 1) if n_trained > 1 and s.records > 1 else trained
        linker = model.from_artefact(con, artefact, spec, prior=min(prior, trained))
        if s.mode == "incremental":
            for column in model.tf_columns(spec):
                con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE tf_{column} AS
                        SELECT value AS {column}, c.n / t.n AS tf_{column}
                        FROM link_counts c JOIN link_totals t USING (kind) WHERE kind = 'tf:{column}'"""
                )
                frame = linker._db_api.register(f"tf_{column}")
                linker.table_management.register_term_frequency_lookup(frame, column)
        return linker

    # --- cluster ---------------------------------------------------------------------------------

    def _pending_ids(self) -> set[str]:
        return {r for (r,) in self.store.rows("SELECT record_id FROM pending")}

    def _cluster(self, full: bool) -> tuple[pd.DataFrame, cluster.ClusterReport]:
        """Cluster the records whose identity may change: all of them, or the pending ones with the
        identities their pairs at the threshold, their previous identity and open decisions touch."""
        con, cut = self.con, self.cut
        if full:
            con.execute("CREATE OR REPLACE TEMP TABLE members AS SELECT record_id FROM applications_normalised")
            pairs_sql = "SELECT record_id_l, record_id_r, match_probability FROM scored_pairs"
        else:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE members AS
                WITH touched AS (
                    SELECT record_id_l AS record_id FROM scored_pairs WHERE match_probability >= {cut}
                    UNION SELECT record_id_r FROM scored_pairs WHERE match_probability >= {cut}
                    UNION SELECT record_id FROM pending
                    UNION SELECT record_id_a FROM decisions WHERE applied_run IS NULL
                    UNION SELECT record_id_b FROM decisions WHERE applied_run IS NULL
                ),
                affected AS (SELECT DISTINCT identity_id FROM membership JOIN touched USING (record_id))
                SELECT record_id FROM membership WHERE identity_id IN (SELECT identity_id FROM affected)
                UNION SELECT record_id FROM touched
                WHERE record_id IN (SELECT record_id FROM applications_normalised)"""
            )
            pairs_sql = f"""
                SELECT record_id_l, record_id_r, match_probability FROM pairs
                WHERE match_probability >= {cut}
                  AND record_id_l IN (SELECT record_id FROM members) AND record_id_r IN (SELECT record_id FROM members)
                  AND record_id_l NOT IN (SELECT record_id FROM pending)
                  AND record_id_r NOT IN (SELECT record_id FROM pending)
                UNION ALL
                SELECT record_id_l, record_id_r, match_probability FROM scored_pairs
                WHERE record_id_l IN (SELECT record_id FROM members)
                  AND record_id_r IN (SELECT record_id FROM members)"""
        records = con.execute(f"{_EVIDENCE_SQL} WHERE record_id IN (SELECT record_id FROM members)").df()
        pairs = con.execute(pairs_sql).df()
        # the latest decision on each pair of records stands
        decided = con.execute(
            """SELECT kind, record_id_a, record_id_b FROM (
                   SELECT *, row_number() OVER (PARTITION BY least(record_id_a, record_id_b),
                       greatest(record_id_a, record_id_b) ORDER BY decided_at DESC, decision_id DESC) AS k
                   FROM decisions
                   WHERE record_id_a IN (SELECT record_id FROM members)
                     AND record_id_b IN (SELECT record_id FROM members))
               WHERE k = 1 ORDER BY decision_id"""
        ).fetchall()
        must = [(a, b) for kind, a, b in decided if kind == "must_link"]
        cannot = [(a, b) for kind, a, b in decided if kind == "cannot_link"]
        clusters, report = cluster.cluster(records, pairs, cut, must_link=must, cannot_link=cannot)
        self.summary.reclustered = len(clusters)
        self.summary.decision_conflicts = [
            f"must-link {a} {b} cut to keep cannot-link {x} {y} apart" for a, b, x, y in report.decision_conflicts
        ]
        return clusters, report

    def _taken(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` were ever an identity id."""
        probe = pa.table({"identity_id": pa.array(ids, type=pa.string())})
        self.con.register("_probe_ids", probe)
        try:
            return {
                r for (r,) in self.store.rows("SELECT identity_id FROM identities JOIN _probe_ids USING (identity_id)")
            }
        finally:
            self.con.unregister("_probe_ids")

    # --- write -----------------------------------------------------------------------------------

    def _write(self, assigned: pd.DataFrame, events: pd.DataFrame, report: cluster.ClusterReport, full: bool) -> None:
        s, store, con, spec = self.summary, self.store, self.con, self.spec
        run = s.run_id
        con.register("_assigned", assigned)
        con.register("_events", events)
        names = [c.name for c in spec.comparison]
        columns = {c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE scored_pairs)").fetchall()}
        gammas = ", ".join(f"gamma_{n}" if f"gamma_{n}" in columns else "NULL" for n in names)
        weights = ", ".join(
            (f"mw_{n}" if f"mw_{n}" in columns else "0")
            + (f" + coalesce(mw_tf_adj_{n}, 0)" if f"mw_tf_adj_{n}" in columns else "")
            for n in names
        )
        source = "model_input" if full else "pending_input"
        index_keys = self.index_keys if full else "index_keys"
        try:
            with store.transaction():
                if self.summary.model_trained or not store.rows(
                    "SELECT 1 FROM models WHERE model_id = ?", [s.model_id]
                ):
                    store.sql(
                        "INSERT INTO models VALUES (?, ?, now(), ?, ?, ?)",
                        [s.model_id, run, s.records, names, json.dumps(self.artefact)],
                        table="models",
                    )
                if full:
                    store.sql("DELETE FROM pairs", table="pairs")
                    store.sql("DELETE FROM block_index", table="block_index")
                    store.sql("DELETE FROM value_counts", table="value_counts")
                    store.sql(
                        "INSERT INTO value_counts "
                        + _value_counts_sql("applications_normalised", spec, inputs="model_input"),
                        table="value_counts",
                    )
                else:
                    store.sql(
                        """DELETE FROM pairs WHERE record_id_l IN (SELECT record_id FROM pending)
                           OR record_id_r IN (SELECT record_id FROM pending)""",
                        table="pairs",
                    )
                    store.sql(
                        """DELETE FROM block_index WHERE record_no IN
                           (SELECT record_no FROM membership JOIN pending USING (record_id))""",
                        table="block_index",
                    )
                    self._add_counts()
                store.sql(
                    f"""INSERT INTO pairs SELECT record_id_l, record_id_r, match_probability, match_weight,
                        model_match_weight, vetoed, [{gammas}]::TINYINT[], [{weights}]::FLOAT[], ?, ?
                        FROM scored_pairs""",
                    [s.model_id, run],
                    table="pairs",
                )
                # membership: a record keeps its number; a new one gets the next
                store.sql(
                    """CREATE OR REPLACE TEMP TABLE numbered AS
                       SELECT a.record_id, coalesce(m.record_no, (SELECT coalesce(max(record_no), 0) FROM membership)
                              + row_number() OVER (PARTITION BY m.record_no IS NULL ORDER BY a.record_id)) AS record_no,
                              a.identity_id,
                              CASE WHEN m.identity_id = a.identity_id THEN m.since_run ELSE ? END AS since_run
                       FROM _assigned a LEFT JOIN membership m USING (record_id)""",
                    [run],
                    table="membership",
                )
                store.sql("DELETE FROM membership WHERE record_id IN (SELECT record_id FROM _assigned)")
                store.sql("INSERT INTO membership SELECT record_id, record_no, identity_id, since_run FROM numbered")
                store.sql(
                    f"""INSERT INTO block_index
                        SELECT DISTINCT unnest({index_keys}) AS block_key, n.record_no
                        FROM {source} JOIN numbered n USING (record_id)""",
                    table="block_index",
                )
                store.sql(
                    """INSERT INTO identities
                       SELECT DISTINCT identity_id, ?, NULL, NULL FROM _assigned
                       WHERE identity_id NOT IN (SELECT identity_id FROM identities)""",
                    [run],
                    table="identities",
                )
                store.sql(
                    """UPDATE identities SET retired_run = ?, merged_into = r.merged_into
                       FROM (SELECT other_identity_id AS old, first(identity_id ORDER BY probability DESC NULLS LAST,
                                    identity_id) AS merged_into
                             FROM _events WHERE kind = 'merged' GROUP BY 1) r
                       WHERE identities.identity_id = r.old""",
                    [run],
                    table="identities",
                )
                store.sql(
                    """INSERT INTO events (run_id, happened_at, kind, identity_id, other_identity_id, record_id,
                                           other_record_id, probability, reason)
                       SELECT ?, now(), kind, identity_id, other_identity_id, record_id, other_record_id,
                              probability, reason FROM _events""",
                    [run],
                    table="events",
                )
                applied = store.rows(
                    """UPDATE decisions SET applied_run = ? WHERE applied_run IS NULL
                       AND record_id_a IN (SELECT record_id FROM members)
                       AND record_id_b IN (SELECT record_id FROM members) RETURNING decision_id""",
                    [run],
                )
                s.decisions_applied = len(applied)
                store.sql("DELETE FROM relink WHERE record_id IN (SELECT record_id FROM pending)", table="relink")
                counts = events["kind"].value_counts()
                s.created = int(counts.get("created", 0))
                s.merged = int(counts.get("merged", 0))
                s.split = int(counts.get("split", 0))
                s.records_added = int(counts.get("record_added", 0))
                s.records_moved = int(counts.get("record_moved", 0))
                s.identities = store.count("(SELECT DISTINCT identity_id FROM membership)")
                s.seconds["write"] = round(time.perf_counter() - self.clock, 3)
                s.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
                store.finish_run(run, "succeeded", s.to_dict())
        finally:
            con.unregister("_assigned")
            con.unregister("_events")

    def _add_counts(self) -> None:
        """Add the pending records' values to ``value_counts`` (an updated record's old values stay counted
        until the next full run: a small drift in frequencies, never in which pairs are found)."""
        store = self.store
        store.sql(
            """UPDATE value_counts SET n = value_counts.n + added.n FROM pending_counts AS added
               WHERE value_counts.kind = added.kind AND value_counts.value = added.value""",
            table="value_counts",
        )
        store.sql(
            """INSERT INTO value_counts SELECT * FROM pending_counts a WHERE NOT EXISTS
               (SELECT 1 FROM value_counts v WHERE v.kind = a.kind AND v.value = a.value)""",
            table="value_counts",
        )

    def _finish(self) -> LinkSummary:
        s = self.summary
        if "write" not in s.seconds:
            s.seconds["write"] = round(time.perf_counter() - self.clock, 3)
            s.identities = self.store.count("(SELECT DISTINCT identity_id FROM membership)")
            s.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            self.store.finish_run(s.run_id, "succeeded", s.to_dict())
        return s


def _value_counts_sql(rows: str, spec: model.ModelSpec, *, inputs: str | None = None) -> str:
    """``kind, value, n`` of the normalised ``rows``: name tokens (``full_name_token``), and with ``inputs``
    (the rows' model input) each term-frequency column (``tf:<column>``)."""
    parts = [f"SELECT 'full_name_token' AS kind, unnest(full_name_tokens) AS value FROM {rows}"]
    tf = model.tf_columns(spec) if inputs else []
    parts += [f"SELECT 'tf:{c}', {c}::VARCHAR FROM {inputs} WHERE {c} IS NOT NULL" for c in tf]
    return f"SELECT kind, value, count(*)::BIGINT AS n FROM ({' UNION ALL '.join(parts)}) GROUP BY kind, value"


def carry_over(
    clusters: pd.DataFrame,
    old: pd.DataFrame,
    taken: Callable[[list[str]], set[str]],
    run_id: str,
    *,
    report: cluster.ClusterReport | None = None,
    new: set[str] | frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give each new cluster the id of the old identity it overlaps most, and list the identity changes.

    Args:
        clusters: ``record_id, identity_id`` as :func:`linkage.cluster.cluster` minted them (a label per cluster).
        old: ``record_id, identity_id`` of the records that had an identity before this run.
        taken: which of the given ids were ever used (a minted id that was is minted again with the run id).
        run_id: this run.
        report: the clustering report, for the reasons of splits (cuts).
        new: the records linked for the first time (or again after a change) in this run.

    Returns:
        ``(assigned, events)``: ``record_id, identity_id`` for every clustered record, and one row per
        event (``kind, identity_id, other_identity_id, record_id, other_record_id, probability, reason``).

    Overlaps are taken largest first; among equal overlaps the smaller old id, then the cluster of the
    smaller record id, wins; an old id goes to one cluster only. A cluster that receives no old id gets
    its minted id. Events: ``created`` (a cluster of records none of which had an identity), ``merged``
    (an old identity whose records went to a cluster with another id and that lost its id), ``split`` (an
    old identity that kept its id but lost records to another cluster), ``record_moved``, ``record_added``.
    """
    # Everything on integer codes: strings sorted and grouped by pandas run in Python (75 s at 1M records).
    records = clusters["record_id"].to_numpy(dtype=object)
    rec_code, rec_values = pd.factorize(records, sort=True)  # code order is record-id order
    lab_code, lab_values = pd.factorize(clusters["identity_id"].to_numpy(dtype=object))
    old_of = pd.Series(old["identity_id"].to_numpy(dtype=object), index=old["record_id"].to_numpy(dtype=object))
    old_ids = pd.Series(records).map(old_of).to_numpy(dtype=object)
    old_code, old_values = pd.factorize(old_ids, sort=True)  # -1: no old identity; code order is id order
    n_lab, n_old = len(lab_values), max(len(old_values), 1)
    first = np.full(n_lab, len(rec_values), dtype=np.int64)  # each cluster's smallest record
    np.minimum.at(first, lab_code, rec_code)
    had = old_code >= 0
    pair, size = np.unique(lab_code[had].astype(np.int64) * n_old + old_code[had], return_counts=True)
    o_lab, o_old = pair // n_old, pair % n_old
    order = np.lexsort((first[o_lab], o_old, -size))  # largest overlap, then smaller old id, then record
    o_lab, o_old = o_lab[order], o_old[order]
    final = np.full(n_lab, -1, dtype=np.int64)  # old code given to each cluster
    # an overlap whose cluster and old id occur in no other overlap cannot be contested: given at once
    alone = (np.bincount(o_lab, minlength=n_lab)[o_lab] == 1) & (np.bincount(o_old, minlength=n_old)[o_old] == 1)
    final[o_lab[alone]] = o_old[alone]
    used = np.zeros(len(old_values), dtype=bool)
    used[o_old[alone]] = True
    for lab, old_id in zip(o_lab[~alone].tolist(), o_old[~alone].tolist(), strict=True):
        if final[lab] < 0 and not used[old_id]:
            final[lab] = old_id
            used[old_id] = True
    ids = np.empty(n_lab, dtype=object)
    kept = final >= 0
    ids[kept] = old_values[final[kept]]
    fresh = np.flatnonzero(~kept)
    clash = taken(lab_values[fresh].tolist()) | set(old_values[used].tolist())
    for k in fresh.tolist():
        label = lab_values[k]
        ids[k] = label if label not in clash else cluster.mint_identity_id(f"{rec_values[first[k]]}:{run_id}")
    identity = ids[lab_code]
    assigned = pd.DataFrame({"record_id": records, "identity_id": identity})

    events: list[tuple[Any, ...]] = []
    had_old = np.zeros(n_lab, dtype=bool)
    had_old[o_lab] = True
    with_new = set(lab_code[pd.Series(records).isin(list(new)).to_numpy()].tolist()) if new else set()
    cut_reasons: dict[str, set[str]] = {}
    if report is not None:
        for c in report.cuts:
            owner = old_of.get(c.record_id_l)
            if isinstance(owner, str):
                cut_reasons.setdefault(owner, set()).add(c.reason)
    for k in np.flatnonzero(~had_old).tolist():
        events.append(("created", ids[k], None, rec_values[first[k]], None, None, "new applications"))
    for lab, old_id in zip(o_lab.tolist(), o_old.tolist(), strict=True):
        target, before = ids[lab], old_values[old_id]
        if before == target:
            continue
        if used[old_id]:  # the old identity lives on elsewhere: it lost these records
            why = "; ".join(sorted(cut_reasons.get(before, set()))) or "no longer joined by pairs at the threshold"
            events.append(("split", before, target, None, None, None, why))
        else:
            through = "through new applications" if lab in with_new else "by pairs at the threshold"
            events.append(("merged", target, before, None, None, None, f"joined {through}"))
    moved = np.flatnonzero(had & (old_ids != identity))
    for k in moved.tolist():
        events.append(("record_moved", identity[k], old_ids[k], records[k], None, None, "its identity merged or split"))
    for k in np.flatnonzero(~had & had_old[lab_code]).tolist():
        events.append(("record_added", identity[k], None, records[k], None, None, "linked to an existing identity"))
    columns = ["kind", "identity_id", "other_identity_id", "record_id", "other_record_id", "probability", "reason"]
    table = pd.DataFrame(events, columns=columns)
    table["probability"] = table["probability"].astype("float64")
    for column in columns:
        if column != "probability":
            table[column] = table[column].astype("object")
    return assigned, table

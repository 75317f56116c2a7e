"""The ``cluster`` stage: identities from scored pairs, components at a threshold, cut by the guard.

It reads the normalised records (``record_id`` and the columns in :data:`EVIDENCE`) and the scored pairs
(``record_id_l, record_id_r, match_probability``; other columns are ignored) and returns one row per record,
singletons included, ordered by ``record_id``: ``record_id, identity_id, cluster_size``, with a
:class:`ClusterReport`. Its steps (:data:`STEPS`):

1. ``components``: connected components of the pairs at or above the threshold (:mod:`linkage.graph`).
2. ``guard``: a cluster that joins two records which :func:`linkage.contradict.contradicts` says are
   different people, or two records an officer decided are not one person, is cut at its weakest links
   (:mod:`linkage.guard`).
3. ``identity_ids``: each cluster's minted id (:mod:`linkage.identities`); a link run then carries the old
   ids over.

In a link run (:func:`recluster`) the records are those whose identity may change, and the pairs the stored
ones among them with the run's new ones; officers' latest decisions are honoured.

Determinism: record ids are sorted once and every tie (equal probabilities, component labels, the edge
to cut, the contradiction named) is broken by record id, so the output does not depend on the order of
the records or of the pairs, nor on which side of a pair a record is.

Measured on a generated 100k-application run (``benchmarks/generate.py --rows 100000 --seed 7``, the
model's pairs at 0.9, stated sex and birth date): the guard split 63 of 16,070 multi-record clusters and
cut 79 edges, 78 of them between different people; pairwise precision 0.98403 -> 0.98859, recall
0.98320 -> 0.98316, rejection traceability unchanged (0.97927), relatives merged 255 -> 195. The one
same-person cut was a renewal on a brother's NIK, linked more strongly to the brother than to itself.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.errors import LinkageError
from linkage.graph import (
    PAIR_COLUMNS,
    Graph,
    IntArray,
    Table,
    as_array,
    build_graph,
    column,
    component_labels,
    ranks,
    require,
)
from linkage.guard import Cut, apply_guard
from linkage.identities import carry_over, label_clusters
from linkage.store import Store

__all__ = ["EVIDENCE", "STEPS", "ClusterReport", "Reclustered", "cluster", "recluster"]

log = logging.getLogger(__name__)

STEPS: Final = ("components", "guard", "identity_ids")

# The record columns the guard reads; `cluster(..., guard=True)` requires all of them. `sex` and `birth_date`
# must be the values the application states (normalised), never filled in from the NIK: the rules weigh the
# NIK against them, and a value copied from a relative's NIK would make that NIK contradict on its own.
# `nik_sex` and `nik_birth_date` are what the NIK encodes, decoded once at ingest (linkage.nik.parse_nik).
EVIDENCE: Final = (
    "nik", "birth_date", "mother_name_canonical", "sex", "full_name_tokens", "nik_sex", "nik_birth_date"
)  # fmt: skip
_MUST_LINK_P: Final = 2.0  # a must-link decision's edge: above every scored pair, so the guard keeps it first


def _decisions(
    graph: Graph, must_link: Sequence[tuple[Any, Any]], cannot_link: Sequence[tuple[Any, Any]]
) -> tuple[list[tuple[int, int]], IntArray | None]:
    """Cannot-link pairs as ranks, and each record's must-link group (None without must-links)."""
    n = len(graph.ids)

    def ends(decided: Sequence[tuple[Any, Any]]) -> tuple[IntArray, IntArray]:
        both_sides = pa.chunked_array([as_array([x for x, _ in decided]), as_array([y for _, y in decided])])
        both = ranks(pa.chunked_array([c.cast(graph.ids.type) for c in both_sides.chunks]), graph.ids, "decision")
        return both[: len(decided)], both[len(decided) :]

    cannot: list[tuple[int, int]] = []
    if cannot_link:
        a, b = ends(cannot_link)
        cannot = [(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True) if x != y]
    together = None
    if must_link:
        a, b = ends(must_link)
        together = component_labels(n, np.minimum(a, b), np.maximum(a, b))
    return cannot, together


@dataclass(frozen=True)
class ClusterReport:
    """What clustering did: counts for the run summary, and every edge the guard cut with its reason."""

    threshold: float
    records: int
    pairs_at_threshold: int  # pair rows at or above the threshold, self-pairs excluded
    clusters: int  # singletons included
    multi_record_clusters: int
    largest_cluster_size: int
    guard: bool
    contradicting_pairs: int  # contradicting record pairs found in the components before the guard
    clusters_changed: int  # components the guard split
    edges_cut: int
    unguarded_clusters: int  # components above max_guard_size that could contradict but were left whole
    cuts: tuple[Cut, ...] = ()
    # (must-link record, record, cannot-link record, record): a must-link cut because a cannot-link needed it
    decision_conflicts: tuple[tuple[Any, Any, Any, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``cuts`` as a list of objects)."""
        out = asdict(self)
        out["cuts"] = [c._asdict() for c in self.cuts]
        return out


def cluster(
    records: Table,
    pairs: Table,
    threshold: float,
    guard: bool = True,
    *,
    max_guard_size: int = 2000,
    must_link: Sequence[tuple[Any, Any]] = (),
    cannot_link: Sequence[tuple[Any, Any]] = (),
) -> tuple[pd.DataFrame, ClusterReport]:
    """Link records into identities: components at ``threshold``, cut where they join contradicting records.

    Args:
        records: a DataFrame or Arrow table with ``record_id`` and, when ``guard`` is on, the :data:`EVIDENCE`
            columns (``nik``, ``birth_date``, ``mother_name_canonical``, ``sex``, ``full_name_tokens``,
            ``nik_sex``, ``nik_birth_date``), as normalised; ``sex`` and ``birth_date`` as stated, not filled
            in from the NIK.
        pairs: scored pairs with ``record_id_l``, ``record_id_r`` and ``match_probability``.
        threshold: the smallest ``match_probability`` that links two records.
        guard: cut clusters that join contradicting records (see :func:`contradicts`).
        max_guard_size: clusters above this many records are not guarded but counted and logged.
        must_link: record-id pairs an officer decided are one person: always an edge, kept before every
            scored pair, and never cut for contradicting evidence between the records it joins.
        cannot_link: record-id pairs an officer decided are two people: never in one identity, not even
            along a chain (the guard cuts the chain's weakest edge, as for contradicting evidence). Where a
            cannot-link and must-links contradict, the cannot-link wins and the report lists the conflict.

    Returns:
        ``(clusters, report)``: one row per record, ordered by ``record_id``, with ``record_id``,
        ``identity_id`` and ``cluster_size``; and a :class:`ClusterReport`.

    Raises:
        LinkageError: a missing column, null or duplicate record ids, pairs naming unknown records, or a
            threshold outside 0..1.

    >>> from datetime import date
    >>> records = pd.DataFrame({
    ...     "record_id": ["c", "b", "a"],
    ...     "nik": ["1871015508930002", "1871011205900001", "1871011205900001"],
    ...     "birth_date": [date(1993, 8, 15), date(1990, 5, 12), date(1990, 5, 12)],
    ...     "mother_name_canonical": ["SITI AMINAH", None, "SITI AMINAH"],
    ...     "sex": ["F", "M", "M"],
    ...     "full_name_tokens": [["ANI"], ["BUDI"], ["BUDI"]],
    ...     "nik_sex": ["F", "M", "M"],  # what each NIK encodes, as ingest decoded it
    ...     "nik_birth_date": [date(1993, 8, 15), date(1990, 5, 12), date(1990, 5, 12)],
    ... })
    >>> pairs = pd.DataFrame({"record_id_l": ["a", "c"], "record_id_r": ["b", "b"], "match_probability": [0.99, 0.95]})
    >>> clusters, report = cluster(records, pairs, threshold=0.9)
    >>> clusters
      record_id          identity_id  cluster_size
    0         a  ID-86f7e437faa5a7fc             2
    1         b  ID-86f7e437faa5a7fc             2
    2         c  ID-84a516841ba77a5b             1
    >>> cut = report.cuts[0]  # the weaker edge b-c, because it joined a and c
    >>> report.edges_cut, cut.record_id_l, cut.record_id_r, cut.reason, cut.contradiction_l, cut.contradiction_r
    (1, 'b', 'c', 'sex and birth_date differ', 'a', 'c')
    """
    fix = "normalise the records first" if guard else "pass a table with one record_id per record"
    require(records, ("record_id", *(EVIDENCE if guard else ())), "the records", fix)
    if max_guard_size < 2:
        raise LinkageError(f"max_guard_size must be at least 2, got {max_guard_size}")
    record_ids = column(records, "record_id")
    if must_link:
        decided = pd.DataFrame(must_link, columns=["record_id_l", "record_id_r"]).assign(match_probability=_MUST_LINK_P)
        scored = pairs if isinstance(pairs, pd.DataFrame) else pairs.to_pandas()
        pairs = pd.concat([scored[list(PAIR_COLUMNS)], decided], ignore_index=True)
    graph = build_graph(record_ids, pairs, threshold)
    root = component_labels(len(graph.ids), graph.u, graph.v)
    cannot, together = _decisions(graph, must_link, cannot_link)
    result = apply_guard(records if guard else None, graph, root, max_guard_size, cannot, together)
    # The output keeps the input's id values (pandas: the very objects), in record-id order.
    values = records["record_id"].to_numpy() if isinstance(records, pd.DataFrame) else record_ids.to_numpy(False)
    ids = values[graph.rows]
    identity, size = label_clusters(ids, result.root)
    frame = pd.DataFrame({"record_id": ids, "identity_id": identity, "cluster_size": size})
    cuts = tuple(Cut(ids[a], ids[b], min(p, 1.0), reason, ids[x], ids[y]) for a, b, p, reason, x, y in result.cuts)
    conflicts = tuple((ids[a], ids[b], ids[x], ids[y]) for a, b, p, _, x, y in result.cuts if p == _MUST_LINK_P)
    sizes = np.bincount(result.root, minlength=len(result.root))
    sizes = sizes[sizes > 0]
    report = ClusterReport(
        threshold=threshold,
        records=len(graph.ids),
        pairs_at_threshold=len(graph.u),
        clusters=len(sizes),
        multi_record_clusters=int((sizes > 1).sum()),
        largest_cluster_size=int(sizes.max(initial=0)),
        guard=guard,
        contradicting_pairs=result.contradicting_pairs,
        clusters_changed=result.changed,
        edges_cut=len(cuts),
        unguarded_clusters=len(result.unguarded),
        cuts=cuts,
        decision_conflicts=conflicts,
    )
    log.info(
        "clustered %d records into %d identities (%d with several records); guard cut %d edges in %d clusters",
        report.records,
        report.clusters,
        report.multi_record_clusters,
        report.edges_cut,
        report.clusters_changed,
    )
    return frame, report


# The evidence the guard reads, from the normalised records: the stated birth date and sex (the model's
# fall back to the NIK's, and a borrowed NIK must not contradict on its own).
_EVIDENCE_SQL: Final = """
    SELECT record_id, nik, birth_date, mother_name_canonical, sex, full_name_keys AS full_name_tokens, nik_sex,
           nik_birth_date
    FROM applications_normalised WHERE record_id IN (SELECT record_id FROM members)"""


# A record without identity evidence (a name and nothing else; issue 12 §4) is never linked on a score: its
# pairs stay in `pairs` for review (linkage.alerts), but clustering sees none of them, so it stays its own
# identity unless an officer's must-link joins it. A name alone cannot tell namesakes apart.
_EVIDENCED: Final = """
    record_id_l NOT IN (SELECT record_id FROM applications_normalised WHERE no_identity_evidence)
    AND record_id_r NOT IN (SELECT record_id FROM applications_normalised WHERE no_identity_evidence)"""


@dataclass
class Reclustered:
    """What the cluster stage of a link run found: identities for its records, the changes, the kept links."""

    assigned: pd.DataFrame  # record_id, identity_id of every record clustered in this run
    events: pd.DataFrame  # kind, identity_id, other_identity_id, record_id, other_record_id, probability, reason
    links: pd.DataFrame  # record_id_l, record_id_r, match_probability, kept: the edges clustering kept
    report: ClusterReport
    decision_conflicts: list[str]


def recluster(store: Store, threshold: float, *, full: bool, run_id: str, max_guard_size: int) -> Reclustered:
    """Cluster the records whose identity may change, and carry their identity ids over.

    A full run clusters every record with ``scored_pairs``. An incremental one clusters the pending records
    and every record of the identities that their pairs at the threshold, their previous identity or an
    open decision touch, with the stored pairs among those records and the run's new pairs. Writes the TEMP
    table ``members`` (the records clustered). Officers' latest decision on each pair stands.
    """
    if full:
        store.sql("CREATE OR REPLACE TEMP TABLE members AS SELECT record_id FROM applications_normalised")
        pairs_sql = f"""
            SELECT record_id_l, record_id_r, match_probability FROM scored_pairs
            WHERE match_probability >= $cut AND {_EVIDENCED}"""
    else:
        store.sql(
            """CREATE OR REPLACE TEMP TABLE members AS
            WITH touched AS (
                SELECT record_id_l AS record_id FROM scored_pairs WHERE match_probability >= $cut
                UNION SELECT record_id_r FROM scored_pairs WHERE match_probability >= $cut
                UNION SELECT record_id FROM pending
                UNION SELECT record_id_a FROM decisions WHERE applied_run IS NULL
                UNION SELECT record_id_b FROM decisions WHERE applied_run IS NULL
            ),
            affected AS (SELECT DISTINCT identity_id FROM membership JOIN touched USING (record_id))
            SELECT record_id FROM membership WHERE identity_id IN (SELECT identity_id FROM affected)
            UNION SELECT record_id FROM touched
            WHERE record_id IN (SELECT record_id FROM applications_normalised)""",
            {"cut": threshold},
            table="members",
        )
        pairs_sql = f"""
            SELECT record_id_l, record_id_r, match_probability FROM pairs
            WHERE match_probability >= $cut
              AND record_id_l IN (SELECT record_id FROM members) AND record_id_r IN (SELECT record_id FROM members)
              AND record_id_l NOT IN (SELECT record_id FROM pending)
              AND record_id_r NOT IN (SELECT record_id FROM pending) AND {_EVIDENCED}
            UNION ALL
            SELECT record_id_l, record_id_r, match_probability FROM scored_pairs
            WHERE match_probability >= $cut
              AND record_id_l IN (SELECT record_id FROM members)
              AND record_id_r IN (SELECT record_id FROM members) AND {_EVIDENCED}"""
    # Arrow, not pandas, and only the pairs at the threshold (no other pair can be an edge): pandas held a Python
    # list per record's name tokens and two id strings per scored pair (at 10M records the stage's peak RSS was
    # 21.7 GiB, now 9.9; at 3M it took 33 s, now 23).
    records = store.arrow(_EVIDENCE_SQL, table="members")
    pairs = store.arrow(pairs_sql, {"cut": threshold}, table="pairs")
    decided = store.rows(
        """SELECT kind, record_id_a, record_id_b FROM (
               SELECT *, row_number() OVER (PARTITION BY least(record_id_a, record_id_b),
                   greatest(record_id_a, record_id_b) ORDER BY decided_at DESC, decision_id DESC) AS k
               FROM decisions
               WHERE record_id_a IN (SELECT record_id FROM members)
                 AND record_id_b IN (SELECT record_id FROM members))
           WHERE k = 1 ORDER BY decision_id""",
        table="decisions",
    )
    must = [(a, b) for kind, a, b in decided if kind == "must_link"]
    cannot = [(a, b) for kind, a, b in decided if kind == "cannot_link"]
    clusters, report = cluster(
        records, pairs, threshold, max_guard_size=max_guard_size, must_link=must, cannot_link=cannot
    )
    old = store.df("SELECT m.record_id, m.identity_id FROM membership m JOIN members USING (record_id)")
    # the new records only name the reason of a merge, and without old identities nothing merges (a first run
    # would read a million ids for nothing)
    new = {r for (r,) in store.rows("SELECT record_id FROM pending", table="pending")} if len(old) else set()
    assigned, events = carry_over(clusters, old, functools.partial(_taken, store), run_id, cuts=report.cuts, new=new)
    conflicts = [f"must-link {a} {b} cut to keep cannot-link {x} {y} apart" for a, b, x, y in report.decision_conflicts]
    return Reclustered(assigned, events, _kept(clusters, pairs.to_pandas(), must), report, conflicts)


def _kept(clusters: pd.DataFrame, pairs: pd.DataFrame, must: Sequence[tuple[Any, Any]]) -> pd.DataFrame:
    """The edges clustering kept: ``pairs`` (read at or above the threshold) and must-links, inside one final cluster.

    An edge the guard cut never ends inside one cluster (its ends' components contradict for good), so
    these are exactly the links that hold each identity together; ``kept`` says why (``scored`` at or above
    the threshold, or an officer's ``must_link``, which wins). One row per record pair, ordered by record ids.
    """
    at = pairs[["record_id_l", "record_id_r", "match_probability"]]
    # a must-link's probability is its pair's score when it scored at the threshold, else 1
    decided = pd.DataFrame(must, columns=["record_id_l", "record_id_r"])
    decided = decided.assign(match_probability=-1.0, must=True)
    edges = pd.concat([at.assign(must=False), decided], ignore_index=True)
    swap = edges["record_id_l"] > edges["record_id_r"]
    edges.loc[swap, ["record_id_l", "record_id_r"]] = edges.loc[swap, ["record_id_r", "record_id_l"]].to_numpy()
    identity = pd.Series(clusters["identity_id"].to_numpy(), index=clusters["record_id"].to_numpy())
    inside = edges["record_id_l"].map(identity).to_numpy() == edges["record_id_r"].map(identity).to_numpy()
    edges = edges.loc[inside & (edges["record_id_l"] != edges["record_id_r"])]
    # numeric aggregates only: a min over text falls back to Python per group (the cluster stage at 100k took
    # 2.3 s with it, 0.9 s without)
    grouped = edges.groupby(["record_id_l", "record_id_r"], sort=True)
    kept: pd.DataFrame = grouped.agg(match_probability=("match_probability", "max"), must=("must", "max"))
    kept = kept.reset_index()
    kept.loc[kept["match_probability"] < 0, "match_probability"] = 1.0
    kept["kept"] = np.where(kept.pop("must").to_numpy(dtype=bool), "must_link", "scored")
    return kept


def _taken(store: Store, ids: list[str]) -> set[str]:
    """Which of ``ids`` were ever an identity id."""
    probe = pa.table({"identity_id": pa.array(ids, type=pa.string())})
    with store.registered("_probe_ids", probe):
        return {r for (r,) in store.rows("SELECT identity_id FROM identities JOIN _probe_ids USING (identity_id)")}

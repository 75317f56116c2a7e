"""Evaluation: identity clusters measured against the truth, for analysts choosing a threshold.

Inputs are tables (pandas or Arrow): ``clusters`` (``record_id, identity_id``), ``truth``
(``record_id, person_id``), and optionally ``applications`` (``record_id, office, application_date,
decision``), ``relatives`` (``person_id_a, person_id_b[, relation]``) and scored ``pairs``
(``record_id_l, record_id_r, match_probability``) for a threshold sweep.

Definitions (each figure is a field of :class:`Metrics`):

* **Measured records** are those in both ``clusters`` (or the sweep's ``records``) and ``truth``; the
  others are counted (``records_unclustered``, ``records_unlabelled``), not guessed at.
* **Pairwise** precision, recall and F1 over record pairs, from the contingency counts ``n_ij`` of
  (identity *i*, person *j*): correct = Σ C(n_ij, 2), predicted = Σ_i C(n_i, 2), true = Σ_j C(n_j, 2).
  Nothing enumerates pairs, so a million records in one cluster costs no more than in singletons.
  With no predicted pairs precision is 1 (no claim was wrong), with no true pairs recall is 1 (nothing
  was missed), so all-singleton truth and clusters score 1, not 0/0.
* **B-cubed** (Bagga & Baldwin 1998, "Algorithms for scoring coreference chains"): the mean over
  records of ``n_ij / n_i`` (precision) and ``n_ij / n_j`` (recall). Unlike pairwise figures, it is not
  dominated by the largest clusters. Both are 1 on no records.
* An application is **earlier** than another by ``(application_date, record_id)``: the record id breaks
  ties so that the order is total and does not depend on row order. Undated applications take no part
  in the application figures (``applications_undated`` counts them).
* A **refusal** is an application whose decision is in ``refusals``: ``("rejected",)`` by default. A
  postponement is a pause for documents, not a refusal the officer must see, and the reason that would
  tell a postponement on suspicion of non-procedural migration apart is not in the normalised store, so
  counting postponements is left to the caller (``refusals=("rejected", "postponed")``).
* **Rejection traceability**: among applications whose person (by truth) has an earlier refusal at
  *another* office (``refused_elsewhere``), the share whose cluster holds *at least one* of those
  refusals (``traced``). One linked refusal is what puts the refusal in front of the officer, which is
  the purpose (issue 3, §5); asking for the latest one would count an application as lost although
  the officer sees that the person was refused. Applications or refusals without an office take no part.
* **False-flag rate**: the share of dated applications whose cluster holds an earlier refusal (at any
  office) of a *different* person: the officer would be shown a refusal that is not the applicant's.
* **Relatives** (siblings and twins, the false merges Fellegi-Sunter is worst at): ``relative_false_pairs``
  = Σ over relative person pairs (j, k) and identities i of ``n_ij * n_ik``, every one a false pair;
  ``relative_false_pair_share`` is its share of all false pairs; ``relatives_merged`` counts relative
  person pairs that share at least one identity, out of ``relative_pairs`` among the measured persons.
  ``relative_record_pairs`` = Σ over relative person pairs of ``n_j * n_k``: every record pair that
  could be a false merge between relatives, and ``relative_merge_rate`` = ``relative_false_pairs /
  relative_record_pairs``, the share of them the clusters merge (a false-positive rate on the hardest
  negatives; precision is ``1 -`` the false pairs' share of predicted pairs, so this rate is what tells
  whether the false merges are concentrated in families). The same four figures per relation
  (:data:`RELATIONS`: ``twin_pairs, twins_merged, twin_record_pairs, twin_false_pairs, twin_merge_rate``,
  likewise ``sibling_…``) come from the ``relation`` column, compared lower-cased; a person pair listed
  under both counts as twins (twins are siblings too), other relations count in the totals only, and
  without the column the per-relation figures are ``None``.

Figures that cannot be computed (no applications given, nobody refused elsewhere, no false pairs) are
``None``, never a made-up 0 or 1. Clustering for the sweep is connected components over pairs at or
above each threshold, with the smallest member as label (:func:`connected_components`).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from linkage.dates import parse_date
from linkage.errors import InputError, did_you_mean
from linkage.graph import component_labels

if TYPE_CHECKING:
    import altair as alt

    from linkage.store import Store

__all__ = [
    "DEFAULT_THRESHOLDS",
    "REFUSALS",
    "RELATIONS",
    "Metrics",
    "applications_from_store",
    "connected_components",
    "evaluate",
    "load_table",
    "pr_chart",
    "sweep",
    "write_report",
]

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: Final[tuple[float, ...]] = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
REFUSALS: Final[tuple[str, ...]] = ("rejected",)
# the relations with their own figures, most specific first: a pair listed as both is counted as the first
RELATIONS: Final[tuple[str, ...]] = ("twin", "sibling")

Table: TypeAlias = "pd.DataFrame | pa.Table"
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Metrics:
    """Every figure of one evaluation; see the module docstring for the definitions."""

    records: int
    records_unclustered: int
    records_unlabelled: int
    identities: int
    persons: int
    pairs_predicted: int
    pairs_true: int
    pairs_correct: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    applications: int | None = None
    applications_undated: int | None = None
    refused_elsewhere: int | None = None
    traced: int | None = None
    traceability: float | None = None
    false_flags: int | None = None
    false_flag_rate: float | None = None
    relative_pairs: int | None = None
    relatives_merged: int | None = None
    relative_false_pairs: int | None = None
    relative_false_pair_share: float | None = None
    relative_record_pairs: int | None = None
    relative_merge_rate: float | None = None
    twin_pairs: int | None = None
    twins_merged: int | None = None
    twin_record_pairs: int | None = None
    twin_false_pairs: int | None = None
    twin_merge_rate: float | None = None
    sibling_pairs: int | None = None
    siblings_merged: int | None = None
    sibling_record_pairs: int | None = None
    sibling_false_pairs: int | None = None
    sibling_merge_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The figures by name, JSON-ready (``None`` for figures not computed)."""
        return asdict(self)

    def summary(self) -> list[tuple[str, str]]:
        """(figure, formatted value) rows for a terminal table; figures not computed are left out.

        >>> m = evaluate(pd.DataFrame({"record_id": ["a", "b"], "identity_id": ["X", "X"]}),
        ...              pd.DataFrame({"record_id": ["a", "b"], "person_id": ["p", "p"]}))
        >>> m.summary()[:2]
        [('records measured', '2'), ('identities / persons', '1 / 1')]
        """
        rows = [
            ("records measured", f"{self.records:,}"),
            ("identities / persons", f"{self.identities:,} / {self.persons:,}"),
            ("records without truth / without cluster", f"{self.records_unlabelled:,} / {self.records_unclustered:,}"),
            (
                "pairs correct / predicted / true",
                f"{self.pairs_correct:,} / {self.pairs_predicted:,} / {self.pairs_true:,}",
            ),
            ("pairwise precision", _fmt(self.pairwise_precision)),
            ("pairwise recall", _fmt(self.pairwise_recall)),
            ("pairwise F1", _fmt(self.pairwise_f1)),
            ("B-cubed precision", _fmt(self.bcubed_precision)),
            ("B-cubed recall", _fmt(self.bcubed_recall)),
            ("B-cubed F1", _fmt(self.bcubed_f1)),
        ]
        if self.applications is not None:
            rows += [
                ("dated applications (undated)", f"{self.applications:,} ({self.applications_undated:,})"),
                ("refused earlier at another office: traced / all", f"{self.traced:,} / {self.refused_elsewhere:,}"),
                ("rejection traceability", _fmt(self.traceability)),
                ("false flags", f"{self.false_flags:,}"),
                ("false-flag rate", _fmt(self.false_flag_rate, percent=True)),
            ]
        if self.relative_pairs is not None:
            rows += [
                ("relative pairs merged / known", f"{self.relatives_merged:,} / {self.relative_pairs:,}"),
                ("false pairs between relatives", f"{self.relative_false_pairs:,}"),
                ("share of false pairs between relatives", _fmt(self.relative_false_pair_share, percent=True)),
                (
                    "relatives' record pairs merged / all",
                    _merged(self.relative_false_pairs, self.relative_record_pairs, self.relative_merge_rate),
                ),
            ]
            for relation in RELATIONS:
                if (known := getattr(self, f"{relation}_pairs")) is None:
                    continue
                merged = _merged(
                    getattr(self, f"{relation}_false_pairs"),
                    getattr(self, f"{relation}_record_pairs"),
                    getattr(self, f"{relation}_merge_rate"),
                )
                rows += [
                    (f"{relation} pairs merged / known", f"{getattr(self, f'{relation}s_merged'):,} / {known:,}"),
                    (f"{relation}s' record pairs merged / all", merged),
                ]
        return rows


def _fmt(value: float | None, *, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.3f} %" if percent else f"{value:.4f}"


def _merged(merged: int | None, all_: int | None, rate: float | None) -> str:
    return f"{merged or 0:,} / {all_ or 0:,} ({_fmt(rate, percent=True)})"


# --------------------------------------------------------------------------------------------- public


def evaluate(
    clusters: Table,
    truth: Table,
    applications: Table | None = None,
    relatives: Table | None = None,
    *,
    refusals: Sequence[str] = REFUSALS,
) -> Metrics:
    """Measure identity clusters against the truth.

    Args:
        clusters: ``record_id, identity_id``, one row per clustered record.
        truth: ``record_id, person_id``, one row per labelled record.
        applications: ``record_id, office, application_date, decision``, for traceability and false
            flags. Dates may be dates, datetimes or strings in any form :func:`linkage.dates.parse_date` reads.
        relatives: ``person_id_a, person_id_b``, person pairs to keep apart (siblings, twins).
        refusals: the decisions that count as a refusal (compared lower-cased).

    Returns:
        The :class:`Metrics`; application figures are ``None`` without ``applications``, relative
        figures ``None`` without ``relatives``.

    Raises:
        InputError: a required column is missing, a record id repeats or is empty, or clusters and
            truth share no record although both have some.

    >>> clusters = pd.DataFrame({"record_id": ["a", "b", "c", "d"], "identity_id": ["X", "X", "X", "Y"]})
    >>> truth = pd.DataFrame({"record_id": ["a", "b", "c", "d"], "person_id": ["p", "p", "q", "q"]})
    >>> m = evaluate(clusters, truth)
    >>> m.pairs_correct, m.pairs_predicted, m.pairs_true, round(m.pairwise_f1, 3)
    (1, 3, 2, 0.4)
    """
    frame = _table(clusters, "clusters", ("record_id", "identity_id"))
    universe = _index(frame["record_id"], "clusters")
    labels = pd.factorize(_ids(frame["identity_id"], "clusters", "identity_id"))[0].astype(np.int64)
    measured = _prepare(universe, truth, applications, relatives, refusals)
    return _metrics(labels[measured.at], measured)


def sweep(
    pairs: Table,
    truth: Table,
    records: Iterable[str] | Table,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    applications: Table | None = None,
    relatives: Table | None = None,
    *,
    refusals: Sequence[str] = REFUSALS,
) -> pd.DataFrame:
    """Cluster the scored pairs at each threshold (connected components) and measure each clustering.

    Args:
        pairs: ``record_id_l, record_id_r, match_probability``; a pair links at threshold *t* when its
            probability is ``>= t`` (missing probabilities never link).
        truth: ``record_id, person_id``.
        records: every record to cluster, singletons included: record ids, or a table with ``record_id``.
        thresholds: the thresholds to try; rows come back in ascending order, duplicates once.
        applications, relatives, refusals: as for :func:`evaluate`.

    Returns:
        One row per threshold: ``threshold``, ``links`` (pairs at or above it) and every :class:`Metrics` field.

    Raises:
        InputError: as for :func:`evaluate`, or a pair names a record not in ``records``.

    >>> pairs = pd.DataFrame({"record_id_l": ["a", "b"], "record_id_r": ["b", "c"], "match_probability": [0.99, 0.6]})
    >>> truth = pd.DataFrame({"record_id": ["a", "b", "c"], "person_id": ["p", "p", "q"]})
    >>> sweep(pairs, truth, ["a", "b", "c"], [0.5, 0.9])[["threshold", "links", "identities", "pairwise_f1"]]
       threshold  links  identities  pairwise_f1
    0        0.5      2           1          0.5
    1        0.9      1           2          1.0
    """
    if isinstance(records, pd.DataFrame | pa.Table):
        ids = _table(records, "records", ("record_id",))["record_id"]
    else:
        ids = pd.Series(list(records), dtype=object)
    universe = _index(ids, "records")
    frame = _table(pairs, "pairs", ("record_id_l", "record_id_r", "match_probability"))
    left = universe.get_indexer(_ids(frame["record_id_l"], "pairs", "record_id_l"))
    right = universe.get_indexer(_ids(frame["record_id_r"], "pairs", "record_id_r"))
    unknown = (left < 0) | (right < 0)
    if unknown.any():
        first = frame.loc[unknown].iloc[0]
        raise InputError(
            f"pairs: {int(unknown.sum()):,} pair(s) name records that are not among the records to cluster, "
            f"e.g. {first['record_id_l']!r} – {first['record_id_r']!r}: are pairs and clusters from the same run?"
        )
    probability = pd.to_numeric(frame["match_probability"], errors="coerce").to_numpy(dtype=np.float64)
    order = np.argsort(-np.nan_to_num(probability, nan=-np.inf), kind="stable")
    descending = probability[order]
    left, right = left[order].astype(np.int64), right[order].astype(np.int64)
    measured = _prepare(universe, truth, applications, relatives, refusals)
    rows = []
    for threshold in sorted(set(thresholds)):
        # descending probabilities: the links at a threshold are a prefix (NaN sorts last and never links)
        links = int(np.searchsorted(-descending, -threshold, side="right"))
        labels = connected_components(len(universe), left[:links], right[:links])
        rows.append({"threshold": threshold, "links": links, **_metrics(labels[measured.at], measured).to_dict()})
    columns = ["threshold", "links", *(f.name for f in fields(Metrics))]
    return pd.DataFrame(rows, columns=columns)


def connected_components(n: int, left: npt.ArrayLike, right: npt.ArrayLike) -> IntArray:
    """Label each of ``n`` nodes with the smallest node of its connected component.

    The labels do not depend on edge order (:func:`linkage.cluster.component_labels`: scipy when
    installed, else a vectorised numpy union-find; a million nodes and three million edges in under a
    second).

    Args:
        n: the number of nodes, ``0 .. n - 1``.
        left, right: the two ends of each edge (same length).

    Returns:
        An int64 array of length ``n``: the smallest node of each node's component.

    >>> connected_components(6, [4, 1, 2], [5, 2, 0]).tolist()
    [0, 0, 0, 3, 4, 4]
    """
    # one implementation of components for the project: the clustering stage's
    return component_labels(n, np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64))


def pr_chart(table: pd.DataFrame) -> alt.LayerChart:
    """The precision-recall curve of a :func:`sweep`, points labelled by threshold (Altair).

    Args:
        table: the sweep's rows (``threshold``, ``pairwise_precision``, ``pairwise_recall``, ...).

    Returns:
        An Altair layered chart; ``.save("pr_curve.html")`` writes it as a standalone page.

    >>> pairs = pd.DataFrame({"record_id_l": ["a"], "record_id_r": ["b"], "match_probability": [0.9]})
    >>> truth = pd.DataFrame({"record_id": ["a", "b"], "person_id": ["p", "p"]})
    >>> pr_chart(sweep(pairs, truth, ["a", "b"])).to_dict()["layer"][0]["mark"]["type"]
    'line'
    """
    import altair as alt

    columns = ["threshold", "pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1"]
    columns += [c for c in ("traceability", "false_flag_rate") if c in table]
    data = table[columns].copy()
    data["label"] = [f"{t:g}" for t in data["threshold"]]
    base = alt.Chart(data).encode(
        x=alt.X("pairwise_recall:Q", title="pairwise recall", scale=alt.Scale(zero=False)),
        y=alt.Y("pairwise_precision:Q", title="pairwise precision", scale=alt.Scale(zero=False)),
        order=alt.Order("threshold:Q"),
        tooltip=[alt.Tooltip(f"{c}:Q", format=".4f") for c in columns],
    )
    line = base.mark_line(point=True)
    labels = base.mark_text(align="left", dx=6, dy=-6).encode(text="label:N")
    chart: alt.LayerChart = (line + labels).properties(
        title="Precision and recall by match-probability threshold", width=520, height=380
    )
    return chart


# ------------------------------------------------------------------------------------------- edges


def load_table(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV file (clusters, truth, pairs, applications or relatives) into a DataFrame.

    Args:
        path: a ``.parquet``/``.pq`` or ``.csv`` file.

    Returns:
        The table; columns are checked by the function that uses it. A CSV's columns are all text, an
        empty cell missing: ids are kept as written (``007`` stays ``"007"``).

    Raises:
        InputError: the file is missing, of another format, or unreadable.

    >>> load_table(Path("nope.parquet"))
    Traceback (most recent call last):
    linkage.errors.InputError: input file not found: nope.parquet
    """
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            frame: pd.DataFrame = pq.read_table(path).to_pandas()
            return frame
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            # Every column as text, only an empty cell missing: inferred types would turn ids such as
            # "007", "1e5", "true" or "NA" into 7, 100000.0, True or a missing value, and lose the record.
            names = pacsv.open_csv(path).schema.names
            text = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), null_values=[""],
                                        strings_can_be_null=True)  # fmt: skip
            frame = pacsv.read_csv(path, convert_options=text).to_pandas()
            return frame
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable {suffix[1:]} file: {exc}") from None
    raise InputError(
        f"{path}: unknown format {suffix!r}{did_you_mean(suffix, ('.parquet', '.csv'))}; use .parquet or .csv"
    )


def applications_from_store(store: Store) -> pd.DataFrame:
    """Office, application date and decision of every normalised application in a store.

    Args:
        store: an open :class:`~linkage.store.Store`.

    Returns:
        ``record_id, office, application_date, decision`` as normalised at ingest.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     applications_from_store(store).columns.tolist()
    ['record_id', 'office', 'application_date', 'decision']
    """
    table = "applications_normalised"
    sql = f"SELECT record_id, office, application_date, decision FROM {table}"
    result: pd.DataFrame = store.sql(sql, table=table).df()
    return result


def write_report(table: pd.DataFrame, out: Path) -> list[Path]:
    """Write a sweep as ``out/sweep.csv`` and its precision-recall chart as ``out/pr_curve.html``.

    Args:
        table: the rows of :func:`sweep`.
        out: the directory, created if missing.

    Returns:
        The paths written.

    >>> import tempfile
    >>> pairs = pd.DataFrame({"record_id_l": ["a"], "record_id_r": ["b"], "match_probability": [0.9]})
    >>> truth = pd.DataFrame({"record_id": ["a", "b"], "person_id": ["p", "p"]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in write_report(sweep(pairs, truth, ["a", "b"]), Path(tmp))]
    ['sweep.csv', 'pr_curve.html']
    """
    out.mkdir(parents=True, exist_ok=True)
    csv, html = out / "sweep.csv", out / "pr_curve.html"
    table.to_csv(csv, index=False)
    pr_chart(table).save(str(html))
    return [csv, html]


# ------------------------------------------------------------------------------------- preparation


@dataclass(frozen=True)
class _Applications:
    """Dated applications of measured records, as integer codes aligned by position."""

    row: IntArray  # the measured record (position in _Measured.person) of each application
    rank: IntArray  # place in the order (application_date, record_id): 0 .. len - 1
    office: IntArray  # office code, -1 when unknown
    refused: BoolArray
    undated: int
    eligible: BoolArray  # refused earlier at another office (by truth alone, so computed once)
    candidate: BoolArray  # the applications of persons with a refusal at a known office


@dataclass(frozen=True)
class _Measured:
    """The records in both the clustered universe and the truth, with everything the figures need."""

    at: IntArray  # position of each measured record in the universe (clusters rows or sweep records)
    person: IntArray  # dense person code of each measured record
    unclustered: int
    unlabelled: int
    applications: _Applications | None
    relatives: _Relatives | None


@dataclass(frozen=True)
class _Relatives:
    """Relative person pairs among the measured persons, as person codes ``a < b``, each pair once."""

    a: IntArray
    b: IntArray
    relation: IntArray  # position in RELATIONS, len(RELATIONS) for any other relation
    has_relation: bool  # the table had a relation column: the per-relation figures can be given


def _table(data: Table, name: str, required: Sequence[str]) -> pd.DataFrame:
    frame: pd.DataFrame = data.to_pandas() if isinstance(data, pa.Table) else data
    missing = [c for c in required if c not in frame.columns]
    if missing:
        present = [str(c) for c in frame.columns]
        renames = [(close[0], c) for c in missing if (close := difflib.get_close_matches(c, present, n=1, cutoff=0.6))]
        hint = "".join(f"; rename {have!r} to {want!r}?" for have, want in renames)
        raise InputError(
            f"{name}: missing column(s) {', '.join(map(repr, missing))} (has {', '.join(present) or 'none'}){hint}"
        )
    return frame


def _ids(column: pd.Series, name: str, what: str) -> pd.Index:
    """Ids as Python strings (so ``7`` read from a CSV matches ``"7"`` from Parquet); empty ids are an error."""
    values = column.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    missing = np.zeros(len(values), dtype=bool) if kind == "string" else pd.isna(values)
    if kind != "string" and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        values = np.array([None if gone else str(v) for v, gone in zip(values, missing, strict=True)], dtype=object)
    empty = missing | (values == "")
    if empty.any():
        raise InputError(
            f"{name}: {int(empty.sum()):,} row(s) with an empty {what} (first at row {int(empty.argmax())})"
        )
    ids: pd.Index = pd.Index(values, dtype=object)
    return ids


def _index(column: pd.Series, name: str) -> pd.Index:
    """Record ids as an index, refusing repeats (a repeated id would be counted twice, or joined to anything)."""
    index = _ids(column, name, "record_id")
    if not index.is_unique:
        repeated = index[index.duplicated()].unique()
        raise InputError(
            f"{name}: {len(repeated):,} record_id(s) appear more than once, e.g. {', '.join(map(repr, repeated[:3]))}"
        )
    return index


def _prepare(
    universe: pd.Index,
    truth: Table,
    applications: Table | None,
    relatives: Table | None,
    refusals: Sequence[str],
) -> _Measured:
    frame = _table(truth, "truth", ("record_id", "person_id"))
    truth_ids = _index(frame["record_id"], "truth")
    at = universe.get_indexer(truth_ids)
    labelled = at >= 0
    if len(universe) and len(truth_ids) and not labelled.any():
        raise InputError(
            f"clusters and truth share no record_id (e.g. {universe[0]!r} and {truth_ids[0]!r}): "
            "are they from the same data set?"
        )
    persons = _ids(frame["person_id"], "truth", "person_id")[labelled]
    person_codes, person_ids = pd.factorize(persons)
    measured_ids = truth_ids[labelled]
    unclustered = int((~labelled).sum())
    unlabelled = len(universe) - int(labelled.sum())
    if unclustered or unlabelled:
        log.info(
            "evaluate: %d truth records not clustered, %d clustered records without truth", unclustered, unlabelled
        )
    person = person_codes.astype(np.int64)
    return _Measured(
        at=at[labelled].astype(np.int64),
        person=person,
        unclustered=unclustered,
        unlabelled=unlabelled,
        applications=None if applications is None else _applications(applications, measured_ids, person, refusals),
        relatives=None if relatives is None else _relatives(relatives, pd.Index(person_ids)),
    )


def _applications(data: Table, measured: pd.Index, persons: IntArray, refusals: Sequence[str]) -> _Applications:
    frame = _table(data, "applications", ("record_id", "office", "application_date", "decision"))
    row = measured.get_indexer(_index(frame["record_id"], "applications"))
    days = _days(frame["application_date"])
    dated = ~np.isnan(days)
    keep = (row >= 0) & dated
    undated = int(((row >= 0) & ~dated).sum())
    frame, row, days = frame.loc[keep], row[keep].astype(np.int64), days[keep]
    # clean each distinct value once: offices by their spacing, decisions by case
    codes, offices = pd.factorize(frame["office"])
    numbered: dict[str, int] = {}
    cleaned = (" ".join(str(o).split()) for o in offices)
    office = np.array([numbered.setdefault(o, len(numbered)) if o else -1 for o in cleaned] + [-1])[codes]
    codes, decisions = pd.factorize(frame["decision"])
    wanted = {r.strip().lower() for r in refusals}
    refused = np.array([str(d).strip().lower() in wanted for d in decisions] + [False], dtype=bool)[codes]
    # order by (date, record_id): record ids are unique, so this is total and independent of row order
    id_rank = pd.factorize(measured[row], sort=True)[0]
    rank = np.empty(len(row), dtype=np.int64)
    rank[np.lexsort((id_rank, days))] = np.arange(len(row), dtype=np.int64)
    office = office.astype(np.int64)
    person = persons[row]
    refused_here = refused & (office >= 0)
    eligible = (office >= 0) & _earlier_refusal_elsewhere(person, rank, office, refused_here)
    refusing = np.zeros(int(persons.max(initial=-1)) + 1, dtype=bool)
    refusing[person[refused_here]] = True
    return _Applications(row, rank, office, refused, undated, eligible, refusing[person])


def _days(column: pd.Series) -> FloatArray:
    """Days since 1970-01-01 of each date, NaN when missing or unreadable (strings go through parse_date once each)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        days = column.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64).astype(np.float64)
        return np.where(column.isna().to_numpy(), np.nan, days)
    epoch = date(1970, 1, 1)

    def day(value: object) -> float:
        if isinstance(value, datetime):
            value = value.date()
        elif isinstance(value, str):
            value = parse_date(value).value
        return float((value - epoch).days) if isinstance(value, date) else np.nan

    lookup = {value: day(value) for value in pd.unique(column.dropna())}
    return column.map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)


def _relatives(data: Table, persons: pd.Index) -> _Relatives:
    frame = _table(data, "relatives", ("person_id_a", "person_id_b"))
    a = persons.get_indexer(_ids(frame["person_id_a"], "relatives", "person_id_a"))
    b = persons.get_indexer(_ids(frame["person_id_b"], "relatives", "person_id_b"))
    has_relation = "relation" in frame.columns
    relation = np.full(len(frame), len(RELATIONS), dtype=np.int64)
    if has_relation:
        named = frame["relation"].astype("string").str.strip().str.lower()
        for code, name in enumerate(RELATIONS):
            relation[(named == name).fillna(False).to_numpy(dtype=bool)] = code
    keep = (a >= 0) & (b >= 0) & (a != b)
    low, high, relation = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep]), relation[keep]
    # each person pair once, under its most specific relation (the smallest code: twins before siblings)
    order = np.lexsort((relation, high, low))
    low, high, relation = low[order], high[order], relation[order]
    first = np.ones(len(low), dtype=bool)
    first[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    return _Relatives(
        low[first].astype(np.int64), high[first].astype(np.int64), relation[first].astype(np.int64), has_relation
    )


# ----------------------------------------------------------------------------------------- figures


def _metrics(labels: IntArray, measured: _Measured) -> Metrics:
    """Every figure for one clustering of the measured records (``labels`` aligned with ``measured.person``)."""
    # labels are non-negative ints: renumber them densely without sorting
    present = np.zeros(int(labels.max(initial=-1)) + 1, dtype=bool)
    present[labels] = True
    cluster = (np.cumsum(present) - 1)[labels].astype(np.int64)
    person = measured.person
    n = len(person)
    n_persons = int(person.max()) + 1 if n else 0
    n_i = np.bincount(cluster).astype(np.int64)
    n_j = np.bincount(person).astype(np.int64)
    cell, n_ij = np.unique(cluster * max(n_persons, 1) + person, return_counts=True)
    cell_cluster, cell_person = cell // max(n_persons, 1), cell % max(n_persons, 1)

    correct, predicted, true = _pairs(n_ij), _pairs(n_i), _pairs(n_j)
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    b_precision = float((n_ij * n_ij / n_i[cell_cluster]).sum() / n) if n else 1.0
    b_recall = float((n_ij * n_ij / n_j[cell_person]).sum() / n) if n else 1.0
    metrics = Metrics(
        records=n,
        records_unclustered=measured.unclustered,
        records_unlabelled=measured.unlabelled,
        identities=len(n_i),
        persons=n_persons,
        pairs_predicted=predicted,
        pairs_true=true,
        pairs_correct=correct,
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
    )
    updates: dict[str, Any] = {}
    if measured.applications is not None:
        updates |= _application_figures(cluster, person, measured.applications)
    if measured.relatives is not None:
        updates |= _relative_figures(cell_cluster, cell_person, n_ij, n_j, measured.relatives, predicted - correct)
    return Metrics(**(asdict(metrics) | updates))


def _pairs(counts: IntArray) -> int:
    return int((counts * (counts - 1) // 2).sum())


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _application_figures(cluster: IntArray, person: IntArray, apps: _Applications) -> dict[str, Any]:
    app_cluster, app_person = cluster[apps.row], person[apps.row]
    # traced: only applications of persons with a refusal can be; group them by (person, identity)
    sub = apps.candidate
    groups = np.unique(app_person[sub] * (int(cluster.max(initial=0)) + 1) + app_cluster[sub], return_inverse=True)[1]
    refused_here = apps.refused[sub] & (apps.office[sub] >= 0)
    traced = (apps.office[sub] >= 0) & _earlier_refusal_elsewhere(
        groups.reshape(-1), apps.rank[sub], apps.office[sub], refused_here
    )
    # false flags: only applications in identities that hold a refusal can be flagged
    refusing = np.zeros(int(cluster.max(initial=-1)) + 1, dtype=bool)
    refusing[app_cluster[apps.refused]] = True
    sub = refusing[app_cluster]
    flagged = _earlier_refusal_elsewhere(app_cluster[sub], apps.rank[sub], app_person[sub], apps.refused[sub])
    n_eligible, n_traced, n_flagged, n = int(apps.eligible.sum()), int(traced.sum()), int(flagged.sum()), len(apps.row)
    return {
        "applications": n,
        "applications_undated": apps.undated,
        "refused_elsewhere": n_eligible,
        "traced": n_traced,
        "traceability": n_traced / n_eligible if n_eligible else None,
        "false_flags": n_flagged,
        "false_flag_rate": n_flagged / n if n else None,
    }


def _earlier_refusal_elsewhere(group: IntArray, rank: IntArray, attr: IntArray, refused: BoolArray) -> BoolArray:
    """For each application: is there a refusal in its group, strictly earlier, whose ``attr`` differs from its own?

    With the office as ``attr`` this asks "refused earlier at another office"; with the person, "an
    earlier refusal of someone else". No join, so a million-record cluster costs what singletons do: one
    sort by (group, time), then the smallest and largest ``attr`` among the group's earlier refusals by
    running min and max. Earlier refusals hold another ``attr`` exactly when either differs from the
    application's own. Each group's scan is kept apart by offsetting its values by ``segment * big``, so
    numpy's plain ``minimum.accumulate`` restarts at every group.
    """
    n = len(rank)
    result = np.zeros(n, dtype=bool)
    if not refused.any():
        return result
    order = np.argsort(group * (int(rank.max()) + 1) + rank)  # codes and ranks < records: far inside int64
    g, a, f = group[order], attr[order] + 1, refused[order]  # attr + 1 >= 0
    start = np.ones(n, dtype=bool)
    np.not_equal(g[1:], g[:-1], out=start[1:])
    segment = np.cumsum(start) - 1
    none = int(a.max()) + 1  # "no earlier refusal" for the running min; -1 for the running max
    offset = segment * (none + 1)
    running_min = np.minimum.accumulate(np.where(f, a, none) - offset)
    running_max = np.maximum.accumulate(np.where(f, a, -1) + offset)
    # exclusive: the refusals strictly before each application (its own row never counts)
    low = np.empty(n, dtype=np.int64)
    high = np.empty(n, dtype=np.int64)
    low[1:], high[1:] = running_min[:-1] + offset[1:], running_max[:-1] - offset[1:]
    low[start], high[start] = none, -1
    result[order] = (low != none) & ((low != a) | (high != a))
    return result


def _relative_figures(
    cell_cluster: IntArray, cell_person: IntArray, n_ij: IntArray, n_j: IntArray, relatives: _Relatives, false: int
) -> dict[str, Any]:
    a, b = relatives.a, relatives.b
    related = np.isin(cell_person, np.concatenate([a, b]))  # only those cells can hold a relative pair
    cells = pd.DataFrame({"cluster": cell_cluster[related], "person": cell_person[related], "n": n_ij[related]})
    pairs = pd.DataFrame({"a": a, "b": b, "relation": relatives.relation})
    joined = pairs.merge(cells.rename(columns={"person": "a", "n": "n_a"}), on="a").merge(
        cells.rename(columns={"person": "b", "n": "n_b"}), on=["cluster", "b"]
    )
    # per relative pair: its record pairs (n_a * n_b over the whole truth) and those that share an identity
    possible = n_j[a] * n_j[b]
    merged = np.zeros(len(a), dtype=np.int64)
    if len(joined):
        wrong = (joined["n_a"] * joined["n_b"]).groupby([joined["a"], joined["b"]]).sum()
        at = pd.MultiIndex.from_arrays([a, b]).get_indexer(wrong.index)
        merged[at] = wrong.to_numpy(dtype=np.int64)
    figures = _relative_counts("relative", np.ones(len(a), dtype=bool), possible, merged)
    n_false = figures["relative_false_pairs"]
    figures["relative_false_pair_share"] = n_false / false if false else None
    if relatives.has_relation:
        for code, name in enumerate(RELATIONS):
            figures |= _relative_counts(name, relatives.relation == code, possible, merged)
    return figures


def _relative_counts(name: str, chosen: BoolArray, possible: IntArray, merged: IntArray) -> dict[str, Any]:
    """The figures of the chosen relative person pairs: ``{name}_pairs``, ``{name}s_merged`` and so on."""
    n_possible, n_merged = int(possible[chosen].sum()), int(merged[chosen].sum())
    return {
        f"{name}_pairs": int(chosen.sum()),
        f"{name}s_merged": int((merged[chosen] > 0).sum()),
        f"{name}_record_pairs": n_possible,
        f"{name}_false_pairs": n_merged,
        f"{name}_merge_rate": n_merged / n_possible if n_possible else None,
    }

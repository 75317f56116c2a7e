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

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from linkage.measure import (
    RELATIONS,
    Applications,
    Measured,
    Relatives,
    earlier_refusal_elsewhere,
    ids,
    index,
    measure,
    table,
)
from linkage.schema import REFUSALS

__all__ = ["Metrics", "evaluate", "metrics_of"]

log = logging.getLogger(__name__)

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
    frame = table(clusters, "clusters", ("record_id", "identity_id"))
    universe = index(frame["record_id"], "clusters")
    labels = pd.factorize(ids(frame["identity_id"], "clusters", "identity_id"))[0].astype(np.int64)
    measured = measure(universe, truth, applications, relatives, refusals)
    return metrics_of(labels[measured.at], measured)


# ----------------------------------------------------------------------------------------- figures


def metrics_of(labels: IntArray, measured: Measured) -> Metrics:
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


def _application_figures(cluster: IntArray, person: IntArray, apps: Applications) -> dict[str, Any]:
    app_cluster, app_person = cluster[apps.row], person[apps.row]
    # traced: only applications of persons with a refusal can be; group them by (person, identity)
    sub = apps.candidate
    groups = np.unique(app_person[sub] * (int(cluster.max(initial=0)) + 1) + app_cluster[sub], return_inverse=True)[1]
    refused_here = apps.refused[sub] & (apps.office[sub] >= 0)
    traced = (apps.office[sub] >= 0) & earlier_refusal_elsewhere(
        groups.reshape(-1), apps.rank[sub], apps.office[sub], refused_here
    )
    # false flags: only applications in identities that hold a refusal can be flagged
    refusing = np.zeros(int(cluster.max(initial=-1)) + 1, dtype=bool)
    refusing[app_cluster[apps.refused]] = True
    sub = refusing[app_cluster]
    flagged = earlier_refusal_elsewhere(app_cluster[sub], apps.rank[sub], app_person[sub], apps.refused[sub])
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


def _relative_figures(
    cell_cluster: IntArray, cell_person: IntArray, n_ij: IntArray, n_j: IntArray, relatives: Relatives, false: int
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

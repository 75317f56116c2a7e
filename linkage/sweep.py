"""A threshold sweep: the scored pairs clustered at each threshold and measured, and its precision-recall chart.

Clustering for the sweep is connected components over the pairs at or above each threshold, with the
smallest member as label (:func:`linkage.graph.component_labels`); the figures are those of
:mod:`linkage.evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from linkage.errors import InputError
from linkage.evaluate import Metrics, metrics_of
from linkage.graph import component_labels
from linkage.measure import ids, index, measure, table
from linkage.schema import REFUSALS

if TYPE_CHECKING:
    import altair as alt

__all__ = ["DEFAULT_THRESHOLDS", "pr_chart", "sweep", "write_report"]

DEFAULT_THRESHOLDS: Final[tuple[float, ...]] = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)

Table: TypeAlias = "pd.DataFrame | pa.Table"
IntArray = npt.NDArray[np.int64]


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
        record_ids = table(records, "records", ("record_id",))["record_id"]
    else:
        record_ids = pd.Series(list(records), dtype=object)
    universe = index(record_ids, "records")
    frame = table(pairs, "pairs", ("record_id_l", "record_id_r", "match_probability"))
    left = universe.get_indexer(ids(frame["record_id_l"], "pairs", "record_id_l"))
    right = universe.get_indexer(ids(frame["record_id_r"], "pairs", "record_id_r"))
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
    measured = measure(universe, truth, applications, relatives, refusals)
    rows = []
    for threshold in sorted(set(thresholds)):
        # descending probabilities: the links at a threshold are a prefix (NaN sorts last and never links)
        links = int(np.searchsorted(-descending, -threshold, side="right"))
        labels = component_labels(len(universe), left[:links], right[:links])
        rows.append({"threshold": threshold, "links": links, **metrics_of(labels[measured.at], measured).to_dict()})
    columns = ["threshold", "links", *(f.name for f in fields(Metrics))]
    return pd.DataFrame(rows, columns=columns)


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

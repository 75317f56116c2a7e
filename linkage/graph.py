"""The cluster stage's input as a graph: records as ranks in record-id order, pairs as edges; components.

Record ids are sorted once and every edge is mapped onto the ranks of its ends, so that clustering and the
guard work on integers and the result does not depend on the order of the records or of the pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from linkage.errors import LinkageError, Problem

__all__ = [
    "PAIR_COLUMNS",
    "Graph",
    "IntArray",
    "Table",
    "as_array",
    "build_graph",
    "column",
    "columns",
    "component_labels",
    "connected_components",
    "objects",
    "ranks",
    "require",
]

IntArray: TypeAlias = NDArray[np.int64]
Table: TypeAlias = pd.DataFrame | pa.Table

PAIR_COLUMNS: Final = ("record_id_l", "record_id_r", "match_probability")
_MAX_LISTED: Final = 10  # offending values listed in an error


class Graph(NamedTuple):
    """Records as ranks ``0..n-1`` in record-id order, and the edges at or above the threshold."""

    ids: pa.Array  # record ids, sorted
    rows: IntArray  # rows[rank] = the record's row in the input
    u: IntArray  # edge ends as ranks, u < v
    v: IntArray
    p: NDArray[np.float64]


def column(data: Table, name: str, rows: IntArray | None = None) -> pa.Array:
    if isinstance(data, pd.DataFrame):
        series = data[name] if rows is None else data[name].iloc[rows]
        return pa.array(series, from_pandas=True)
    column = data.column(name)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array if rows is None else array.take(pa.array(rows))


def objects(data: Table, name: str, rows: IntArray) -> list[Any]:
    if isinstance(data, pd.DataFrame):
        return list(data[name].to_numpy()[rows])
    values: list[Any] = column(data, name, rows).to_pylist()
    return values


def columns(data: Table) -> list[str]:
    return [str(c) for c in data.columns] if isinstance(data, pd.DataFrame) else list(data.column_names)


def require(data: Table, names: Sequence[str], what: str, fix: str) -> None:
    missing = [n for n in names if n not in columns(data)]
    if missing:
        raise LinkageError(
            f"{what} lack the column(s) {', '.join(missing)}; {fix}",
            [Problem("column missing", column=n) for n in missing],
        )


def as_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, pd.Series):
        return pa.array(values, from_pandas=True)
    return pa.array(list(values) if not isinstance(values, np.ndarray) else values, from_pandas=True)


def listed(values: Iterable[Any]) -> str:
    shown = [repr(v) for _, v in zip(range(_MAX_LISTED), values, strict=False)]
    return ", ".join(shown)


def sort_ids(record_ids: pa.Array) -> tuple[pa.Array, IntArray]:
    if record_ids.null_count:
        raise LinkageError(
            f"{record_ids.null_count} record(s) have no record_id", [Problem("null", column="record_id")]
        )
    order = pc.array_sort_indices(record_ids).to_numpy().astype(np.int64)
    ids = record_ids.take(pa.array(order))
    if len(ids) > 1:
        same = pc.equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
        if same.any():
            dupes = pc.unique(ids[1:].filter(pa.array(same))).to_pylist()
            raise LinkageError(
                f"{len(dupes)} record_id(s) occur more than once, e.g. {listed(dupes)}; record ids must be unique",
                [Problem("duplicate record_id", column="record_id", value=str(d)) for d in dupes[:_MAX_LISTED]],
            )
    return ids, order


def ranks(ends: pa.ChunkedArray, ids: pa.Array, side: str) -> IntArray:
    """Each end's rank: its position among the sorted record ids."""
    found = pc.index_in(ends, value_set=ids)
    if found.null_count:
        unknown = pc.unique(ends.filter(pc.is_null(found))).to_pylist()
        raise LinkageError(
            f"{len(unknown)} {side} value(s) name no record, e.g. {listed(unknown)}; "
            "score and cluster the same records",
            [Problem("unknown record_id", column=side, value=str(u)) for u in unknown[:_MAX_LISTED]],
        )
    return np.asarray(found.to_numpy(), dtype=np.int64)


def build_graph(record_ids: Any, pairs: Table, threshold: float) -> Graph:
    """The records as ranks and the pairs at or above ``threshold`` as edges between ranks (self-pairs dropped)."""
    if not 0.0 <= threshold <= 1.0:
        raise LinkageError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
    require(pairs, PAIR_COLUMNS, "the scored pairs", "pass the output of the scoring stage")
    sorted_ids, order = sort_ids(as_array(record_ids))
    p = column(pairs, "match_probability").cast(pa.float64())
    keep = pc.fill_null(pc.greater_equal(p, pa.scalar(threshold)), False)  # null and NaN are never edges
    ends = [column(pairs, side) for side in ("record_id_l", "record_id_r")]
    if not pc.all(keep).as_py():
        ends, p = [end.filter(keep) for end in ends], p.filter(keep)
    try:
        joined = pa.chunked_array([end.cast(sorted_ids.type) for end in ends])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        types = f"record_id_l/_r are {ends[0].type}/{ends[1].type}, record_id is {sorted_ids.type}"
        raise LinkageError(f"the pairs' record ids are not of the records' type: {types}") from exc
    both = ranks(joined, sorted_ids, "record_id_l/_r")
    left, right = both[: len(ends[0])], both[len(ends[0]) :]
    probs = p.to_numpy(zero_copy_only=False).astype(np.float64)
    loop = left == right
    u, v = np.minimum(left, right)[~loop], np.maximum(left, right)[~loop]
    return Graph(sorted_ids, order, u, v, probs[~loop])


def component_labels(n: int, u: IntArray, v: IntArray) -> IntArray:
    """The smallest node of each node's component, for nodes ``0 .. n - 1`` and edges ``u[i]–v[i]``.

    The label depends on the graph only, not on edge order. Also used by :mod:`linkage.evaluate`.

    >>> component_labels(6, np.array([4, 1, 2]), np.array([5, 2, 0])).tolist()
    [0, 0, 0, 3, 4, 4]
    """
    try:
        from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
        from scipy.sparse.csgraph import connected_components as scipy_components  # type: ignore[import-untyped]
    except ImportError:  # scipy is not a runtime dependency; the numpy path gives the same labels
        return _components_numpy(n, u, v)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n)).tocsr()
    _, labels = scipy_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)  # first node of each label = its smallest rank
    return np.asarray(first[labels], dtype=np.int64)


def _components_numpy(n: int, u: IntArray, v: IntArray) -> IntArray:
    """Union-find in numpy: hook each root onto the smaller root across an edge, then shortcut fully.

    Every node's parent is at most the node itself, so there are no cycles and each root is the smallest
    node of its tree; each round hooks at least one root, and edges inside finished trees are dropped.
    """
    parent = np.arange(n, dtype=np.int64)
    while len(u):
        pu, pv = parent[u], parent[v]
        open_ = pu != pv
        u, v, pu, pv = u[open_], v[open_], pu[open_], pv[open_]
        if not len(u):
            break
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def connected_components(record_ids: Any, pairs: Table, threshold: float) -> IntArray:
    """Label the connected components of the pairs whose ``match_probability`` is at least ``threshold``.

    Args:
        record_ids: every record id (a sequence, numpy array, pandas Series or Arrow array), unique.
        pairs: a DataFrame or Arrow table with ``record_id_l``, ``record_id_r`` and ``match_probability``.
        threshold: the smallest probability that makes an edge.

    Returns:
        One label per record id, in the order given: ``0..k-1``, numbered in the order of each component's
        smallest record id, so the labels do not depend on the order of the records or the pairs.

    Raises:
        LinkageError: duplicate or null record ids, pairs naming unknown records, missing pair columns, or a
            threshold outside 0..1.

    >>> pairs = pd.DataFrame({"record_id_l": ["c", "b"], "record_id_r": ["d", "a"], "match_probability": [0.2, 0.9]})
    >>> connected_components(["d", "c", "b", "a"], pairs, threshold=0.5)
    array([2, 1, 0, 0])
    """
    found = build_graph(record_ids, pairs, threshold)
    root = component_labels(len(found.ids), found.u, found.v)
    labels = np.unique(root, return_inverse=True)[1].astype(np.int64)
    out = np.empty_like(labels)
    out[found.rows] = labels
    return out

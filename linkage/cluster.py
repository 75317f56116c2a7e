"""Identity clusters: connected components at a threshold, a guard against chaining, stable identity ids.

The stage after scoring (issue 3, section 4). It reads the normalised records (``record_id`` and the
columns in :data:`EVIDENCE`) and the scored pairs (``record_id_l, record_id_r, match_probability``; other
columns are ignored) and returns one row per record, singletons included, ordered by ``record_id``:
``record_id, identity_id, cluster_size``, with a :class:`ClusterReport`. Its steps (:data:`STEPS`):

1. ``components``: connected components of the pairs at or above the threshold (scipy's
   ``connected_components`` when scipy is installed, else a numpy hook-and-shortcut union-find; both give
   the same labels, and scipy is only a dev dependency).
2. ``guard``: a cluster that joins two records which :func:`contradicts` says are different people is cut
   at its weakest links. This stops a chain of individually plausible edges (siblings sharing a mother
   and an address; a relative's NIK used by mistake) from tying a family into one identity, and so tying
   an innocent applicant to a relative's refusal.
3. ``identity_ids``: ``"ID-"`` and the first 16 hex digits of the SHA-1 of the cluster's smallest
   ``record_id`` (:func:`mint_identity_id`). Carrying ids over from an earlier run by overlap will replace
   this step only (``_identity_ids``).

The cut keeps the strongest edges: edges are taken strongest first (among equal probabilities, the edge
between smaller record ids first) and each is kept unless it would connect two contradicting records.
That is the same as removing edges weakest first until no contradicting pair stays connected, then adding
back, strongest first, every removed edge that reconnects none: a maximal set of edges with no
contradiction inside a component (a test holds the two equal). Only clusters with two different valid
NIKs or both sexes can contradict, so only those are examined; clusters above ``max_guard_size`` records
are left whole, logged and counted (``unguarded_clusters``) rather than searched pair by pair.

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

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Final, NamedTuple, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from linkage.errors import LinkageError, Problem

__all__ = [
    "EVIDENCE",
    "NIK_BIRTH_DATE_BY_NIK",
    "NIK_BIRTH_DATE_MOTHER",
    "NIK_BIRTH_DATE_NAME",
    "REASONS",
    "SEX_AND_BIRTH_DATE",
    "SEX_BY_NIK",
    "STEPS",
    "ClusterReport",
    "Cut",
    "cluster",
    "component_labels",
    "connected_components",
    "contradicts",
    "mint_identity_id",
]

log = logging.getLogger(__name__)

STEPS: Final = ("components", "guard", "identity_ids")

# The record columns the guard reads; `cluster(..., guard=True)` requires all of them. `sex` and `birth_date`
# must be the values the application states (normalised), never filled in from the NIK: the rules weigh the
# NIK against them, and a value copied from a relative's NIK would make that NIK contradict on its own.
EVIDENCE: Final = ("nik", "birth_date", "mother_name_canonical", "sex", "full_name_tokens")
PAIR_COLUMNS: Final = ("record_id_l", "record_id_r", "match_probability")

# Reasons `contradicts` returns, strongest first.
SEX_AND_BIRTH_DATE: Final = "sex and birth_date differ"
SEX_BY_NIK: Final = "sex differs and each NIK encodes its own record's sex"
NIK_BIRTH_DATE_BY_NIK: Final = "nik and birth_date differ, and each NIK encodes its own record's birth date"
NIK_BIRTH_DATE_MOTHER: Final = "nik, birth_date and mother_name differ"
NIK_BIRTH_DATE_NAME: Final = "nik, birth_date and full_name differ"
CANNOT_LINK: Final = "an officer decided cannot-link"
_MUST_LINK_P: Final = 2.0  # a must-link decision's edge: above every scored pair, so the guard keeps it first
REASONS: Final = (SEX_AND_BIRTH_DATE, SEX_BY_NIK, NIK_BIRTH_DATE_BY_NIK, NIK_BIRTH_DATE_MOTHER, NIK_BIRTH_DATE_NAME)

IntArray: TypeAlias = NDArray[np.int64]
Table: TypeAlias = pd.DataFrame | pa.Table

_NIK = re.compile(r"[0-9]{16}", re.ASCII)
_NIK_PATTERN: Final = "^[0-9]{16}$"
_NO_DATE: Final = np.iinfo(np.int32).min
_MAX_LISTED: Final = 10  # offending values listed in an error


# ---------------------------------------------------------------------------------------------------------------------
# The contradiction rule: pure functions of two records


def contradicts(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """Say why two records cannot be the same person, or ``None`` when nothing says so.

    Every rule needs two *independent* pieces of evidence to disagree, because each single field has a
    known error rate for the same person (a sex keyed wrongly, a relative's NIK used by mistake, a birth
    date typed with one digit off). Missing values never count: a rule only fires when both records have
    every field it reads.

    1. ``"sex and birth_date differ"``: the stated sexes differ and the birth dates differ clearly.
       A brother and sister, or any two people of other sexes.
    2. ``"sex differs and each NIK encodes its own record's sex"``: the stated sexes differ and each
       record's valid NIK encodes that record's sex (day + 40 for women). Twins of other sexes: same birth
       date and mother, but four fields say two sexes.
    3. ``"nik and birth_date differ, and each NIK encodes its own record's birth date"``: two valid NIKs that
       differ by more than one typed digit or one swap of neighbours, birth dates that differ clearly, and each
       NIK's date part (DDMMYY) agrees with its own record's birth date. Siblings of one sex, even with the
       same name: a mistyped or borrowed NIK does not also bring a matching birth date along.
    4. ``"nik, birth_date and mother_name differ"``: other NIKs and birth dates as in 3 (without the NIK date
       check), and mother's names that differ clearly. Two unrelated people.
    5. ``"nik, birth_date and full_name differ"``: as 4, with the full names differing clearly instead of the
       mothers' names. Siblings of one sex: same mother, other NIK, other birth date, other given name.

    Birth dates differ *clearly* unless they are equal or one typical slip apart: day and month swapped, one
    digit changed, two neighbouring digits swapped (all on ``YYYYMMDD``), or the same day and month one year
    apart. Two names differ *clearly* when each has a token that matches no token of the other, where tokens
    match if they are equal, one is a prefix or initial of the other (``M`` / ``MUHAMMAD``), or they are one
    edit apart (``AMINAH`` / ``AMINNAH``); names that are equal once spaces are removed never differ
    (``NURHAYATI`` / ``NUR HAYATI``). A dropped or abbreviated token is not a difference; a replaced one is.
    Same-sex twins (same birth date and mother, NIKs one serial apart) are deliberately *not* covered: no
    two independent fields tell them apart here, so the model must keep them apart.

    Args:
        a: a record with any of ``nik`` (16 digits), ``birth_date`` (``date`` or ``YYYY-MM-DD``),
            ``mother_name_canonical`` (str), ``sex`` (``"M"``/``"F"``) and ``full_name_tokens`` (list of str);
            absent keys, ``None`` and NaN are missing. ``birth_date`` and ``sex`` are the stated values: filled
            in from the NIK they would turn a borrowed NIK into a contradiction on its own.
        b: the other record, likewise.

    Returns:
        One of :data:`REASONS`, or ``None``.

    >>> brother = {"sex": "M", "birth_date": "1990-05-12", "nik": "1871011205900001"}
    >>> sister = {"sex": "F", "birth_date": "1993-08-02", "nik": "1871014208930002"}
    >>> contradicts(brother, sister)
    'sex and birth_date differ'
    >>> contradicts(brother, {"sex": "F", "birth_date": "1990-12-05"}) is None  # day and month swapped
    True
    >>> contradicts(brother, {"sex": None, "birth_date": "1993-08-02"}) is None  # missing is not evidence
    True
    """
    sex_a, sex_b = _sex(a.get("sex")), _sex(b.get("sex"))
    nik_a, nik_b = _nik(a.get("nik")), _nik(b.get("nik"))
    dob_a, dob_b = _date(a.get("birth_date")), _date(b.get("birth_date"))
    dates_differ = dob_a is not None and dob_b is not None and _dates_differ(dob_a, dob_b)
    if sex_a and sex_b and sex_a != sex_b:
        if dates_differ:
            return SEX_AND_BIRTH_DATE
        if nik_a and nik_b and _nik_sex(nik_a) == sex_a and _nik_sex(nik_b) == sex_b:
            return SEX_BY_NIK
    if nik_a and nik_b and dates_differ and _niks_differ(nik_a, nik_b):
        if _nik_date(nik_a) == _short_date(dob_a) and _nik_date(nik_b) == _short_date(dob_b):
            return NIK_BIRTH_DATE_BY_NIK
        if _names_differ(_tokens(a.get("mother_name_canonical")), _tokens(b.get("mother_name_canonical"))):
            return NIK_BIRTH_DATE_MOTHER
        if _names_differ(_tokens(a.get("full_name_tokens")), _tokens(b.get("full_name_tokens"))):
            return NIK_BIRTH_DATE_NAME
    return None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT


def _sex(value: Any) -> str | None:
    return value if value in ("M", "F") else None


def _nik(value: Any) -> str | None:
    return value if isinstance(value, str) and _NIK.fullmatch(value) else None


def _nik_sex(nik: str) -> str:
    # NIK digits 7-8 are the day of birth, plus 40 for women (domain notes section 3.1).
    return "F" if int(nik[6:8]) > 40 else "M"


def _nik_date(nik: str) -> tuple[int, int, int]:
    day = int(nik[6:8])
    return (day - 40 if day > 40 else day), int(nik[8:10]), int(nik[10:12])


def _short_date(value: date | None) -> tuple[int, int, int] | None:
    return None if value is None else (value.day, value.month, value.year % 100)


def _date(value: Any) -> date | None:
    if _missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else _date(pd.Timestamp(value))
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            return None
    return None


def _one_edit(x: str, y: str) -> bool:
    """True when ``x`` and ``y`` are equal or one substitution, insertion, deletion or neighbour swap apart."""
    if x == y:
        return True
    if len(x) == len(y):
        diff = [i for i, (c, d) in enumerate(zip(x, y, strict=True)) if c != d]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and x[diff[0]] == y[diff[1]] and x[diff[1]] == y[diff[0]]
        )
    if abs(len(x) - len(y)) != 1:
        return False
    short, long = (x, y) if len(x) < len(y) else (y, x)
    i = next((k for k, (c, d) in enumerate(zip(short, long, strict=False)) if c != d), len(short))
    return short[i:] == long[i + 1 :]


def _dates_differ(a: date, b: date) -> bool:
    if a == b or (a.day, a.month, a.year) == (b.month, b.day, b.year):
        return False
    if (a.month, a.day) == (b.month, b.day) and abs(a.year - b.year) == 1:
        return False
    return not _one_edit(f"{a.year:04d}{a.month:02d}{a.day:02d}", f"{b.year:04d}{b.month:02d}{b.day:02d}")


def _niks_differ(a: str, b: str) -> bool:
    # One typed digit or one swap of neighbours is the commonest NIK error for the same person (domain notes 3.1).
    return not _one_edit(a, b)


def _tokens(value: Any) -> tuple[str, ...]:
    if _missing(value):
        return ()
    words: Iterable[Any] = value.split() if isinstance(value, str) else value
    return tuple(w.casefold() for w in words if isinstance(w, str) and w.strip())


def _token_match(x: str, y: str) -> bool:
    return x.startswith(y) or y.startswith(x) or (min(len(x), len(y)) > 2 and _one_edit(x, y))


def _names_differ(a: Sequence[str], b: Sequence[str]) -> bool:
    if not a or not b or "".join(a) == "".join(b):
        return False
    a_extra = any(not any(_token_match(x, y) for y in b) for x in a)
    return a_extra and any(not any(_token_match(y, x) for x in a) for y in b)


# ---------------------------------------------------------------------------------------------------------------------
# Inputs: record ids sorted once, pairs mapped onto their ranks


class _Graph(NamedTuple):
    """Records as ranks ``0..n-1`` in record-id order, and the edges at or above the threshold."""

    ids: pa.Array  # record ids, sorted
    rows: IntArray  # rows[rank] = the record's row in the input
    u: IntArray  # edge ends as ranks, u < v
    v: IntArray
    p: NDArray[np.float64]


def _column(data: Table, name: str, rows: IntArray | None = None) -> pa.Array:
    if isinstance(data, pd.DataFrame):
        series = data[name] if rows is None else data[name].iloc[rows]
        return pa.array(series, from_pandas=True)
    column = data.column(name)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array if rows is None else array.take(pa.array(rows))


def _objects(data: Table, name: str, rows: IntArray) -> list[Any]:
    if isinstance(data, pd.DataFrame):
        return list(data[name].to_numpy()[rows])
    values: list[Any] = _column(data, name, rows).to_pylist()
    return values


def _columns(data: Table) -> list[str]:
    return [str(c) for c in data.columns] if isinstance(data, pd.DataFrame) else list(data.column_names)


def _require(data: Table, names: Sequence[str], what: str, fix: str) -> None:
    missing = [n for n in names if n not in _columns(data)]
    if missing:
        raise LinkageError(
            f"{what} lack the column(s) {', '.join(missing)}; {fix}",
            [Problem("column missing", column=n) for n in missing],
        )


def _as_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, pd.Series):
        return pa.array(values, from_pandas=True)
    return pa.array(list(values) if not isinstance(values, np.ndarray) else values, from_pandas=True)


def _listed(values: Iterable[Any]) -> str:
    shown = [repr(v) for _, v in zip(range(_MAX_LISTED), values, strict=False)]
    return ", ".join(shown)


def _sorted_ids(record_ids: pa.Array) -> tuple[pa.Array, IntArray]:
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
                f"{len(dupes)} record_id(s) occur more than once, e.g. {_listed(dupes)}; record ids must be unique",
                [Problem("duplicate record_id", column="record_id", value=str(d)) for d in dupes[:_MAX_LISTED]],
            )
    return ids, order


def _ranks(ends: pa.ChunkedArray, ids: pa.Array, side: str) -> IntArray:
    """Each end's rank: its position among the sorted record ids."""
    found = pc.index_in(ends, value_set=ids)
    if found.null_count:
        unknown = pc.unique(ends.filter(pc.is_null(found))).to_pylist()
        raise LinkageError(
            f"{len(unknown)} {side} value(s) name no record, e.g. {_listed(unknown)}; "
            "score and cluster the same records",
            [Problem("unknown record_id", column=side, value=str(u)) for u in unknown[:_MAX_LISTED]],
        )
    return np.asarray(found.to_numpy(), dtype=np.int64)


def _graph(record_ids: Any, pairs: Table, threshold: float) -> _Graph:
    if not 0.0 <= threshold <= 1.0:
        raise LinkageError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
    _require(pairs, PAIR_COLUMNS, "the scored pairs", "pass the output of the scoring stage")
    sorted_ids, order = _sorted_ids(_as_array(record_ids))
    p = _column(pairs, "match_probability").cast(pa.float64())
    keep = pc.fill_null(pc.greater_equal(p, pa.scalar(threshold)), False)  # null and NaN are never edges
    ends = [_column(pairs, side) for side in ("record_id_l", "record_id_r")]
    if not pc.all(keep).as_py():
        ends, p = [end.filter(keep) for end in ends], p.filter(keep)
    try:
        joined = pa.chunked_array([end.cast(sorted_ids.type) for end in ends])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        types = f"record_id_l/_r are {ends[0].type}/{ends[1].type}, record_id is {sorted_ids.type}"
        raise LinkageError(f"the pairs' record ids are not of the records' type: {types}") from exc
    both = _ranks(joined, sorted_ids, "record_id_l/_r")
    left, right = both[: len(ends[0])], both[len(ends[0]) :]
    probs = p.to_numpy(zero_copy_only=False).astype(np.float64)
    loop = left == right
    u, v = np.minimum(left, right)[~loop], np.maximum(left, right)[~loop]
    return _Graph(sorted_ids, order, u, v, probs[~loop])


# ---------------------------------------------------------------------------------------------------------------------
# Step 1: components


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
    graph = _graph(record_ids, pairs, threshold)
    root = component_labels(len(graph.ids), graph.u, graph.v)
    labels = np.unique(root, return_inverse=True)[1].astype(np.int64)
    out = np.empty_like(labels)
    out[graph.rows] = labels
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Step 2: the guard


class Cut(NamedTuple):
    """An edge the guard removed, and the contradicting pair it would have put in one identity.

    The contradicting records need not be the edge's own ends: in a chain A-B-C where A and C contradict,
    the cut edge may be B-C with ``contradiction_l, contradiction_r = A, C``.
    """

    record_id_l: Any
    record_id_r: Any
    match_probability: float
    reason: str  # one of REASONS, for the contradicting pair
    contradiction_l: Any
    contradiction_r: Any


class _Evidence(NamedTuple):
    """The evidence of some records as arrays, for the vectorised contradiction rule."""

    nik: IntArray  # the NIK as an integer, -1 when missing
    sex: NDArray[np.int8]  # 1 = M, 2 = F, 0 = missing
    nik_sex: NDArray[np.int8]  # sex encoded by the NIK, 0 when no NIK
    dob: NDArray[np.int32]  # days since 1970, _NO_DATE when missing
    nik_dob: NDArray[np.bool_]  # the NIK's date part (DDMMYY) agrees with the stated birth date


def _nik_numbers(data: Table, rows: IntArray | None) -> IntArray:
    niks = _column(data, "nik", rows).cast(pa.string())
    valid = pc.fill_null(pc.match_substring_regex(niks, _NIK_PATTERN), False)
    numbers = pc.cast(pc.if_else(valid, niks, pa.scalar(None, pa.string())), pa.int64())
    return np.asarray(pc.fill_null(numbers, -1).to_numpy(), dtype=np.int64)


def _sex_codes(data: Table, rows: IntArray | None) -> NDArray[np.int8]:
    sex = _column(data, "sex", rows).cast(pa.string())
    male = pc.fill_null(pc.equal(sex, "M"), False).to_numpy(zero_copy_only=False)
    female = pc.fill_null(pc.equal(sex, "F"), False).to_numpy(zero_copy_only=False)
    return np.asarray(male, dtype=np.int8) + 2 * np.asarray(female, dtype=np.int8)


def _days(data: Table, rows: IntArray) -> NDArray[np.int32]:
    dates = _column(data, "birth_date", rows)
    if pa.types.is_string(dates.type) or pa.types.is_large_string(dates.type):
        dates = pc.strptime(dates, format="%Y-%m-%d", unit="s", error_is_null=True)
    elif pa.types.is_null(dates.type):
        return np.full(len(dates), _NO_DATE, dtype=np.int32)
    try:
        days = pc.cast(dates, pa.date32(), safe=False).cast(pa.int32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        problem = Problem(str(exc), column="birth_date")
        raise LinkageError(f"birth_date must hold dates, got {dates.type}", [problem]) from exc
    return np.asarray(pc.fill_null(days, _NO_DATE).to_numpy(), dtype=np.int32)


def _evidence(data: Table, rows: IntArray) -> _Evidence:
    nik = _nik_numbers(data, rows)
    day = (nik // 10**8) % 100  # NIK digits 7-8
    nik_sex = np.where(nik < 0, 0, np.where(day > 40, 2, 1)).astype(np.int8)
    dob = _days(data, rows)
    known = (nik >= 0) & (dob != _NO_DATE)
    year, month, dom = _ymd(np.where(known, dob, 0).astype(np.int32))
    nik_date = (np.where(day > 40, day - 40, day), nik // 10**6 % 100, nik // 10**4 % 100)
    nik_dob = known & (nik_date[0] == dom) & (nik_date[1] == month) & (nik_date[2] == year % 100)
    return _Evidence(nik, _sex_codes(data, rows), nik_sex, dob, nik_dob)


def _digits_one_edit(a: IntArray, b: IntArray, width: int) -> NDArray[np.bool_]:
    """:func:`_one_edit` on arrays of zero-padded ``width``-digit numbers (equal length, so no insertions)."""
    count = np.zeros(len(a), dtype=np.int64)
    swapped = np.zeros(len(a), dtype=bool)
    last_a = last_b = np.zeros(len(a), dtype=np.int64)
    last_diff = np.zeros(len(a), dtype=bool)
    for k in range(width):
        digit_a, digit_b = a // 10**k % 10, b // 10**k % 10
        diff = digit_a != digit_b
        count += diff
        swapped |= diff & last_diff & (digit_a == last_b) & (digit_b == last_a)
        last_a, last_b, last_diff = digit_a, digit_b, diff
    result: NDArray[np.bool_] = (count <= 1) | ((count == 2) & swapped)
    return result


def _ymd(days: NDArray[np.int32]) -> tuple[IntArray, IntArray, IntArray]:
    dates = days.astype("datetime64[D]")
    years, months = dates.astype("datetime64[Y]"), dates.astype("datetime64[M]")
    year = years.astype(np.int64) + 1970
    month = (months - years).astype(np.int64) + 1
    day = (dates - months).astype(np.int64) + 1
    return year, month, day


def _dates_differ_clearly(a: NDArray[np.int32], b: NDArray[np.int32]) -> NDArray[np.bool_]:
    """:func:`_dates_differ` on arrays of known dates (days since 1970)."""
    (ya, ma, da), (yb, mb, db) = _ymd(a), _ymd(b)
    swapped = (da == mb) & (ma == db) & (ya == yb)
    next_year = (ma == mb) & (da == db) & (np.abs(ya - yb) == 1)
    typo = _digits_one_edit(ya * 10000 + ma * 100 + da, yb * 10000 + mb * 100 + db, 8)
    result: NDArray[np.bool_] = (a != b) & ~swapped & ~next_year & ~typo
    return result


def _contradictions(
    e: _Evidence, i: IntArray, j: IntArray, names: Callable[[IntArray, IntArray], list[str | None]]
) -> tuple[IntArray, list[str]]:
    """:func:`contradicts` for the pairs ``(i[k], j[k])`` of records in ``e``: which pairs, and why.

    Rules 1-3 (sex, NIK and birth date) run on arrays; ``names(i, j)`` decides rules 4 and 5 (mother's name,
    then full name) for the few pairs whose NIKs and birth dates differ clearly but whose NIKs do not confirm
    both birth dates. A property test holds this equal to :func:`contradicts`.
    """
    sexes = (e.sex[i] > 0) & (e.sex[j] > 0) & (e.sex[i] != e.sex[j])
    dates = (e.dob[i] != _NO_DATE) & (e.dob[j] != _NO_DATE) & (e.dob[i] != e.dob[j])
    niks = (e.nik[i] >= 0) & (e.nik[j] >= 0) & (e.nik[i] != e.nik[j])
    maybe = np.flatnonzero(sexes | (niks & dates))  # every rule needs other sexes, or other NIKs and dates
    i, j, sexes, dates, niks = i[maybe], j[maybe], sexes[maybe], dates[maybe], niks[maybe]
    dates[dates] = _dates_differ_clearly(e.dob[i[dates]], e.dob[j[dates]])
    by_date = sexes & dates
    by_nik_sex = sexes & ~by_date & (e.nik_sex[i] == e.sex[i]) & (e.nik_sex[j] == e.sex[j])  # nik_sex 0: no NIK
    rest = ~(by_date | by_nik_sex) & niks & dates
    rest[rest] = ~_digits_one_edit(e.nik[i[rest]], e.nik[j[rest]], 16)
    reasons = np.full(len(i), None, dtype=object)
    reasons[by_date] = SEX_AND_BIRTH_DATE
    reasons[by_nik_sex] = SEX_BY_NIK
    by_nik_date = rest & e.nik_dob[i] & e.nik_dob[j]
    reasons[by_nik_date] = NIK_BIRTH_DATE_BY_NIK
    rest &= ~by_nik_date
    if rest.any():
        reasons[rest] = names(i[rest], j[rest])
    found = np.flatnonzero(reasons != None)  # noqa: E711 (elementwise)
    return maybe[found], reasons[found].tolist()


def _within_pairs(groups: IntArray) -> tuple[IntArray, IntArray]:
    """All pairs ``i < j`` of positions that share a group; ``groups`` must be sorted."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, n])
    end = np.repeat(starts + sizes, sizes)  # one past the last position of each position's group
    position = np.arange(n, dtype=np.int64)
    after = end - position - 1
    left = np.repeat(position, after)
    offset = np.arange(len(left), dtype=np.int64) - np.repeat(np.cumsum(after) - after, after)
    return left, left + 1 + offset


class _NameCheck:
    """Rules 4 and 5 of :func:`contradicts` (names) for pairs of records given by position in ``rows``."""

    def __init__(self, data: Table, rows: IntArray) -> None:
        self._data, self._rows = data, rows

    def __call__(self, i: IntArray, j: IntArray) -> list[str | None]:
        needed = np.unique(np.r_[i, j])
        mothers = _objects(self._data, "mother_name_canonical", self._rows[needed])
        fulls = _objects(self._data, "full_name_tokens", self._rows[needed])
        names = {k: (_tokens(m), _tokens(f)) for k, m, f in zip(needed.tolist(), mothers, fulls, strict=True)}
        return [self._reason(names[a], names[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True)]

    @staticmethod
    def _reason(a: tuple[tuple[str, ...], tuple[str, ...]], b: tuple[tuple[str, ...], tuple[str, ...]]) -> str | None:
        if _names_differ(a[0], b[0]):
            return NIK_BIRTH_DATE_MOTHER
        return NIK_BIRTH_DATE_NAME if _names_differ(a[1], b[1]) else None


_CutRanks: TypeAlias = tuple[int, int, float, str, int, int]  # edge, probability, reason, contradicting pair


@dataclass
class _GuardResult:
    root: IntArray  # after the guard: the smallest rank of each record's cluster
    contradicting_pairs: int = 0
    changed: int = 0
    unguarded: list[int] = field(default_factory=list)  # sizes of the clusters too large to guard
    cuts: list[_CutRanks] = field(default_factory=list)


def _guard(
    data: Table | None,
    graph: _Graph,
    root: IntArray,
    max_guard_size: int,
    cannot: Sequence[tuple[int, int]] = (),
    together: IntArray | None = None,
) -> _GuardResult:
    """Cut the clusters that join contradicting records, or the two records of a cannot-link decision.

    ``data`` None: decisions only, no evidence. ``together[k]`` labels record ``k``'s must-link group:
    evidence never contradicts two records an officer decided are one person (a cannot-link decision does,
    and the must-link it overrides is reported).
    """
    result = _GuardResult(root.copy())
    conflicts: dict[int, dict[tuple[int, int], str]] = {}
    if data is not None:
        _evidence_conflicts(data, graph, root, max_guard_size, result, conflicts, together)
    for a, b in cannot:  # whatever the cluster's size: a decision is always honoured
        if root[a] == root[b]:
            conflicts.setdefault(int(root[a]), {})[(min(a, b), max(a, b))] = CANNOT_LINK
    result.contradicting_pairs = sum(len(c) for c in conflicts.values())
    result.changed = len(conflicts)
    if conflicts:
        _cut_clusters(graph, root, conflicts, result)
    return result


def _evidence_conflicts(
    data: Table,
    graph: _Graph,
    root: IntArray,
    max_guard_size: int,
    result: _GuardResult,
    conflicts: dict[int, dict[tuple[int, int], str]],
    together: IntArray | None,
) -> None:
    n = len(root)
    size = np.bincount(root, minlength=n)
    nodes = np.flatnonzero(size[root] > 1)
    # Only clusters with two different valid NIKs or both sexes can hold a contradiction: every rule needs one.
    nik = _nik_numbers(data, graph.rows[nodes])
    sex = _sex_codes(data, graph.rows[nodes])
    has_nik = nik >= 0
    low = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(n, -1, dtype=np.int64)
    np.minimum.at(low, root[nodes][has_nik], nik[has_nik])
    np.maximum.at(high, root[nodes][has_nik], nik[has_nik])
    males = np.bincount(root[nodes][sex == 1], minlength=n)
    females = np.bincount(root[nodes][sex == 2], minlength=n)
    suspect = ((high >= 0) & (low < high)) | ((males > 0) & (females > 0))
    too_big = suspect & (size > max_guard_size)
    suspect &= ~too_big
    result.unguarded = sorted(size[too_big].tolist(), reverse=True)
    if result.unguarded:
        log.warning(
            "%d cluster(s) above max_guard_size=%d records left unguarded (sizes %s): check the threshold and "
            "the blocking rules for over-linking",
            len(result.unguarded),
            max_guard_size,
            result.unguarded[:_MAX_LISTED],
        )
    nodes = nodes[suspect[root[nodes]]]
    nodes = nodes[np.argsort(root[nodes], kind="stable")]  # by cluster, then by rank
    if not len(nodes):
        return
    rows = graph.rows[nodes]
    i, j = _within_pairs(root[nodes])
    found, reasons = _contradictions(_evidence(data, rows), i, j, _NameCheck(data, rows))
    for a, b, reason in zip(nodes[i[found]].tolist(), nodes[j[found]].tolist(), reasons, strict=True):
        if together is None or together[a] != together[b]:
            conflicts.setdefault(int(root[a]), {})[(a, b)] = reason


def _cut_clusters(
    graph: _Graph, root: IntArray, conflicts: dict[int, dict[tuple[int, int], str]], result: _GuardResult
) -> None:
    flagged = np.zeros(len(root), dtype=bool)
    flagged[list(conflicts)] = True
    chosen = flagged[root[graph.u]]
    u, v, p = graph.u[chosen], graph.v[chosen], graph.p[chosen]
    order = np.lexsort((-p, v, u))  # one edge per pair of records: its highest probability
    u, v, p = u[order], v[order], p[order]
    first = np.r_[True, (u[1:] != u[:-1]) | (v[1:] != v[:-1])]
    u, v, p = u[first], v[first], p[first]
    order = np.lexsort((v, u, -p, root[u]))  # by cluster, strongest first, ties by record ids
    u, v, p, group = u[order], v[order], p[order], root[u][order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    for start, stop in zip(starts.tolist(), [*starts[1:].tolist(), len(group)], strict=True):
        edges = list(zip(u[start:stop].tolist(), v[start:stop].tolist(), p[start:stop].tolist(), strict=True))
        new_root, cuts = _split(edges, conflicts[int(group[start])])
        keys = np.fromiter(new_root.keys(), dtype=np.int64, count=len(new_root))
        result.root[keys] = np.fromiter(new_root.values(), dtype=np.int64, count=len(new_root))
        result.cuts.extend(cuts)


def _split(
    edges: Sequence[tuple[int, int, float]], conflicts: Mapping[tuple[int, int], str]
) -> tuple[dict[int, int], list[_CutRanks]]:
    """Keep each edge, strongest first, unless it joins two contradicting records; return the new roots and cuts."""
    partners: dict[int, set[int]] = {}
    for a, b in conflicts:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    parent = {x: x for a, b, _ in edges for x in (a, b)}
    members = {x: {x} for x in parent}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    cuts: list[_CutRanks] = []
    for a, b, p in edges:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        small, large = (ra, rb) if len(members[ra]) <= len(members[rb]) else (rb, ra)
        blocking = [
            (min(x, y), max(x, y)) for x in members[small] & partners.keys() for y in partners[x] if y in members[large]
        ]
        if blocking:
            pair = min(blocking)
            cuts.append((a, b, p, conflicts[pair], *pair))
            continue
        parent[small] = large
        members[large] |= members.pop(small)
    new_root = {x: min(group) for group in members.values() for x in group}
    return new_root, cuts


def _decisions(
    graph: _Graph, must_link: Sequence[tuple[Any, Any]], cannot_link: Sequence[tuple[Any, Any]]
) -> tuple[list[tuple[int, int]], IntArray | None]:
    """Cannot-link pairs as ranks, and each record's must-link group (None without must-links)."""
    n = len(graph.ids)

    def ranks(decided: Sequence[tuple[Any, Any]]) -> tuple[IntArray, IntArray]:
        ends = pa.chunked_array([_as_array([x for x, _ in decided]), _as_array([y for _, y in decided])])
        both = _ranks(pa.chunked_array([c.cast(graph.ids.type) for c in ends.chunks]), graph.ids, "decision")
        return both[: len(decided)], both[len(decided) :]

    cannot: list[tuple[int, int]] = []
    if cannot_link:
        a, b = ranks(cannot_link)
        cannot = [(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True) if x != y]
    together = None
    if must_link:
        a, b = ranks(must_link)
        together = component_labels(n, np.minimum(a, b), np.maximum(a, b))
    return cannot, together


# ---------------------------------------------------------------------------------------------------------------------
# Step 3: identity ids


def mint_identity_id(record_id: Any) -> str:
    """Mint the identity id of a cluster from its smallest record id.

    Sixteen hex digits (64 bits) rather than twelve: ids accumulate across runs, and at 10 million
    identities twelve digits would collide with a probability of about 17 %, sixteen with about 3 in a
    million. :func:`cluster` still checks every run for a collision and refuses to merge on one.

    Args:
        record_id: the smallest record id of the cluster (hashed as ``str(record_id)`` in UTF-8).

    Returns:
        ``"ID-"`` and 16 lowercase hex digits.

    >>> mint_identity_id("a")
    'ID-86f7e437faa5a7fc'
    """
    return "ID-" + hashlib.sha1(str(record_id).encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def _identity_ids(ids: NDArray[Any], root: IntArray) -> tuple[NDArray[np.object_], IntArray]:
    """Each record's identity id and cluster size. The seam where ids will be carried over from a previous run.

    ``ids`` are the record ids in sorted order and ``root[k]`` the smallest rank in record ``k``'s cluster.
    """
    anchors = np.flatnonzero(root == np.arange(len(root)))  # each cluster's smallest record
    minted = [mint_identity_id(x) for x in ids[anchors].tolist()]
    if len(set(minted)) != len(minted):  # 64 bits: about 3e-8 at a million identities, but never silently
        raise LinkageError("two clusters minted the same identity id; refusing to merge them silently")
    number = np.empty(len(root), dtype=np.int64)
    number[anchors] = np.arange(len(anchors))
    identity = np.array(minted, dtype=object)[number[root]]
    size = np.bincount(root, minlength=len(root))[root]
    return identity, np.asarray(size, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------------
# The stage


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
            columns (``nik``, ``birth_date``, ``mother_name_canonical``, ``sex``, ``full_name_tokens``), as
            normalised; ``sex`` and ``birth_date`` as stated, not filled in from the NIK.
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

    >>> records = pd.DataFrame({
    ...     "record_id": ["c", "b", "a"],
    ...     "nik": ["1871015508930002", "1871011205900001", "1871011205900001"],
    ...     "birth_date": [date(1993, 8, 15), date(1990, 5, 12), date(1990, 5, 12)],
    ...     "mother_name_canonical": ["SITI AMINAH", None, "SITI AMINAH"],
    ...     "sex": ["F", "M", "M"],
    ...     "full_name_tokens": [["ANI"], ["BUDI"], ["BUDI"]],
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
    _require(records, ("record_id", *(EVIDENCE if guard else ())), "the records", fix)
    if max_guard_size < 2:
        raise LinkageError(f"max_guard_size must be at least 2, got {max_guard_size}")
    record_ids = _column(records, "record_id")
    if must_link:
        decided = pd.DataFrame(must_link, columns=["record_id_l", "record_id_r"]).assign(match_probability=_MUST_LINK_P)
        scored = pairs if isinstance(pairs, pd.DataFrame) else pairs.to_pandas()
        pairs = pd.concat([scored[list(PAIR_COLUMNS)], decided], ignore_index=True)
    graph = _graph(record_ids, pairs, threshold)
    root = component_labels(len(graph.ids), graph.u, graph.v)
    cannot, together = _decisions(graph, must_link, cannot_link)
    result = _guard(records if guard else None, graph, root, max_guard_size, cannot, together)
    # The output keeps the input's id values (pandas: the very objects), in record-id order.
    values = records["record_id"].to_numpy() if isinstance(records, pd.DataFrame) else record_ids.to_numpy(False)
    ids = values[graph.rows]
    identity, size = _identity_ids(ids, result.root)
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

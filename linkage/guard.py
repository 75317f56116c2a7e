"""The cluster guard: cut a cluster that joins records which contradict, at its weakest links.

This stops a chain of individually plausible edges (siblings sharing a mother and an address; a relative's
NIK used by mistake) from tying a family into one identity, and so tying an innocent applicant to a
relative's refusal. The rule is :func:`linkage.contradict.contradicts`, here on arrays of records.

The cut keeps the strongest edges: edges are taken strongest first (among equal probabilities, the edge
between smaller record ids first) and each is kept unless it would connect two contradicting records.
That is the same as removing edges weakest first until no contradicting pair stays connected, then adding
back, strongest first, every removed edge that reconnects none: a maximal set of edges with no
contradiction inside a component (a test holds the two equal). Only clusters with two different valid
NIKs or both sexes can contradict, so only those are examined; clusters above ``max_guard_size`` records
are left whole, logged and counted (``unguarded_clusters``) rather than searched pair by pair.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from linkage.contradict import (
    CANNOT_LINK,
    NIK_BIRTH_DATE_BY_NIK,
    NIK_BIRTH_DATE_MOTHER,
    NIK_BIRTH_DATE_NAME,
    SEX_AND_BIRTH_DATE,
    SEX_BY_NIK,
    TWIN_NIKS_NAME,
    name_tokens,
    names_differ,
    twin_names,
)
from linkage.errors import LinkageError, Problem
from linkage.graph import Graph, IntArray, Table, column, objects

__all__ = ["Cut", "GuardResult", "apply_guard"]

log = logging.getLogger(__name__)

_NIK_PATTERN: Final = "^[0-9]{16}$"
_NO_DATE: Final = np.iinfo(np.int32).min
_MAX_LISTED: Final = 10  # cluster sizes listed in a warning


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
    niks = column(data, "nik", rows).cast(pa.string())
    valid = pc.fill_null(pc.match_substring_regex(niks, _NIK_PATTERN), False)
    numbers = pc.cast(pc.if_else(valid, niks, pa.scalar(None, pa.string())), pa.int64())
    return np.asarray(pc.fill_null(numbers, -1).to_numpy(), dtype=np.int64)


def _sex_codes(data: Table, rows: IntArray | None, name: str = "sex") -> NDArray[np.int8]:
    sex = column(data, name, rows).cast(pa.string())
    male = pc.fill_null(pc.equal(sex, "M"), False).to_numpy(zero_copy_only=False)
    female = pc.fill_null(pc.equal(sex, "F"), False).to_numpy(zero_copy_only=False)
    return np.asarray(male, dtype=np.int8) + 2 * np.asarray(female, dtype=np.int8)


def _days(data: Table, rows: IntArray, name: str = "birth_date") -> NDArray[np.int32]:
    dates = column(data, name, rows)
    if pa.types.is_string(dates.type) or pa.types.is_large_string(dates.type):
        dates = pc.strptime(dates, format="%Y-%m-%d", unit="s", error_is_null=True)
    elif pa.types.is_null(dates.type):
        return np.full(len(dates), _NO_DATE, dtype=np.int32)
    try:
        days = pc.cast(dates, pa.date32(), safe=False).cast(pa.int32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        problem = Problem(str(exc), column=name)
        raise LinkageError(f"{name} must hold dates, got {dates.type}", [problem]) from exc
    return np.asarray(pc.fill_null(days, _NO_DATE).to_numpy(), dtype=np.int32)


def _evidence(data: Table, rows: IntArray) -> _Evidence:
    """The records' evidence as arrays; what the NIK encodes is read as ingest stored it (``nik_sex``,
    ``nik_birth_date``, decoded by :func:`linkage.nik.parse_nik`), never decoded again here."""
    nik = _nik_numbers(data, rows)
    nik_sex = np.where(nik < 0, 0, _sex_codes(data, rows, "nik_sex")).astype(np.int8)
    dob = _days(data, rows)
    nik_days = _days(data, rows, "nik_birth_date")
    known = (nik >= 0) & (dob != _NO_DATE) & (nik_days != _NO_DATE)
    year, month, dom = _ymd(np.where(known, dob, 0).astype(np.int32))
    nik_year, nik_month, nik_dom = _ymd(np.where(known, nik_days, 0).astype(np.int32))
    # the NIK holds DDMMYY: its date agrees when day, month and year within the century do
    nik_dob = known & (nik_dom == dom) & (nik_month == month) & (nik_year % 100 == year % 100)
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
    e: _Evidence, i: IntArray, j: IntArray, names: _NameCheck
) -> tuple[IntArray, list[str]]:
    """:func:`contradicts` for the pairs ``(i[k], j[k])`` of records in ``e``: which pairs, and why.

    Rules 1-3 (sex, NIK and birth date) run on arrays; ``names(i, j)`` decides rules 4 and 5 (mother's name,
    then full name) for the few pairs whose NIKs and birth dates differ clearly but whose NIKs do not confirm
    both birth dates, and ``names.twins(i, j)`` rule 6 (full name) for the pairs left whose NIKs show a
    twin's pattern. A property
    test holds this equal to :func:`contradicts`.
    """
    sexes = (e.sex[i] > 0) & (e.sex[j] > 0) & (e.sex[i] != e.sex[j])
    dates = (e.dob[i] != _NO_DATE) & (e.dob[j] != _NO_DATE) & (e.dob[i] != e.dob[j])
    niks = (e.nik[i] >= 0) & (e.nik[j] >= 0) & (e.nik[i] != e.nik[j])
    twins = niks & (e.nik[i] // 10_000 == e.nik[j] // 10_000)  # rule 6: the same first 12 digits
    # every rule needs other sexes, or other NIKs and dates, or NIKs of a twin's pattern
    maybe = np.flatnonzero(sexes | (niks & dates) | twins)
    i, j, sexes, dates, niks, twins = i[maybe], j[maybe], sexes[maybe], dates[maybe], niks[maybe], twins[maybe]
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
    twins &= reasons == None  # noqa: E711 (elementwise)
    if twins.any():
        reasons[twins] = names.twins(i[twins], j[twins])
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
    """Rules 4, 5 and 6 of :func:`contradicts` (names) for pairs of records given by position in ``rows``."""

    def __init__(self, data: Table, rows: IntArray) -> None:
        self._data, self._rows = data, rows

    def __call__(self, i: IntArray, j: IntArray) -> list[str | None]:
        """Rules 4 and 5 for the pairs ``(i[k], j[k])``."""
        needed = np.unique(np.r_[i, j])
        mothers = objects(self._data, "mother_name_canonical", self._rows[needed])
        fulls = objects(self._data, "full_name_tokens", self._rows[needed])
        names = {k: (name_tokens(m), name_tokens(f)) for k, m, f in zip(needed.tolist(), mothers, fulls, strict=True)}
        return [self._reason(names[a], names[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True)]

    def twins(self, i: IntArray, j: IntArray) -> list[str | None]:
        """Rule 6 for the pairs ``(i[k], j[k])``, whose NIKs show a twin's pattern: the full names only."""
        needed = np.unique(np.r_[i, j])
        fulls = objects(self._data, "full_name_tokens", self._rows[needed])
        names = {k: name_tokens(f) for k, f in zip(needed.tolist(), fulls, strict=True)}
        pairs = zip(i.tolist(), j.tolist(), strict=True)
        return [TWIN_NIKS_NAME if twin_names(names[a], names[b]) else None for a, b in pairs]

    @staticmethod
    def _reason(a: tuple[tuple[str, ...], tuple[str, ...]], b: tuple[tuple[str, ...], tuple[str, ...]]) -> str | None:
        if names_differ(a[0], b[0]):
            return NIK_BIRTH_DATE_MOTHER
        return NIK_BIRTH_DATE_NAME if names_differ(a[1], b[1]) else None


_CutRanks: TypeAlias = tuple[int, int, float, str, int, int]  # edge, probability, reason, contradicting pair


@dataclass
class GuardResult:
    root: IntArray  # after the guard: the smallest rank of each record's cluster
    contradicting_pairs: int = 0
    changed: int = 0
    unguarded: list[int] = field(default_factory=list)  # sizes of the clusters too large to guard
    cuts: list[_CutRanks] = field(default_factory=list)


def apply_guard(
    data: Table | None,
    graph: Graph,
    root: IntArray,
    max_guard_size: int,
    cannot: Sequence[tuple[int, int]] = (),
    together: IntArray | None = None,
) -> GuardResult:
    """Cut the clusters that join contradicting records, or the two records of a cannot-link decision.

    ``data`` None: decisions only, no evidence. ``together[k]`` labels record ``k``'s must-link group:
    evidence never contradicts two records an officer decided are one person (a cannot-link decision does,
    and the must-link it overrides is reported).
    """
    result = GuardResult(root.copy())
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
    graph: Graph,
    root: IntArray,
    max_guard_size: int,
    result: GuardResult,
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
    graph: Graph, root: IntArray, conflicts: dict[int, dict[tuple[int, int], str]], result: GuardResult
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

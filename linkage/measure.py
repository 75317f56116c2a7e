"""The evaluation's inputs: truth, applications and relatives read and turned into integer codes.

Records are *measured* when they are in both the clustered universe (a clustering's records, or a sweep's)
and the truth; the others are counted, not guessed at. Applications are ordered by ``(application_date,
record_id)``, a total order that does not depend on row order; relatives are person pairs, each once under
its most specific relation (:data:`RELATIONS`). Definitions of the figures: :mod:`linkage.evaluate`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from linkage.dates import parse_date
from linkage.errors import InputError, did_you_mean

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = [
    "RELATIONS",
    "Applications",
    "Measured",
    "Relatives",
    "applications_from_store",
    "earlier_refusal_elsewhere",
    "ids",
    "index",
    "load_table",
    "measure",
    "table",
]

log = logging.getLogger(__name__)

# the relations with their own figures, most specific first: a pair listed as both is counted as the first
RELATIONS: Final[tuple[str, ...]] = ("twin", "sibling")

Table: TypeAlias = "pd.DataFrame | pa.Table"
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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


@dataclass(frozen=True)
class Applications:
    """Dated applications of measured records, as integer codes aligned by position."""

    row: IntArray  # the measured record (position in Measured.person) of each application
    rank: IntArray  # place in the order (application_date, record_id): 0 .. len - 1
    office: IntArray  # office code, -1 when unknown
    refused: BoolArray
    undated: int
    eligible: BoolArray  # refused earlier at another office (by truth alone, so computed once)
    candidate: BoolArray  # the applications of persons with a refusal at a known office


@dataclass(frozen=True)
class Measured:
    """The records in both the clustered universe and the truth, with everything the figures need."""

    at: IntArray  # position of each measured record in the universe (clusters rows or sweep records)
    person: IntArray  # dense person code of each measured record
    unclustered: int
    unlabelled: int
    applications: Applications | None
    relatives: Relatives | None


@dataclass(frozen=True)
class Relatives:
    """Relative person pairs among the measured persons, as person codes ``a < b``, each pair once."""

    a: IntArray
    b: IntArray
    relation: IntArray  # position in RELATIONS, len(RELATIONS) for any other relation
    has_relation: bool  # the table had a relation column: the per-relation figures can be given


def table(data: Table, name: str, required: Sequence[str]) -> pd.DataFrame:
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


def ids(column: pd.Series, name: str, what: str) -> pd.Index:
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


def index(column: pd.Series, name: str) -> pd.Index:
    """Record ids as an index, refusing repeats (a repeated id would be counted twice, or joined to anything)."""
    index = ids(column, name, "record_id")
    if not index.is_unique:
        repeated = index[index.duplicated()].unique()
        raise InputError(
            f"{name}: {len(repeated):,} record_id(s) appear more than once, e.g. {', '.join(map(repr, repeated[:3]))}"
        )
    return index


def measure(
    universe: pd.Index,
    truth: Table,
    applications: Table | None,
    relatives: Table | None,
    refusals: Sequence[str],
) -> Measured:
    frame = table(truth, "truth", ("record_id", "person_id"))
    truth_ids = index(frame["record_id"], "truth")
    at = universe.get_indexer(truth_ids)
    labelled = at >= 0
    if len(universe) and len(truth_ids) and not labelled.any():
        raise InputError(
            f"clusters and truth share no record_id (e.g. {universe[0]!r} and {truth_ids[0]!r}): "
            "are they from the same data set?"
        )
    persons = ids(frame["person_id"], "truth", "person_id")[labelled]
    person_codes, person_ids = pd.factorize(persons)
    measured_ids = truth_ids[labelled]
    unclustered = int((~labelled).sum())
    unlabelled = len(universe) - int(labelled.sum())
    if unclustered or unlabelled:
        log.info(
            "evaluate: %d truth records not clustered, %d clustered records without truth", unclustered, unlabelled
        )
    person = person_codes.astype(np.int64)
    return Measured(
        at=at[labelled].astype(np.int64),
        person=person,
        unclustered=unclustered,
        unlabelled=unlabelled,
        applications=None if applications is None else _applications(applications, measured_ids, person, refusals),
        relatives=None if relatives is None else _relatives(relatives, pd.Index(person_ids)),
    )


def _applications(data: Table, measured: pd.Index, persons: IntArray, refusals: Sequence[str]) -> Applications:
    frame = table(data, "applications", ("record_id", "office", "application_date", "decision"))
    row = measured.get_indexer(index(frame["record_id"], "applications"))
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
    eligible = (office >= 0) & earlier_refusal_elsewhere(person, rank, office, refused_here)
    refusing = np.zeros(int(persons.max(initial=-1)) + 1, dtype=bool)
    refusing[person[refused_here]] = True
    return Applications(row, rank, office, refused, undated, eligible, refusing[person])


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


def _relatives(data: Table, persons: pd.Index) -> Relatives:
    frame = table(data, "relatives", ("person_id_a", "person_id_b"))
    a = persons.get_indexer(ids(frame["person_id_a"], "relatives", "person_id_a"))
    b = persons.get_indexer(ids(frame["person_id_b"], "relatives", "person_id_b"))
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
    return Relatives(
        low[first].astype(np.int64), high[first].astype(np.int64), relation[first].astype(np.int64), has_relation
    )


def earlier_refusal_elsewhere(group: IntArray, rank: IntArray, attr: IntArray, refused: BoolArray) -> BoolArray:
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

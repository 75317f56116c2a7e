"""The warm scorer: one applicant scored against the store in milliseconds, as a link of it would score it.

A link of one application (:mod:`linkage.engine`) prepares its model input and its stored candidates
(:func:`linkage.prepare.prepare_incremental`), builds a Splink linker and predicts: over a second at a
million records, almost all of it fixed cost (SQL planned against the store's big tables, the linker's
settings parsed, Splink's SQL generated). The :class:`Scorer` pays that cost once:

* the store's state the candidates are read from is a :class:`Snapshot` in memory: the block index as
  sorted arrays (a probe key is a binary search, not a scan of 40M rows), the linked records' normalised
  rows, their identities and applications, and the value counts as dictionaries;
* Splink's scoring SQL (comparison vectors, match weights with term-frequency adjustments, the prior) is
  generated once from the stored model and run over the applicant and its candidates only;
* the statements per query touch no table of the store: small Arrow tables registered on the caller's
  cursor, so queries on several threads run side by side and never wait for a link.

What a query computes is what :func:`linkage.prepare.prepare_incremental` and
:func:`linkage.score.predict_new` compute for a link of the same application: the same model input
(its name-token counts counted over the store and the applicant), the same pairs (a candidate is scored
when a blocking rule pairs it with the applicant, as Splink's blocking decides it), the same term
frequencies, prior (λ scaled to the store's size plus one) and veto. ``tests/test_query.py`` compares the
two on a few hundred pairs to 1e-9.

A snapshot is the store as of one moment (:attr:`Snapshot.version`: the latest link run and the record
count); :meth:`Scorer.refresh` builds the next one and swaps it in whole, so that a query sees a link's
result all at once, never half of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections import ChainMap, Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage import block, model
from linkage.compiled import Compiled, Unsupported
from linkage.errors import InputError
from linkage.normalise import COLUMNS
from linkage.prepare import HASHED, MACROS, model_input_row, model_input_sql
from linkage.review import run_cuts
from linkage.risk import Indicator, Record, reckon
from linkage.schema import REFUSALS
from linkage.spec import ModelSpec
from linkage.store import Store, quote
from linkage.tables import arrow_table

__all__ = ["QUERY_RECORD_ID", "Prescored", "Scorer", "Snapshot", "State", "store_version"]

log = logging.getLogger(__name__)

QUERY_RECORD_ID: Final = "(query)"
"""The applicant's record id in the scored pairs; no stored record id has parentheses around it."""

_K = TypeVar("_K")
_V = TypeVar("_V")

_COUNTS: Final = pa.schema([("kind", pa.string()), ("value", pa.string()), ("n", pa.int64())])


@dataclass(frozen=True)
class Snapshot:
    """The store's linked records as of one moment, in memory: what a query reads besides its own row.

    A snapshot is loaded whole (:meth:`load`: 15-25 s at a million records) or patched with what the link runs
    since changed (:meth:`patched`: a registration's run, in milliseconds): the new records' rows and keys are
    added beside the loaded ones, the identities of the records those runs moved replaced.
    """

    version: tuple[str | None, int]
    """(the latest succeeded link run, the records linked): a snapshot older than the store is rebuilt"""
    loaded_at: Any
    """the store's clock when it was read (an update ingested later makes a patch a full load)"""
    keys: np.ndarray
    """every linked record's index keys (``block_index``), sorted; then those of the records added by patches"""
    key_rows: np.ndarray
    """the row in :attr:`rows` of each key's record, aligned with :attr:`keys`"""
    rows: pa.Table
    """the linked records' normalised rows (:data:`linkage.normalise.COLUMNS`) and ``decision_reason``, one
    per record (by patches: appended)"""
    identity: np.ndarray
    """each row's identity id"""
    at: np.ndarray
    """each record number's row (-1: none)"""
    members: Mapping[str, np.ndarray]
    """each identity's rows in :attr:`rows`"""
    counts: dict[str, Mapping[str, int]]
    """``value_counts`` by kind: value -> records"""
    totals: dict[str, int]
    """each kind's total"""
    contacts: Mapping[tuple[str, Any], np.ndarray] = dataclasses.field(default_factory=dict)
    """the rows that carry each phone and household (village, RT, RW) that two or more records carry"""
    added: tuple[np.ndarray, np.ndarray] = (np.empty(0, np.uint64), np.empty(0, np.int64))
    """the keys (sorted) and rows of the records that patches added"""
    patches: int = 0
    identities: int = 0
    """the identities with a record, as ``count(DISTINCT identity_id)`` of membership would count them"""

    @property
    def records(self) -> int:
        return self.version[1]

    @classmethod
    def load(cls, store: Store) -> Snapshot:
        """Read the store's linked records, block index and value counts (at 1M records: seconds, not minutes)."""
        started = time.perf_counter()
        version, loaded_at = store_version(store), store.scalar("SELECT now()")
        rows, numbers = _rows(store)
        at = np.full(int(numbers.max()) + 1 if len(numbers) else 1, -1, dtype=np.int64)
        at[numbers[numbers >= 0]] = np.flatnonzero(numbers >= 0)
        index = store.sql("SELECT block_key, record_no FROM block_index ORDER BY block_key", table="snapshot")
        found = index.fetchnumpy()
        keys = np.asarray(found["block_key"], dtype=np.uint64)
        key_rows = _rows_of(at, np.asarray(found["record_no"], dtype=np.int64))
        identity = rows.column("identity_id").to_numpy(zero_copy_only=False)
        rows = rows.drop_columns(["identity_id"])
        order = np.argsort(identity, kind="stable")
        cuts = np.flatnonzero(identity[order][1:] != identity[order][:-1]) + 1
        members = {str(identity[group[0]]): group for group in np.split(order, cuts) if len(group)}
        counts: dict[str, dict[str, int]] = {}
        for kind, value, n in store.rows("SELECT kind, value, n FROM value_counts", table="snapshot"):
            counts.setdefault(kind, {})[value] = int(n)
        totals = {kind: sum(found.values()) for kind, found in counts.items()}
        log.info("snapshot: %d records, %d keys in %.1f s", len(numbers), len(keys), time.perf_counter() - started)
        return cls(version, loaded_at, keys, key_rows, rows, identity, at, members, dict(counts), totals,
                   _contacts(rows), identities=len(members))  # fmt: skip

    def patched(self, store: Store, spec: ModelSpec) -> Snapshot | None:
        """This snapshot with what the incremental link runs since it was taken changed; None when a full load
        is due (a full run since, an application updated since, more than :data:`_PATCHED_RECORDS` records
        changed, or :data:`_PATCHES` patches on one load).

        The runs' new records (their rows, keys and value counts) are added, and every record whose identity
        they changed gets its new one: the same state a full load would read (``tests/test_query.py``).
        """
        started = time.perf_counter()
        version = store_version(store)
        if self.version[0] is None or self.patches >= _PATCHES:
            return None
        since = """SELECT run_id FROM runs WHERE kind = 'link' AND status = 'succeeded'
                   AND started_at > (SELECT started_at FROM runs WHERE run_id = ?)"""
        runs = [r for (r,) in store.rows(since, [self.version[0]], table="runs")]
        full = store.scalar(
            """SELECT count(*) FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))
               AND coalesce(counts->>'mode', 'full') <> 'incremental'""", [runs], table="runs")  # fmt: skip
        updated = store.scalar("SELECT count(*) FROM record_updates WHERE updated_at >= ?", [self.loaded_at])
        if not runs or full or updated:
            return None
        changed, numbers = _rows(store, runs)
        if changed.num_rows > _PATCHED_RECORDS:
            return None
        new = numbers >= len(self.at)
        if not np.all(new | (self.at[np.minimum(numbers, len(self.at) - 1)] >= 0)):
            return None  # (a record numbered before this snapshot that it did not hold)
        # the new records' rows are appended; the moved ones keep theirs, with the new identity
        start = self.rows.num_rows
        at = np.concatenate([self.at, np.full(max(0, int(numbers.max(initial=-1)) + 1 - len(self.at)), -1)])
        at[numbers[new]] = start + np.arange(int(new.sum()))
        fresh = changed.filter(pa.array(new))
        rows = pa.concat_tables([self.rows, fresh.drop_columns(["identity_id"])])
        identity = np.concatenate([self.identity, fresh.column("identity_id").to_numpy(zero_copy_only=False)])
        moved = changed.column("identity_id").to_numpy(zero_copy_only=False)
        identity[at[numbers]] = moved
        # the identities those records left or joined, with all their rows as the store holds them now
        touched = sorted({*map(str, moved), *(str(i) for i in self.identity[at[numbers[~new]]])})
        members: dict[str, np.ndarray] = {i: np.empty(0, np.int64) for i in touched}
        found = store.sql("SELECT identity_id, record_no FROM membership WHERE identity_id IN (SELECT unnest(?))",
                          [touched], table="membership").fetchnumpy()  # fmt: skip
        numbered_rows = _rows_of(at, np.asarray(found["record_no"], dtype=np.int64))
        for i, group in _groups(np.asarray(found["identity_id"], dtype=object), numbered_rows):
            members[i] = group
        # the keys of the new records, and the value counts of their values
        numbered = [int(n) for n in numbers[new]]
        index = store.sql("SELECT block_key, record_no FROM block_index WHERE record_no IN (SELECT unnest(?))",
                          [numbered], table="block_index").fetchnumpy()  # fmt: skip
        keys = np.concatenate([self.added[0], np.asarray(index["block_key"], dtype=np.uint64)])
        key_rows = np.concatenate([self.added[1], _rows_of(at, np.asarray(index["record_no"], np.int64))])
        order = np.argsort(keys, kind="stable")
        counts, totals = self._counts(store, spec, fresh)
        log.info("snapshot patched: %d records changed in %.0f ms", changed.num_rows,
                 1000 * (time.perf_counter() - started))  # fmt: skip
        contacts = _overlaid(self.contacts, _carried(store, fresh, at))
        # the touched identities that had records before, against those that have now
        had = sum(1 for i in touched if len(self.members.get(i, ())))
        identities = self.identities - had + sum(1 for group in members.values() if len(group))
        return Snapshot(version, self.loaded_at, self.keys, self.key_rows, rows, identity, at,
                        _overlaid(self.members, members), counts, totals, contacts, (keys[order], key_rows[order]),
                        self.patches + 1, identities)  # fmt: skip

    def _counts(
        self, store: Store, spec: ModelSpec, fresh: pa.Table
    ) -> tuple[dict[str, Mapping[str, int]], dict[str, int]]:
        """The value counts of the values of the ``fresh`` records, as the store holds them now, over this
        snapshot's; and every kind's total."""
        wanted = {("full_name_token", t) for names in fresh.column("full_name_tokens").to_pylist() for t in names or []}
        for row in fresh.to_pylist():
            values = model_input_row(row, lambda _: 1)
            wanted |= {(f"tf:{c}", str(values[c])) for c in spec.tf_columns() if values[c] is not None}
        table = pa.table({"kind": [k for k, _ in wanted], "value": [v for _, v in wanted]},
                         schema=pa.schema([("kind", pa.string()), ("value", pa.string())]))  # fmt: skip
        found: dict[str, dict[str, int]] = {}
        with store.registered("_wanted", table):
            for kind, value, n in store.rows(
                "SELECT kind, value, n FROM value_counts JOIN _wanted USING (kind, value)", table="value_counts"
            ):
                found.setdefault(kind, {})[value] = int(n)
        counts = {kind: _overlaid(self.counts.get(kind, {}), found.get(kind, {})) for kind in {*self.counts, *found}}
        totals = {str(k): int(n) for k, n in store.rows("SELECT kind, sum(n) FROM value_counts GROUP BY kind")}
        return counts, totals

    def indicators(self, identity_ids: Iterable[str], today: dt.date | None = None) -> dict[str, list[Indicator]]:
        """The risk indicators of the identities (:func:`linkage.risk.indicators`), reckoned from the snapshot:
        their records, and the records that carry their phones and households."""
        ids = sorted({i for i in identity_ids if i})
        records: dict[str, list[Record]] = {}
        for identity in ids:
            rows = self.members.get(identity)
            if rows is not None and len(rows):
                found = _take(self.rows.select(_RISK), rows).to_pylist()  # (select first: cheaper)
                records[identity] = sorted((_record(identity, r) for r in found), key=lambda r: r.record_id)
        carriers: dict[tuple[str, Any], set[str]] = {}
        linked: dict[str, str] = {}
        for key in {k for rs in records.values() for r in rs for k in _contact_keys(r)}:
            rows = self.contacts.get(key)
            if rows is None:
                continue  # carried by one record alone: shared with no one
            carrying = _take(self.rows.select(["record_id"]), rows).column(0).to_pylist()
            carriers[key] = set(carrying)
            linked.update(zip(carrying, self.identity[rows].tolist(), strict=True))
        return reckon(ids, records, (carriers, linked), today=today)

    def candidates(self, probes: Iterable[int]) -> np.ndarray:
        """The rows of the records whose index keys include one of ``probes``, in row order."""
        wanted = np.unique(np.fromiter(probes, dtype=np.uint64))
        if not len(wanted):
            return np.empty(0, dtype=np.int64)
        found = [_found(self.keys, self.key_rows, wanted), _found(*self.added, wanted)]
        rows = np.concatenate(found)
        return np.unique(rows[rows >= 0])


def _take(table: pa.Table, rows: Sequence[int] | np.ndarray) -> pa.Table:
    """The ``rows`` of ``table`` by position, in the order given, taken from each chunk on its own: a patched
    snapshot's rows are the loaded chunk and one per patch, and ``take`` on a table of several chunks joins
    them into one first (38 ms at 1M, for every query and registration after the first patch)."""
    wanted = np.asarray(rows, dtype=np.int64)
    lengths = [len(c) for c in table.column(0).chunks] if table.num_columns else []
    if len(lengths) <= 1 or not len(wanted):
        return table.take(pa.array(wanted, pa.int64()))
    starts = np.cumsum([0, *lengths])
    chunk = np.searchsorted(starts, wanted, side="right") - 1
    order = np.argsort(chunk, kind="stable")
    parts = [
        table.slice(int(starts[c]), lengths[c]).take(pa.array(wanted[order][chunk[order] == c] - starts[c]))
        for c in np.unique(chunk)
    ]
    return pa.concat_tables(parts).take(pa.array(np.argsort(order), pa.int64()))  # back in the order given


# A patch reads the changed records with a few statements; past these a full load is due (it also brings the
# rows back into one chunk).
_PATCHED_RECORDS: Final = 5_000
_PATCHES: Final = 200


def _rows(store: Store, runs: list[str] | None = None) -> tuple[pa.Table, np.ndarray]:
    """The normalised rows, decision reason and identity of the linked records (those that ``runs`` put in or
    moved), in record-number order; and their record numbers."""
    if runs is None:
        rows = store.arrow(_ROWS + _ORDERED, table="snapshot")
    else:
        rows = store.arrow(_SINCE + _ORDERED, {"runs": runs}, table="snapshot")
    # (a store linked before record numbers has none: such a record is no block's candidate, as in a link)
    numbers = pc.fill_null(rows.column("record_no"), -1).to_numpy()
    return rows.drop_columns(["record_no"]).combine_chunks(), numbers  # (take() on one chunk: 10x faster at 1M)


_ROWS: Final = f"""SELECT {", ".join(f"n.{quote(name)}" for name, _ in COLUMNS)}, a.decision_reason, m.identity_id,
                          m.record_no
                   FROM membership m JOIN applications_normalised n USING (record_id)
                   LEFT JOIN applications a USING (record_id)"""
# The records the runs put in or moved, found first and then looked up by record id (an index lookup: the join
# of membership with both tables read all their rows, 56 ms at 1M; 5 ms)
_SINCE: Final = f"""WITH m AS MATERIALIZED (
    SELECT record_id, identity_id, record_no FROM membership WHERE since_run IN (SELECT unnest($runs::VARCHAR[]))
)
SELECT {", ".join(f"n.{quote(name)}" for name, _ in COLUMNS)}, a.decision_reason, m.identity_id, m.record_no
FROM m JOIN (SELECT * FROM applications_normalised WHERE record_id IN (SELECT record_id FROM m)) n USING (record_id)
LEFT JOIN (SELECT record_id, decision_reason FROM applications WHERE record_id IN (SELECT record_id FROM m)) a
     USING (record_id)"""
_ORDERED: Final = " ORDER BY m.record_no"


# What the risk indicators read of a record (linkage.risk: _RECORDS, _REASONS)
_RISK: Final = ["record_id", "office", "application_date", "decision", "decision_reason", "nik", "nik_dob_agrees",
                "nik_sex_agrees", "phone", "address_village", "address_rt", "address_rw"]  # fmt: skip


def _record(identity: str, row: dict[str, Any]) -> Record:
    """A snapshot row as :mod:`linkage.risk` reads a record (``nik IS NOT NULL AND NOT agrees``, in SQL's logic)."""

    def contradicts(agrees: bool | None) -> bool | None:
        return False if row["nik"] is None else None if agrees is None else not agrees

    refused = row["decision"] in REFUSALS
    return Record(identity, row["record_id"], row["office"], row["application_date"], row["decision"],
                  row["decision_reason"] if refused else None, row["nik"], contradicts(row["nik_dob_agrees"]),
                  contradicts(row["nik_sex_agrees"]), row["phone"], row["address_village"], row["address_rt"],
                  row["address_rw"])  # fmt: skip


def _contact_keys(record: Record) -> list[tuple[str, Any]]:
    household = record.household
    return [*([("phone", record.phone)] if record.phone is not None else []),
            *([("household", household)] if household is not None else [])]  # fmt: skip


def _contacts(rows: pa.Table) -> dict[tuple[str, Any], np.ndarray]:
    """The rows that carry each phone and each household (village, RT and RW all known) that two rows or more
    carry: a contact of one record alone is shared with no one."""
    import pandas as pd

    frame = rows.select(["phone", "address_village", "address_rt", "address_rw"]).to_pandas()
    whole = frame[["address_village", "address_rt", "address_rw"]].notna().all(axis=1)
    household = (frame["address_village"] + "\x1f" + frame["address_rt"] + "\x1f" + frame["address_rw"]).where(whole)
    found: dict[tuple[str, Any], np.ndarray] = {}
    for kind, values in (("phone", frame["phone"]), ("household", household)):
        codes, uniques = pd.factorize(values)
        order = np.argsort(codes, kind="stable")
        ordered = codes[order]
        cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        for group in np.split(order, cuts):
            if len(group) >= 2 and codes[group[0]] >= 0:
                value = uniques[codes[group[0]]]
                found[(kind, tuple(value.split("\x1f")) if kind == "household" else value)] = np.sort(group)
    return found


def _carried(store: Store, fresh: pa.Table, at: np.ndarray) -> dict[tuple[str, Any], np.ndarray]:
    """The rows (by ``at``) of every linked record that carries a phone or household of the ``fresh`` records, as
    :func:`_contacts` keys them: what a patch lays over the snapshot's contacts."""
    wanted = {k for r in fresh.select(_RISK).to_pylist() for k in _contact_keys(_record("", r))}
    phones = sorted(v for kind, v in wanted if kind == "phone")
    households = {v for kind, v in wanted if kind == "household"}
    numbers: dict[tuple[str, Any], list[int]] = {}
    if phones:
        for number, phone in store.rows(_BY_PHONE, [phones], table="snapshot"):
            numbers.setdefault(("phone", phone), []).append(number)
    if households:
        lists = [sorted({h[i] for h in households}) for i in range(3)]
        for number, *household in store.rows(_BY_HOUSEHOLD, lists, table="snapshot"):
            if tuple(household) in households:
                numbers.setdefault(("household", tuple(household)), []).append(number)
    return {key: np.sort(_rows_of(at, np.asarray(found, dtype=np.int64))) for key, found in numbers.items()
            if len(found) >= 2}  # fmt: skip


_BY_PHONE: Final = """SELECT m.record_no, n.phone FROM applications_normalised n JOIN membership m USING (record_id)
                      WHERE n.phone IN (SELECT unnest(?::VARCHAR[]))"""
_BY_HOUSEHOLD: Final = """
    SELECT m.record_no, n.address_village, n.address_rt, n.address_rw
    FROM applications_normalised n JOIN membership m USING (record_id)
    WHERE n.address_village IN (SELECT unnest(?::VARCHAR[])) AND n.address_rt IN (SELECT unnest(?::VARCHAR[]))
      AND n.address_rw IN (SELECT unnest(?::VARCHAR[]))"""


def _overlaid(base: Mapping[_K, _V], changed: Mapping[_K, _V]) -> Mapping[_K, _V]:
    """``base`` with ``changed`` over it, without copying ``base`` (a loaded snapshot's dictionaries hold a
    million entries): one small dictionary of all the patches' changes over the loaded one."""
    if not changed:
        return base
    if isinstance(base, ChainMap):
        return ChainMap({**base.maps[0], **changed}, base.maps[-1])
    return ChainMap(dict(changed), cast(MutableMapping[_K, _V], base))


def _rows_of(at: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """The rows of record ``numbers`` (-1 for a number no row has: a record no longer linked)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    known = (numbers >= 0) & (numbers < len(at))
    return np.where(known, at[np.where(known, numbers, 0)], -1)


def _groups(identities: np.ndarray, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """``rows`` grouped by their identity, each group in row order."""
    order = np.lexsort((rows, identities))
    cuts = np.flatnonzero(identities[order][1:] != identities[order][:-1]) + 1
    for group in np.split(order, cuts):
        if len(group):
            yield str(identities[group[0]]), np.sort(rows[group])


def _found(keys: np.ndarray, rows: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The rows aligned with the sorted ``keys`` of the keys in ``wanted``."""
    if not len(keys):
        return np.empty(0, dtype=np.int64)
    low, high = np.searchsorted(keys, wanted, "left"), np.searchsorted(keys, wanted, "right")
    return np.concatenate([rows[a:b] for a, b in zip(low, high, strict=True)] or [np.empty(0, np.int64)])


@dataclass(frozen=True)
class State:
    """What a query reads of the store, swapped whole (:meth:`Scorer.refresh`): never a new model with an
    old snapshot, or a new snapshot with an old threshold."""

    snapshot: Snapshot
    model_id: str
    prior: float
    """λ as a link of one more application would set it (:func:`linkage.model.applied_prior`)"""
    floor: float
    threshold: float
    scoring_sql: str | None
    """:func:`_scoring` of the store's model, at :attr:`prior`: Splink's SQL (None: made when first needed, for a
    query the compiled model cannot score)"""
    compiled: Compiled | None
    """the same model as Python (:mod:`linkage.compiled`), None where the evaluator cannot compile it"""


@dataclass(frozen=True)
class Prescored:
    """One stored application that no run has linked yet, scored by the warm scorer as a link of it would score
    it: what the prepare, model and score stages of that link would leave for its cluster and publish stages
    (:func:`linkage.engine.run_link` takes it when it still holds: :meth:`fits`)."""

    record_id: str
    model_id: str
    version: tuple[str | None, int]
    """the snapshot it was scored against"""
    records: int
    """the records λ was scaled to: the snapshot's and this one"""
    floor: float
    pairs: pa.Table
    """the pairs at or above ``floor`` with the record, as ``scored_pairs`` holds them"""
    index_keys: list[int]
    """the record's keys in the block index (:meth:`linkage.block.KeyMaker.index_keys`)"""
    counts: pa.Table
    """the record's own ``kind, value, n`` (:func:`linkage.prepare.value_counts_sql`)"""
    identities: int
    """the store's identities at :attr:`version` (:attr:`Snapshot.identities`)"""


def store_version(store: Store) -> tuple[str | None, int]:
    """The store's state as a snapshot records it: the latest succeeded link run, and the records linked."""
    latest = store.rows(
        "SELECT run_id FROM runs WHERE kind = 'link' AND status = 'succeeded' ORDER BY started_at DESC LIMIT 1",
        table="runs",
    )
    return (latest[0][0] if latest else None), int(store.scalar("SELECT count(*) FROM membership", table="membership"))


class Scorer:
    """A store's model and snapshot kept warm: :meth:`score` one normalised applicant against the store.

    Build it on an open, writable store (Splink's macros are created in it once); score on any cursor of
    that store's database (``Store.on(store.con.cursor())``), from any thread.
    """

    def __init__(self, store: Store, spec: ModelSpec, *, compiling: bool = True) -> None:
        """Load the stored model and the store's snapshot, and generate the scoring SQL.

        With ``compiling`` (the default), the model is also compiled to Python (:mod:`linkage.compiled`)
        and a query is scored without a statement per record; without it, or where the evaluator cannot
        compile the spec, with Splink's SQL (tens of milliseconds more).

        Raises:
            InputError: the store has no model yet (no link has run).
        """
        self.spec = spec
        probe_keys = block.lookup_keys(spec.blocking)[1]
        keyed = block.block_keys(spec.blocking)
        # The query's SQL, made once (a spec's rules are parsed to build it: 70 ms a query when rebuilt)
        self._query_sql = f"""SELECT *, {probe_keys} AS probe_keys
            FROM (SELECT *, {keyed} AS block_keys FROM ({model_input_sql("_query_rows", "_query_counts")}))"""
        self._subset_sql = f"""SELECT *, {keyed} AS block_keys, record_id = $q AS is_new
            FROM ({model_input_sql("_subset_rows", "_subset_counts")})"""
        self._lock = threading.Lock()
        store.sql(MACROS, table="macros")  # the comparisons' macros, in the store itself: once, not per query
        self._types = {
            str(name): str(kind)
            for name, kind, *_ in store.rows(f"DESCRIBE SELECT * FROM ({model_input_sql('applications_normalised')})")
        }
        try:
            self._keys: block.KeyMaker | None = block.KeyMaker.of(spec.blocking, self._types)
        except ValueError as exc:  # a blocking column of a type hashed only by DuckDB: scored with SQL
            log.info("the model is scored with SQL: %s", exc)
            self._keys = None
        self.compiling = compiling and self._keys is not None
        self.state = self._load(store)

    def _load(self, store: Store) -> State:
        """The store's current model, cuts and snapshot, and the scoring SQL of that model.

        Raises:
            InputError: the store has no model yet (no link has run), or one without Splink's parameters.
        """
        artefact = _artefact(store)
        model_id = str(store.scalar("SELECT model_id FROM models ORDER BY created_at DESC, model_id LIMIT 1"))
        floor, threshold = run_cuts(store)
        snapshot = Snapshot.load(store)
        prior = model.applied_prior(artefact, snapshot.records + 1)
        scoring_sql, compiled = _scoring(store, self.spec, artefact, prior, self._types if self.compiling else None)
        return State(snapshot, model_id, prior, floor, threshold, scoring_sql, compiled)

    def _patched(self, store: Store, state: State) -> State | None:
        """``state`` with its snapshot patched with the link runs since (:meth:`Snapshot.patched`) and its compiled
        model given the new λ; None where only a full load will do (another model, no compiled one)."""
        model_id = str(store.scalar("SELECT model_id FROM models ORDER BY created_at DESC, model_id LIMIT 1"))
        if state.compiled is None or model_id != state.model_id:
            return None
        patched = state.snapshot.patched(store, self.spec)
        if patched is None:
            return None
        prior = model.applied_prior(_artefact(store), patched.records + 1)
        # (λ follows the records: the compiled model takes it at once, Splink's SQL is made when first needed)
        return State(patched, model_id, prior, *run_cuts(store), None, state.compiled.with_prior(prior))

    def stale(self, store: Store) -> bool:
        """Whether a link has changed the store since the snapshot was taken."""
        return store_version(store) != self.state.snapshot.version

    def refresh(self, store: Store) -> bool:
        """Bring the state up to the store when a link has changed it (patched where it can be, else loaded
        anew), and swap it in whole. Return whether it changed."""
        with self._lock:
            if not self.stale(store):
                return False
            self.state = self._patched(store, self.state) or self._load(store)
            return True

    def patch(self, store: Store) -> bool:
        """Bring the state up to the store only where a patch does it (milliseconds: a registration's run).
        Return whether the state is now the store's; when not, :meth:`refresh` loads it (seconds at 1M)."""
        with self._lock:
            if not self.stale(store):
                return True
            patched = self._patched(store, self.state)
            if patched is not None:
                self.state = patched
            return patched is not None

    def score(
        self, cursor: Store, row: dict[str, Any], state: State
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Score the normalised ``row`` (:data:`linkage.normalise.COLUMNS`, record id :data:`QUERY_RECORD_ID`)
        against ``state`` (the :attr:`state` the query read once).

        Returns:
            The pairs at or above the review floor, best first, each as ``scored_pairs`` holds it (levels
            ``gamma_*``, weights ``mw_*``/``mw_tf_adj_*``, ``vetoed``, ``model_match_weight``) with the stored
            record as ``record_id`` and its ``identity_id``; and the model-input row of each record in them.
        """
        if state.compiled is not None:
            try:
                return self._score_compiled(row, state, state.compiled)
            except Unsupported as exc:  # a value DuckDB would cast where Python cannot tell how: Splink's SQL
                log.warning("a query scored with SQL, not compiled: %s", type(exc).__name__)
        snap, spec = state.snapshot, self.spec
        own_tokens = Counter(row.get("full_name_tokens") or [])
        query = arrow_table({k: [v] for k, v in row.items()}, COLUMNS)
        counts = _name_counts(snap, own_tokens, own_tokens)
        with _registered(cursor, [("_query_rows", query), ("_query_counts", counts)]):
            mine = cursor.arrow(self._query_sql, table="query")
        probes = [k for k in mine.column("probe_keys")[0].as_py() or [] if k is not None]
        rows = snap.candidates(probes)
        stored = _take(snap.rows, rows)
        subset = pa.concat_tables([query, stored.select([name for name, _ in COLUMNS])])
        tokens = {t for names in subset.column("full_name_tokens").to_pylist() for t in names or []}
        own_values = {c: mine.column(c)[0].as_py() for c in spec.tf_columns()}
        registered = [("_subset_rows", subset), ("_subset_counts", _name_counts(snap, tokens, own_tokens))]
        with _registered(cursor, registered):
            inputs = cursor.arrow(self._subset_sql, {"q": QUERY_RECORD_ID}, table="query")
        tf = [(f"__splink__df_tf_{c}", _tf_table(snap, c, inputs.column(c).to_pylist(), own_values[c]))
              for c in spec.tf_columns()]  # fmt: skip
        with _registered(cursor, [("_model_input", inputs), *tf]):
            if state.scoring_sql is None:  # (a patched state: made once, kept while the state is current)
                made = dataclasses.replace(state, scoring_sql=self._scoring_sql(cursor, state))
                with self._lock:
                    if self.state is state:
                        self.state = made
                state = made
            assert state.scoring_sql is not None
            bound = {"floor": float(state.floor), "cap": spec.veto_cap()}
            scored = cursor.arrow(state.scoring_sql, bound, table="query")
        identities = dict(zip(stored.column("record_id").to_pylist(), snap.identity[rows].tolist(), strict=True))
        pairs = []
        for pair in scored.to_pylist():
            other = pair["record_id_r"] if pair["record_id_l"] == QUERY_RECORD_ID else pair["record_id_l"]
            pairs.append({"record_id": other, **pair, "identity_id": identities.get(other)})
        pairs.sort(key=lambda p: (-p["match_probability"], -p["match_weight"], p["record_id"]))
        shown = {QUERY_RECORD_ID, *(p["record_id"] for p in pairs)}
        values = {r["record_id"]: r for r in inputs.to_pylist() if r["record_id"] in shown}
        log.debug("warm query: %d candidates, %d pairs", len(rows), len(pairs))
        return pairs, values

    def _score_compiled(
        self, row: dict[str, Any], state: State, compiled: Compiled
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """:meth:`score` in Python, without a statement: the model input of the applicant and its candidates
        (:func:`linkage.prepare.model_input_row`), its blocking keys (:class:`linkage.block.KeyMaker`: DuckDB's
        hashes, as the block index holds them), the pairs a blocking rule makes, and each scored by the
        compiled model."""
        snap = state.snapshot
        stored_tokens = snap.counts.get("full_name_token", {})
        own_tokens = Counter(row.get("full_name_tokens") or [])

        def counted(token: str) -> int:  # over the store and the applicant, as a link counts them
            return stored_tokens.get(token, 0) + own_tokens[token]

        assert self._keys is not None  # (compiled only with a key maker)
        mine = self._model_input(row, counted)
        keyed, as_left, as_right = self._keys.keys(mine)
        either = set(snap.candidates(keyed).tolist())
        left = set(snap.candidates(as_left).tolist())
        right = set(snap.candidates(as_right).tolist())
        rows = sorted(either | left | right)
        stored = _take(snap.rows, rows).to_pylist()
        tf_columns = self.spec.tf_columns()
        own_values = {c: mine[c] for c in tf_columns}

        def shares(record: dict[str, Any]) -> dict[str, float | None]:
            return {c: _tf_share(snap, c, record[c], own_values[c]) for c in tf_columns}

        tf_mine = shares(mine)
        me = row["record_id"]  # QUERY_RECORD_ID for an officer's query; an application's own for a registration
        pairs, values = [], {me: mine}
        for at, record in zip(rows, stored, strict=True):
            other = record["record_id"]
            first = other > me  # the lower unique_id, numbered in record-id order: Splink's l
            if not (at in either or (at in left and first) or (at in right and not first)):
                continue  # a rule l.x = r.y that holds only with the two the other way round
            theirs = self._model_input(record, counted)
            lower, upper = (mine, theirs) if first else (theirs, mine)
            tf_lower, tf_upper = (tf_mine, shares(theirs)) if first else (shares(theirs), tf_mine)
            scored = compiled.score(lower, upper, tf_lower, tf_upper)
            if scored["match_probability"] < state.floor:
                continue
            pairs.append({"record_id": other, "record_id_l": lower["record_id"], "record_id_r": upper["record_id"],
                          **scored, "identity_id": snap.identity[at]})  # fmt: skip
            values[other] = theirs
        pairs.sort(key=lambda p: (-p["match_probability"], -p["match_weight"], p["record_id"]))
        log.debug("warm query: %d candidates, %d pairs", len(rows), len(pairs))
        return pairs, values

    def prescore(self, row: dict[str, Any], state: State) -> Prescored | None:
        """Score a stored application that no run has linked yet (its normalised ``row``) as the link of it alone
        would; None where the model is not compiled (the link then scores it itself)."""
        if state.compiled is None or self._keys is None:
            return None
        try:
            pairs, values = self._score_compiled(row, state, state.compiled)
        except Unsupported:
            return None
        mine = values[row["record_id"]]
        names = [f"{kind}_{c.name}" for c in self.spec.comparison for kind in ("gamma", "mw", "mw_tf_adj")]
        columns = ["record_id_l", "record_id_r", "match_probability", "match_weight", "model_match_weight", "vetoed",
                   *(n for n in names if not pairs or n in pairs[0])]  # fmt: skip
        table = pa.Table.from_pylist([{c: p.get(c) for c in columns} for p in pairs], schema=_pairs_schema(columns))
        tokens = Counter(row["full_name_tokens"] or [])
        counted = [("full_name_token", t, n) for t, n in tokens.items()]
        counted += [(f"tf:{c}", str(mine[c]), 1) for c in self.spec.tf_columns() if mine[c] is not None]
        counts = pa.table({"kind": [k for k, _, _ in counted], "value": [v for _, v, _ in counted],
                           "n": [n for _, _, n in counted]}, schema=_COUNTS)  # fmt: skip
        snap = state.snapshot
        return Prescored(row["record_id"], state.model_id, snap.version, snap.records + 1, state.floor, table,
                         self._keys.index_keys(mine), counts, snap.identities)  # fmt: skip

    def _scoring_sql(self, store: Store, state: State) -> str:
        """Splink's scoring SQL of the state's model and λ, made on the first query that needs it."""
        artefact = _artefact(store)
        if artefact.get("model_id") != state.model_id:
            raise InputError("the store's model changed meanwhile: query again")
        return _scoring(store, self.spec, artefact, state.prior, None)[0]

    def _model_input(self, row: dict[str, Any], counted: Callable[[str], int]) -> dict[str, Any]:
        """:func:`linkage.prepare.model_input_row` with the hashed columns (DuckDB's hash, in Python)."""
        found = model_input_row(row, counted)
        for c in HASHED:
            found[f"{c}_hash"] = None if found[c] is None else block.duckdb_hash((found[c], self._types[c]))
        return found

    @staticmethod
    def applications(candidates: list[dict[str, Any]], state: State, today: dt.date | None = None) -> None:
        """Give each candidate its identity's applications across offices, in time order (undated last, then by
        record id, as :func:`linkage.history.history` orders them), refusals marked ``refused``, and its risk
        indicators as of ``today`` (:meth:`Snapshot.indicators`)."""
        snap = state.snapshot
        risks = snap.indicators((c["identity_id"] for c in candidates), today)
        for candidate in candidates:
            candidate["indicators"] = [dataclasses.asdict(i) for i in risks.get(candidate["identity_id"] or "", [])]
        wanted = ["record_id", "office", "application_date", "decision", "decision_reason"]
        for candidate in candidates:
            rows = snap.members.get(candidate["identity_id"] or "")
            found = _take(snap.rows.select(wanted), rows).to_pylist() if rows is not None else []
            found.sort(key=lambda a: (a["application_date"] is None, a["application_date"] or 0, a["record_id"]))
            candidate["applications"] = [
                {**a, "application_date": a["application_date"].isoformat() if a["application_date"] else None,
                 "refused": a["decision"] in REFUSALS}
                for a in found
            ]  # fmt: skip


def _pairs_schema(columns: list[str]) -> pa.Schema:
    """The types of ``scored_pairs`` as a link writes them (:func:`linkage.score._vetoed`)."""
    kinds = {"record_id_l": pa.string(), "record_id_r": pa.string(), "vetoed": pa.bool_()}
    return pa.schema([(c, kinds.get(c, pa.int32() if c.startswith("gamma_") else pa.float64())) for c in columns])


def _artefact(store: Store) -> dict[str, Any]:
    """The store's model with Splink's parameters.

    Raises:
        InputError: the store has no model yet (no link has run), or one without Splink's parameters.
    """
    artefact = model.stored_artefact(store)
    if artefact is None:
        raise InputError("the store has no model yet: run `linkage link --db PATH` first")
    if "splink" not in artefact:
        raise InputError("the store's model holds no Splink parameters: run `linkage link --db PATH --full`")
    return artefact


@contextmanager
def _registered(cursor: Store, tables: list[tuple[str, pa.Table]]) -> Iterator[None]:
    """Arrow tables readable by name on ``cursor`` for one block (:meth:`linkage.store.Store.registered`)."""
    with ExitStack() as stack:
        for name, table in tables:
            stack.enter_context(cursor.registered(name, table))
        yield


def _name_counts(snap: Snapshot, tokens: Iterable[str], own: Counter[str]) -> pa.Table:
    """``kind, value, n`` of name tokens: the store's count with the applicant's own counted in
    (:func:`linkage.prepare._counts`)."""
    stored = snap.counts.get("full_name_token", {})
    found = [(t, stored.get(t, 0) + own.get(t, 0)) for t in tokens]
    found = [(t, n) for t, n in found if n]
    return pa.table(
        {"kind": ["full_name_token"] * len(found), "value": [t for t, _ in found], "n": [n for _, n in found]},
        schema=_COUNTS,
    )


def _tf_table(snap: Snapshot, column: str, values: list[Any], own: Any) -> pa.Table:
    """A term-frequency lookup of ``column`` for ``values`` (:func:`_tf_share`), as a table Splink's SQL joins."""
    shares = {str(v): _tf_share(snap, column, v, own) for v in values if v is not None}
    found = {v: share for v, share in shares.items() if share is not None}
    return pa.table({column: list(found), f"tf_{column}": list(found.values())},
                    schema=pa.schema([(column, pa.string()), (f"tf_{column}", pa.float64())]))  # fmt: skip


def _tf_share(snap: Snapshot, column: str, value: Any, own: Any) -> float | None:
    """The share of records holding ``value`` in ``column``, counted over the store and the applicant (``own``,
    its value), as :func:`linkage.model.for_store` registers it; None for a value no record holds."""
    if value is None:
        return None
    kind, text = f"tf:{column}", str(value)
    n = snap.counts.get(kind, {}).get(text, 0) + (own is not None and text == str(own))
    return n / float(snap.totals.get(kind, 0) + (own is not None)) if n else None


def _scoring(
    store: Store, spec: ModelSpec, artefact: dict[str, Any], prior: float, columns: dict[str, str] | None
) -> tuple[str, Compiled | None]:
    """The stored model at ``prior`` as Splink's scoring SQL (:func:`_scoring_sql`) and, with the model input's
    ``columns``, compiled to Python (None where :mod:`linkage.evaluator` cannot compile it)."""
    # Splink builds its SQL from a linker on a table of the model input's shape: an empty one
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE model_input AS
            SELECT *, {block.block_keys(spec.blocking)} AS block_keys, false AS is_new
            FROM ({model_input_sql("applications_normalised")}) LIMIT 0""",
        table="model_input",
    )
    try:
        linker = model.from_artefact(store, artefact, spec, prior=prior)
        sql = _scoring_sql(linker, spec)
        compiled = None
        if columns is not None:
            try:
                compiled = Compiled.of(linker._settings_obj, spec, columns)
            except Unsupported as exc:  # a spec's own function: scored with Splink's SQL, slower but the same
                log.info("the model is scored with SQL, not compiled: %s", exc)
    finally:
        store.sql("DROP TABLE IF EXISTS temp.model_input", table="model_input")
    return sql, compiled


def _scoring_sql(linker: Any, spec: ModelSpec) -> str:
    """The SQL that scores ``_model_input`` as
    :func:`linkage.score.predict_new` would: Splink's own comparison-vector and prediction SQL, generated once
    from the stored model, over the pairs of the applicant (``is_new``) that a blocking rule makes, the veto
    applied and the pairs below ``$floor`` left out (bound: ``$floor``, ``$cap``)."""
    from splink.internals.comparison_vector_values import compute_comparison_vector_values_from_id_pairs_sqls
    from splink.internals.predict import predict_from_comparison_vectors_sqls_using_settings
    from splink.internals.term_frequencies import _join_tf_to_input_table_sql

    settings = linker._settings_obj
    steps = [
        {"sql": "SELECT * FROM _model_input", "output_table_name": "__splink__input"},
        {"sql": _join_tf_to_input_table_sql(linker, "__splink__input"),
         "output_table_name": "__splink__df_concat_with_tf"},
        {"sql": _blocked_pairs_sql(spec), "output_table_name": "__splink__blocked_id_pairs"},
        *compute_comparison_vector_values_from_id_pairs_sqls(
            settings._columns_to_select_for_blocking,
            settings._columns_to_select_for_comparison_vector_values,
            input_tablename_l="__splink__df_concat_with_tf",
            input_tablename_r="__splink__df_concat_with_tf",
            source_dataset_input_column=settings.column_info_settings.source_dataset_input_column,
            unique_id_input_column=settings.column_info_settings.unique_id_input_column,
        ),
        *predict_from_comparison_vectors_sqls_using_settings(settings),
    ]  # fmt: skip
    ctes = ",\n".join(f"{quote(s['output_table_name'])} AS ({s['sql']})" for s in steps)
    veto = f"({spec.veto.sql})" if spec.veto else "FALSE"  # a spec fragment, parsed and checked (linkage.spec)
    sql = f"""
        WITH {ctes},
        adjusted AS (
            SELECT *, {veto} AS vetoed,
                   CASE WHEN {veto} THEN least(match_weight, $cap) ELSE match_weight END AS adjusted_weight
            FROM __splink__df_predict
        )
        SELECT l.record_id AS record_id_l, r.record_id AS record_id_r,
               1 / (1 + pow(2, -adjusted_weight)) AS match_probability,
               adjusted_weight AS match_weight, match_weight AS model_match_weight, adjusted.* EXCLUDE
               (match_weight, match_probability, adjusted_weight, unique_id_l, unique_id_r)
        FROM adjusted
        JOIN _model_input AS l ON l.unique_id = adjusted.unique_id_l
        JOIN _model_input AS r ON r.unique_id = adjusted.unique_id_r
        WHERE 1 / (1 + pow(2, -adjusted_weight)) >= $floor"""
    return sql


def _blocked_pairs_sql(spec: ModelSpec) -> str:
    """The pairs with the applicant that Splink's blocking would make: a plain rule holds, or the two
    records share a blocking key (the keyed rules' one exploding join, :func:`linkage.block.blocking_rules`)."""
    conditions = []
    for rule in block.blocking_rules(spec):
        if isinstance(rule, dict):
            conditions.append("len(list_intersect(l.block_keys, r.block_keys)) > 0")
        else:
            conditions.append(f"({rule})")
    held = " OR ".join(conditions) or "FALSE"
    return f"""SELECT '0' AS match_key, l.unique_id AS join_key_l, r.unique_id AS join_key_r
               FROM __splink__input AS l JOIN __splink__input AS r
               ON l.unique_id < r.unique_id AND (l.is_new OR r.is_new) AND ({held})"""


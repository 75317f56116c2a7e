"""The only gateway to DuckDB: schema and its version, table names, logged SQL, runs, writes.

The tables are declared in :mod:`linkage.tables`.
A run's writes happen in one transaction: they become visible together, or not at all.
An ingest into a store that holds applications writes its records to TEMP tables ``staged_<table>``
first (``STAGED``), then :meth:`Store.merge_staged` compares them with the stored ones by record_id:
new ones are added, changed ones replace the stored rows (the previous row kept in ``record_updates``),
identical ones are dropped, so ingesting a file again adds nothing.
SQL is logged at DEBUG level (text only, never values: those are personal data).

**Opening.** Only ``linkage ingest`` makes a store (``create=True``; dedupe and train make their working
store inside their output folder through it): every other command refuses a missing file and says how to
make one, so a mistyped ``--db`` creates nothing. DuckDB lets one process at a time open a file read-write
(and none read-only while it does). A writer announces itself in a sidecar file ``<db>.writer``
(``pid``, ``command``, ``started_at``), removed when it closes; a reader that finds the file locked says
which command, process and since when (a sidecar whose process is gone is ignored), instead of DuckDB's
lock error. Because that lock is held by every read-write open, a run still ``running`` when a command
opens the store read-write was killed: ingest, link and decide mark such runs ``interrupted``
(:meth:`Store.mark_interrupted`) and report them.

**Serving officers during a link (a design note, not built).** DuckDB's single-writer rule means the
coming officer service cannot read the store while a link writes it, for minutes. So it should never open
the working store: at the end of each successful run (the publish step, after its checks) the writer copies
the tables officers read (membership, identities, pairs, block_index, models, decisions, events,
applications_normalised) into a new file ``<db>.serve-<run_id>`` and atomically repoints ``<db>.serve``
at it. The service reads that snapshot read-only, reopening when the pointer moves: it answers throughout
a run, always from one whole run. Officers' decisions, its only writes, go to a file of its own that the
next ``link`` takes in, so the service never waits for the writer's lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import duckdb
import pandas as pd
import pyarrow as pa

from linkage import __version__
from linkage.config import DEFAULT_MEMORY_LIMIT
from linkage.errors import StoreError
from linkage.tables import COMPARED, INDEXES, MIGRATIONS, SCHEMA_VERSION, STAGED

__all__ = ["Merged", "Store", "name_process", "quote"]

log = logging.getLogger(__name__)

Params = Sequence[Any] | Mapping[str, Any] | None
"""A statement's values: positional (``?``) or named (``$name``); bound, never formatted into its text."""

def quote(identifier: str) -> str:
    """An identifier (a table or column name) quoted for DuckDB: the one way a name enters SQL text.

    Values never enter SQL text at all: they are bound parameters (:meth:`Store.sql`).

    >>> quote("record_id"), quote('we"ird')
    ('"record_id"', '"we""ird"')
    """
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Merged:
    """How the staged records of an ingest compared with the stored ones."""

    new: int
    updated: int
    unchanged: int


class Store:
    """A DuckDB store, opened for one process. Use as a context manager.

    >>> with Store(":memory:") as store:
    ...     store.count("applications")
    0
    """

    def __init__(
        self,
        path: Path | str,
        *,
        read_only: bool = False,
        create: bool = False,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        temp_directory: Path | None = None,
    ) -> None:
        """Open the store at ``path`` (``":memory:"`` for a scratch one).

        Args:
            path: the DuckDB file.
            read_only: open for reading only (any number of readers, but none while a writer has it).
            create: make the file when it does not exist (``linkage ingest`` only).
            memory_limit: DuckDB's memory limit.
            temp_directory: where DuckDB spills what does not fit under ``memory_limit`` (default: its own,
                ``<store>.tmp`` beside the file).

        Raises:
            StoreError: no file at ``path`` (and not ``create``), the file is being written by another
                process, or it cannot be opened or migrated.
        """
        self.path = str(path)
        self._writer: tuple[Path, dict[str, Any]] | None = None  # the sidecar and what it says
        on_disk = self.path != ":memory:"
        if on_disk and (read_only or not create) and not Path(self.path).exists():
            raise StoreError(f"no store at {self.path}: run `linkage ingest FILE --db {self.path}` first")
        if on_disk and not read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            options: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
            if temp_directory is not None:
                options["temp_directory"] = str(temp_directory)
            self.con = duckdb.connect(self.path, read_only=read_only, config=options)
            # no progress bar: DuckDB draws it on stdout, inside the JSON of `--json` (a 1M ingest's publish)
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.Error as exc:
            raise StoreError(_open_failure(self.path, exc)) from None
        if on_disk and not read_only:
            self._writer = _announce(self.path)
        try:
            self._migrate(read_only)
        except BaseException:
            self.close()
            raise

    @classmethod
    def on(cls, con: duckdb.DuckDBPyConnection) -> Store:
        """A store over a connection opened elsewhere (benchmarks and tests that attach stores themselves).

        Nothing is migrated and closing the store closes the connection.
        """
        store = cls.__new__(cls)
        store.path = ":memory:"
        store.con = con
        store._writer = None
        return store

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        if self._writer is not None:
            _withdraw(self._writer)
            self._writer = None

    def sql(self, sql: str, params: Params = None, *, table: str = "") -> duckdb.DuckDBPyConnection:
        """Run one statement; logged at DEBUG without its values; errors name the table being built."""
        if log.isEnabledFor(logging.DEBUG):  # (the warm scorer's SQL is long: not joined on every query)
            log.debug("sql [%s]: %s", table or "-", " ".join(sql.split()))
        try:
            return self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        except duckdb.Error as exc:
            raise StoreError(f"store error while writing {table or 'the store'}: {exc}") from None

    def rows(self, sql: str, params: Params = None, *, table: str = "") -> list[tuple[Any, ...]]:
        """All rows of one statement (values bound, as for :meth:`sql`)."""
        return self.sql(sql, params, table=table).fetchall()

    def scalar(self, sql: str, params: Params = None, *, table: str = "") -> Any:
        """The first column of the first row of one statement (``None`` when it returns no row)."""
        found = self.sql(sql, params, table=table).fetchall()  # fetched to the end: DuckDB 2 wants no open result
        return found[0][0] if found else None

    def df(self, sql: str, params: Params = None, *, table: str = "") -> pd.DataFrame:
        """The rows of one statement as a pandas DataFrame."""
        result: pd.DataFrame = self.sql(sql, params, table=table).df()
        return result

    def arrow(self, sql: str, params: Params = None, *, table: str = "") -> pa.Table:
        """The rows of one query as an Arrow table (through a relation: no extra copy of the rows)."""
        if log.isEnabledFor(logging.DEBUG):  # (the warm scorer's SQL is long: not joined on every query)
            log.debug("sql [%s]: %s", table or "-", " ".join(sql.split()))
        try:
            result: pa.Table = self.con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"store error while reading {table or 'the store'}: {exc}") from None
        return result

    def columns(self, table: str) -> list[str]:
        """The column names of a table (or view, or TEMP table), in order."""
        return [name for (name,) in self.rows(f"SELECT column_name FROM (DESCRIBE {quote(table)})", table=table)]

    @contextmanager
    def registered(self, name: str, data: Any) -> Iterator[str]:
        """Make a pandas DataFrame or Arrow table readable as the view ``name`` for the block; yield the name."""
        self.con.register(name, data)
        try:
            yield name
        finally:
            self.con.unregister(name)

    def _migrate(self, read_only: bool) -> None:
        found = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchall()[0][0]
        version = self.con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] if found else 0
        version = version or 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this linkage ({SCHEMA_VERSION}): upgrade linkage"
            )
        if version == SCHEMA_VERSION:
            return
        if read_only:
            raise StoreError(f"{self.path} has schema version {version}; open it once read-write to migrate")
        # DuckDB refuses some ALTERs of a table that has an index (dropping a column): made again after them
        with self.transaction(), self.unindexed(*{table for _, table, _ in INDEXES}):
            self.sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
            for target in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[target]:
                    self.sql(statement, table="schema")
                self.sql("INSERT INTO schema_version VALUES (?, ?)", [target + 1, _now()], table="schema_version")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside become visible together on success, and none of them on an exception."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # --- runs ------------------------------------------------------------------------------------

    def begin_run(self, kind: str, inputs: Sequence[str], config_hash: str) -> str:
        """Record the start of a run (in its own transaction) and return its id."""
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.sql(
            "INSERT INTO runs VALUES (?, ?, 'running', ?, NULL, ?, ?, ?, NULL)",
            [run_id, kind, _now(), json.dumps(list(inputs)), config_hash, __version__],
            table="runs",
        )
        return run_id

    def finish_run(self, run_id: str, status: str, counts: dict[str, Any]) -> None:
        self.sql(
            "UPDATE runs SET status = ?, finished_at = ?, counts = ? WHERE run_id = ?",
            [status, _now(), json.dumps(counts, default=str), run_id],
            table="runs",
        )

    def mark_interrupted(self, *, keep: Sequence[str] = ()) -> list[dict[str, str]]:
        """Mark the runs left ``running`` as ``interrupted`` and return them (``run_id, kind, started_at``).

        Call it with the store open read-write by a command, before its own run begins: DuckDB lets one
        process write a file at a time, so no other process can be running them; they were killed. ``keep``:
        runs of this process that are still going (a dedupe run around the link run it starts).
        """
        rows = self.rows(
            """SELECT run_id, kind, started_at FROM runs
               WHERE status = 'running' AND NOT list_contains(?::VARCHAR[], run_id) ORDER BY started_at, run_id""",
            [list(keep)],
        )
        if rows:
            self.sql(
                "UPDATE runs SET status = 'interrupted' WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                [[run_id for run_id, _, _ in rows]],
                table="runs",
            )
            log.warning("%d runs left running were interrupted; marked interrupted", len(rows))
        return [
            {"run_id": run_id, "kind": kind, "started_at": started.astimezone(UTC).isoformat(timespec="seconds")}
            for run_id, kind, started in rows
        ]

    # --- writes ----------------------------------------------------------------------------------

    def insert(self, table: str, data: pa.Table) -> None:
        """Append the rows of an Arrow table (built with :func:`arrow_table`) to ``table``."""
        if data.num_rows == 0:
            return
        self.con.register("_incoming", data)
        try:
            # by name: a migrated store has its added columns last, wherever they are declared
            self.sql(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming", table=table)
        finally:
            self.con.unregister("_incoming")

    @contextmanager
    def unindexed(self, *tables: str) -> Iterator[None]:
        """The tables' :data:`~linkage.tables.INDEXES` dropped while a bulk write runs, and made again after it
        in one pass over the rows, inside the caller's transaction (an index kept up row by row made a 1M ingest
        8 s slower: ``benchmarks/RESULTS.md``, ingest)."""
        dropped = [(name, table, column) for name, table, column in INDEXES if table in tables]
        for name, _, _ in dropped:
            self.sql(f"DROP INDEX IF EXISTS {quote(name)}", table="schema")
        yield
        for name, table, column in dropped:
            self.sql(f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} ({quote(column)})", table="schema")

    def stage(self) -> dict[str, str]:
        """Create empty TEMP tables ``staged_<table>`` for the ``STAGED`` tables; return table → staging table.

        Rows inserted there become visible only through :meth:`merge_staged`, in the same transaction.
        """
        names = {table: f"staged_{table}" for table in STAGED}
        for table, staged in names.items():
            self.sql(f"CREATE OR REPLACE TEMP TABLE {staged} AS SELECT * FROM {table} LIMIT 0", table=staged)
        return names

    def merge_staged(self, run_id: str) -> Merged:
        """Move the staged records into the store: add the new, replace the updated, drop the unchanged.

        A record is unchanged when every value in ``COMPARED`` equals the stored one (NULL equals NULL).
        For an updated one, its stored rows in the ``STAGED`` tables are replaced, the previous
        applications row goes to ``record_updates`` with the roles that changed, an event
        ``record_updated`` names those roles (never their values: personal data), and a record already
        linked into an identity goes to ``relink`` for the next ``linkage link``. Run in the ingest's
        transaction; the staging tables are dropped.
        """
        changed = ", ".join(f"CASE WHEN s.{c} IS DISTINCT FROM a.{c} THEN '{c}' END" for c in COMPARED)
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE staged_changes AS
                SELECT s.record_id, [c FOR c IN [{changed}] IF c IS NOT NULL] AS changed
                FROM staged_applications s JOIN applications a ON a.record_id = s.record_id""",
            table="staged_changes",
        )
        updated = "SELECT record_id FROM staged_changes WHERE len(changed) > 0"
        now = _now()
        self.sql(
            """INSERT INTO record_updates (run_id, record_id, previous, changed, updated_at)
                SELECT ?, a.record_id, to_json(a), c.changed, ?
                FROM applications a JOIN staged_changes c ON c.record_id = a.record_id
                WHERE len(c.changed) > 0 ORDER BY a.record_id""",
            [run_id, now],
            table="record_updates",
        )
        self.sql(
            """INSERT INTO events (run_id, happened_at, kind, identity_id, record_id, reason)
                SELECT ?, ?, 'record_updated', m.identity_id, c.record_id,
                       'changed: ' || array_to_string(c.changed, ', ')
                FROM staged_changes c LEFT JOIN membership m ON m.record_id = c.record_id
                WHERE len(c.changed) > 0 ORDER BY c.record_id""",
            [run_id, now],
            table="events",
        )
        # a record updated again before it was relinked keeps the run that first made its links stale
        self.sql(
            """INSERT OR IGNORE INTO relink
                SELECT c.record_id, ? FROM staged_changes c JOIN membership m ON m.record_id = c.record_id
                WHERE len(c.changed) > 0""",
            [run_id],
            table="relink",
        )
        for table in STAGED:
            self.sql(f"DELETE FROM {table} WHERE record_id IN ({updated})", table=table)
            self.sql(
                f"""INSERT INTO {table} BY NAME SELECT * FROM staged_{table}
                    WHERE record_id NOT IN (SELECT record_id FROM staged_changes WHERE len(changed) = 0)""",
                table=table,
            )
        staged, updates, same = self.sql(
            """SELECT (SELECT count(*) FROM staged_applications), count(*) FILTER (len(changed) > 0),
                      count(*) FILTER (len(changed) = 0)
               FROM staged_changes""",
            table="staged_changes",
        ).fetchall()[0]
        for table in (*(f"staged_{t}" for t in STAGED), "staged_changes"):
            self.sql(f"DROP TABLE {table}", table=table)
        return Merged(new=staged - updates - same, updated=updates, unchanged=same)

    # --- reads -----------------------------------------------------------------------------------

    def count(self, table: str) -> int:
        """The rows of a table (its name quoted: a name, never SQL)."""
        return int(self.scalar(f"SELECT count(*) FROM {quote(table)}", table=table))


def _now() -> datetime:
    return datetime.now(UTC)


# --- the writer's sidecar ------------------------------------------------------------------------

_process: dict[str, str] = {"command": Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"}
_LOCK_HOLDER: Final = re.compile(r"\(PID (\d+)\)")


def name_process(command: str) -> None:
    """Name what this process is (e.g. ``linkage link``), for the sidecar of the stores it writes."""
    _process["command"] = command


def _sidecar(path: str) -> Path:
    return Path(path + ".writer")


def _announce(path: str) -> tuple[Path, dict[str, Any]]:
    """Write the sidecar ``<db>.writer`` that says who writes the store; return it and what it says."""
    sidecar = _sidecar(path)
    claim = {
        "pid": os.getpid(),
        "command": _process["command"],
        "started_at": _now().isoformat(timespec="seconds"),
        "claim": uuid.uuid4().hex,  # tells two writers of one process apart
    }
    try:
        temporary = sidecar.with_name(f"{sidecar.name}.{os.getpid()}")
        temporary.write_text(json.dumps(claim), encoding="utf-8")
        temporary.replace(sidecar)  # whole or absent for a reader, never half-written
    except OSError as exc:  # a read-only folder: the store still works, readers get DuckDB's PID only
        log.warning("cannot write the writer sidecar %s: %s", sidecar, exc.strerror)
    return sidecar, claim


def _withdraw(writer: tuple[Path, dict[str, Any]]) -> None:
    """Remove the sidecar if it still says what this store wrote (another writer may have replaced it)."""
    sidecar, claim = writer
    if _claim(sidecar) == claim:
        sidecar.unlink(missing_ok=True)


def _claim(sidecar: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("pid"), int) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _open_failure(path: str, exc: duckdb.Error) -> str:
    """Why the store could not be opened; for DuckDB's lock error, who is writing it and since when."""
    text = str(exc)
    if "Could not set lock" not in text:
        return f"cannot open the store {path}: {text}"
    holder = _LOCK_HOLDER.search(text)
    pid = int(holder.group(1)) if holder else None
    claim = _claim(_sidecar(path))
    # trusted only while its process lives and, when DuckDB names the lock's holder, is that process
    if claim is not None and _alive(claim["pid"]) and pid in (None, claim["pid"]):
        since = _since(claim.get("started_at"))
        who = f"`{claim.get('command') or 'another command'}` (process {claim['pid']}){since}"
    else:
        who = "another process" + (f" (process {pid})" if pid is not None else "")
    return f"the store {path} is being written by {who}; try again when it finishes"


def _since(started_at: Any) -> str:
    try:
        started = datetime.fromisoformat(str(started_at)).astimezone(UTC)
    except ValueError:
        return ""
    return f" since {started:%Y-%m-%d %H:%M} UTC"

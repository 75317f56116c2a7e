"""The store: only ingest makes one, a writer says who it is, interrupted runs are marked as such."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from linkage.errors import StoreError
from linkage.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_store_is_refused_and_not_made(tmp_path: Path) -> None:
    db = tmp_path / "typo" / "stroe.duckdb"
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"no store at .*stroe\.duckdb: run `linkage ingest FILE --db "):
            Store(db, read_only=read_only)
    assert not (tmp_path / "typo").exists()


def test_create_makes_the_store_and_its_folder(tmp_path: Path) -> None:
    db = tmp_path / "new" / "s.duckdb"
    with Store(db, create=True) as store:
        assert store.count("applications") == 0
    with Store(db) as store:  # now it exists: no create needed
        assert store.count("runs") == 0


def test_duckdb_draws_no_progress_bar_into_what_a_command_prints(tmp_path: Path) -> None:
    """DuckDB's progress bar goes to stdout once a statement runs two seconds: a 1M ingest's `--json` answer
    began with two bars and did not parse. The store's connections never draw it."""
    for read_only in (False, True):
        with Store(tmp_path / "s.duckdb", create=True, read_only=read_only) as store:
            assert store.scalar("SELECT current_setting('enable_progress_bar')") is False


def _indexes(store: Store) -> list[str]:
    return [name for (name,) in store.rows("SELECT index_name FROM duckdb_indexes() ORDER BY index_name")]


def test_a_bulk_write_drops_the_tables_indexes_and_makes_them_again(tmp_path: Path) -> None:
    """``unindexed`` drops the named tables' indexes for a bulk write and makes them after it; a write that
    fails leaves them as they were (its transaction rolled back); an ingest into an empty store keeps them."""
    from linkage.config import Config
    from linkage.pipeline import ingest
    from linkage.tables import INDEXES

    every = sorted(name for name, _, _ in INDEXES)
    with Store(tmp_path / "s.duckdb", create=True) as store:
        assert _indexes(store) == every
        with store.transaction(), store.unindexed("applications", "applications_normalised"):
            assert _indexes(store) == ["membership_identity"]
        assert _indexes(store) == every
        with pytest.raises(RuntimeError), store.transaction(), store.unindexed("membership"):
            raise RuntimeError("the write failed")
        assert _indexes(store) == every
    source = tmp_path / "a.csv"
    source.write_text("record_id,full_name\nA1,Siti Aminah\nA2,Budi Santoso\n", encoding="utf-8")
    ingest([source], Config(), db=tmp_path / "fresh.duckdb")
    with Store(tmp_path / "fresh.duckdb") as store:
        assert _indexes(store) == every
        assert store.rows("SELECT record_id FROM applications_normalised WHERE record_id = ?", ["A2"]) == [("A2",)]


def test_a_migration_that_alters_an_indexed_table_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB refuses some ALTERs of a table that has an index ("entries that depend on it"; dropping a column,
    not adding one): a later migration that drops a column of applications_normalised, say, must still apply
    to a store that has its indexes."""
    import linkage.store
    from linkage.tables import INDEXES, MIGRATIONS, SCHEMA_VERSION

    with Store(tmp_path / "s.duckdb", create=True) as store:
        assert _indexes(store) == sorted(name for name, _, _ in INDEXES)
    later = (*MIGRATIONS, ("ALTER TABLE applications_normalised DROP COLUMN postcode",))
    monkeypatch.setattr(linkage.store, "MIGRATIONS", later)
    monkeypatch.setattr(linkage.store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store(tmp_path / "s.duckdb") as store:
        assert store.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION + 1
        assert "postcode" not in store.columns("applications_normalised")
        assert _indexes(store) == sorted(name for name, _, _ in INDEXES)


def test_a_writer_announces_itself_in_a_sidecar_removed_on_close(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    sidecar = tmp_path / "s.duckdb.writer"
    with Store(db, create=True):
        claim = json.loads(sidecar.read_text(encoding="utf-8"))
        assert claim["pid"] == os.getpid() and claim["command"] and claim["started_at"]
    assert not sidecar.exists()
    with Store(db, read_only=True):
        assert not sidecar.exists()  # readers do not claim the store


HOLD = """
import sys, time
from linkage.store import Store, name_process
if sys.argv[2]:
    name_process(sys.argv[2])
store = Store(sys.argv[1])
print("open", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, Callable[[str], subprocess.Popen[str]]]]:
    """A second process that holds a store open read-write, as `linkage link` does while it runs."""
    db = tmp_path / "s.duckdb"
    Store(db, create=True).close()
    process: subprocess.Popen[str] | None = None

    def start(command: str = "linkage link") -> subprocess.Popen[str]:
        nonlocal process
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HOLD), str(db), command],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "open"
        return process

    yield db, start
    if process is not None:
        process.kill()
        process.wait()


def test_a_reader_is_told_which_command_writes_the_store_and_since_when(holder) -> None:
    db, start = holder
    process = start("linkage link")
    for read_only in (True, False):
        with pytest.raises(StoreError) as info:
            Store(db, read_only=read_only)
        message = str(info.value)
        assert f"the store {db} is being written by `linkage link` (process {process.pid}) since " in message
        assert " UTC; try again when it finishes" in message
        assert "Conflicting lock" not in message and "IO Error" not in message
        started = message.split(" since ")[1].split(" UTC")[0]
        assert time.strptime(started, "%Y-%m-%d %H:%M")


def test_a_stale_sidecar_is_ignored(holder) -> None:
    db, start = holder
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = {"pid": int(dead.stdout), "command": "linkage ingest", "started_at": "2020-01-01T00:00:00+00:00"}
    process = start("")
    # a writer killed before it could remove its sidecar, then another process holds the store
    (db.parent / "s.duckdb.writer").write_text(json.dumps(stale), encoding="utf-8")
    with pytest.raises(StoreError) as info:
        Store(db, read_only=True)
    message = str(info.value)
    assert f"is being written by another process (process {process.pid}); try again" in message
    assert "linkage ingest" not in message and "2020" not in message
    # no lock held: the stale sidecar does not matter at all
    process.kill()
    process.wait()
    with Store(db, read_only=True) as store:
        assert store.count("runs") == 0


def test_runs_left_running_are_marked_interrupted_and_returned(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Store(db, create=True) as store:
        killed = store.begin_run("link", [], "h")
        done = store.begin_run("ingest", [], "h")
        store.finish_run(done, "succeeded", {})
    with Store(db) as store:
        interrupted = store.mark_interrupted()
        assert [(r["run_id"], r["kind"]) for r in interrupted] == [(killed, "link")]
        assert interrupted[0]["started_at"].startswith(killed[:4])
        statuses = dict(store.rows("SELECT run_id, status FROM runs"))
        assert statuses == {killed: "interrupted", done: "succeeded"}
        assert store.mark_interrupted() == []


def test_arrow_binds_its_values() -> None:
    with Store(":memory:") as store:
        table = store.arrow("SELECT ?::VARCHAR AS v", ["'); DROP TABLE runs; --"])
        assert table.to_pylist() == [{"v": "'); DROP TABLE runs; --"}]
        assert store.count("runs") == 0
